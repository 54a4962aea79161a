"""Where the command line writes its own outputs (``analyze --csv FILE``, ``plot --out FOLDER``).

Checked before any output is printed, so that a typo in a path is one line naming the option
instead of a traceback after a long table; a file is written under a temporary name next to it and
then renamed, so that a failure part-way (a full disk) never leaves half a file.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import SpecError, describe_os_error

__all__ = ["OutputFile", "check_output_folder"]


def _nearest_existing(path: Path) -> Path:
    """``path`` or the closest of its parents that exists (the working folder for a bare name)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def _probe_writable(folder: Path, where: str) -> None:
    """Create and remove a file in ``folder``: the only test that holds for root and read-only mounts alike."""
    try:
        fd, name = tempfile.mkstemp(prefix=".hpctune-probe-", dir=folder)
    except OSError as exc:
        raise SpecError(where, f"cannot write in {folder}: {describe_os_error(exc)}") from None
    os.close(fd)
    os.unlink(name)


def check_output_folder(path: str | os.PathLike, where: str) -> None:
    """Refuse a folder to write files into that is a file, lies below a file, or cannot be written
    (it may not exist yet: it is made when the first file is written). Nothing is left behind.

    Raises:
        SpecError: naming ``where`` (the option) and what is wrong.
    """
    path = Path(path)
    existing = _nearest_existing(path)
    if not existing.is_dir():
        raise SpecError(where, f"{existing} is a file, not a folder")
    _probe_writable(existing, where)


class OutputFile:
    """A file to be written at the end of a command, opened (under a temporary name in its folder)
    when the command starts. :meth:`write` fills it and renames it into place; :meth:`discard`
    removes what is left if the command ends otherwise. Usable as a context manager.

    Raises:
        SpecError: (from the constructor) ``path`` is a folder, its folder does not exist or is a
            file, or it cannot be written there.
    """

    def __init__(self, path: str | os.PathLike, where: str):
        self.path, self.where = Path(path), where
        if self.path.is_dir():
            raise SpecError(where, f"{self.path} is a folder; name the file to write")
        folder = self.path.parent
        if not folder.exists():
            raise SpecError(where, f"folder {folder} does not exist")
        if not folder.is_dir():
            raise SpecError(where, f"{folder} is a file, not a folder")
        try:
            fd, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            raise SpecError(where, f"cannot write in {folder}: {describe_os_error(exc)}") from None
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # as an ordinary new file, not mkstemp's owner-only 0600
        self._file: IO[str] | None = os.fdopen(fd, "w", newline="")
        self._temporary: Path | None = Path(name)

    def write(self, fill: Callable[[IO[str]], None]) -> None:
        """``fill(file)`` writes the content; then the file takes its name (atomically).

        Raises:
            SpecError: the write failed (a full disk): nothing is left at ``path``.
        """
        try:
            fill(self._file)
            self._file.close()
            self._file = None
            os.replace(self._temporary, self.path)
            self._temporary = None
        except OSError as exc:
            raise SpecError(self.where, f"cannot write {self.path}: {describe_os_error(exc)}") from None
        finally:
            self.discard()

    def discard(self) -> None:
        """Remove the temporary file, if it is still there."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
            self._temporary = None

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()
