"""Writing the coordinator's HDF5 files so that a full disk is a clean error, never a crash.

HDF5 2.0 (h5py 3.16) can crash the process (a segfault) when a large
variable-length string dataset does not fit on the disk, where numbers fail
cleanly with ENOSPC. So the coordinator builds each file in memory (h5py writing
into a ``BytesIO``: one buffer, where HDF5's core driver would need a second for
its image) and writes it with plain ``os.write``: a full disk or quota is then an
``OSError`` like any other, the temporary file is removed, and nothing already
durable is touched. The files are bounded by design (a snapshot: the trials; a
part: at most ``MAX_MERGED_ROWS`` rows), and so is the memory the image takes.
"""
from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import h5py

__all__ = ["write_hdf5", "fsync_path"]


def fsync_path(path: Path) -> None:
    """Make a file's (or a folder's entries') content durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_hdf5(path: Path, build: Callable[[h5py.File], None], **options) -> None:
    """Write an HDF5 file durably under ``path`` (not yet moved into place: the caller renames it).

    ``build(f)`` fills the in-memory file; ``options`` go to :class:`h5py.File` (``libver``).

    Raises:
        OSError: the file could not be written (``errno`` ENOSPC, EDQUOT, ...); no file is left.
    """
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", **options) as f:
        build(f)
    with buffer.getbuffer() as image:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            written = 0
            while written < len(image):
                written += os.write(fd, image[written:])
            os.fsync(fd)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
