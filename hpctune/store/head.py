"""``experiment.h5``: the snapshot of what the experiment is now, and the list of its part files.

The snapshot holds what is per trial or per experiment, never the history:
the spec, the controller's state (scheduler and searcher), one row per trial,
the runs in progress, and the manifest of part files that hold the history.
Its cost follows the number of trials, not the number of results. For plain
h5py users it also has ``results/``, ``segments/`` and ``decisions/`` as
virtual datasets over the parts, so ``f["results/loss"][()]`` reads every
result up to the snapshot.

It is written under a temporary name, synced, and moved into place; the
snapshot it replaces is kept as ``experiment.prev.h5`` (a hard link, so that
``experiment.h5`` never goes missing), with every part and journal record it
needs, so a damaged ``experiment.h5`` costs nothing.
"""
from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from .history import TABLES
from .journal import to_jsonable
from .files import fsync_path, write_hdf5
from .parts import PartInfo
from .trials import write_trials
from .tables import STRING, Columns, escape_name, fixed_string, read_table, write_table

__all__ = ["EXPERIMENT_FILE", "PREVIOUS_FILE", "FORMAT", "FORMAT_VERSION", "Head", "DamagedSnapshot",
           "UnsupportedFormat",
           "write_head", "read_head", "read_manifest"]

LAUNCHER_FILES = ("slurm", "slurm.json")
"""What may be in an experiment's folder before the experiment starts: ``hpctune submit``'s files
(submitit's folder, the queued jobs). A new experiment keeps them; anything else there is refused."""
EXPERIMENT_FILE = "experiment.h5"
PREVIOUS_FILE = "experiment.prev.h5"
FORMAT = "hpctune-experiment"
FORMAT_VERSION = 2
_MANIFEST_FIELDS = ("file", "first_seq", "last_seq", *TABLES)


class DamagedSnapshot(OSError):
    """A snapshot file that cannot be read (truncated, empty, not HDF5, not hpctune's)."""


class UnsupportedFormat(DamagedSnapshot):
    """A snapshot written in another format version of hpctune's."""


@dataclass
class Head:
    """A snapshot as read back."""

    path: Path
    seq: int
    status: str
    spec: dict
    controller_state: dict | None
    python_path: list[str]
    trials: Columns
    running: list[dict]
    parts: list[PartInfo]
    attrs: dict = field(default_factory=dict)


def _json(value) -> str:
    return json.dumps(value, default=to_jsonable)


def _virtual_dtype(kinds: list[str | None]):
    """One dtype for a column stored this way in each part (:data:`~hpctune.store.parts.Kinds`; None:
    absent); None if impossible."""
    present = {k for k in kinds if k is not None}
    strings = {k for k in present if k == "O" or k.startswith("S")}
    if strings and strings != present:
        return None  # strings in one part, numbers in another: read the parts
    if "O" in strings:
        return STRING  # variable-length in some part: HDF5 2.0 converts the fixed-length ones
    if strings:  # fixed-length in every part: as wide as the widest (any HDF5 pads the narrower)
        return fixed_string(max(int(k[1:]) for k in strings))
    if present == {"i"} and None not in kinds:
        return np.int64
    if present == {"b"} and None not in kinds:
        return np.bool_
    return np.float64


def _write_virtual_tables(f: h5py.File, parts: list[PartInfo], columns_of: dict[str, dict[str, dict]]) -> None:
    """``results/`` etc. as virtual datasets over the parts' tables (a convenience for plain h5py)."""
    for table in TABLES:
        group = f.create_group(table, track_order=True)
        length = sum(part.length(table) for part in parts)
        group.attrs["length"] = length
        names: dict[str, None] = {}
        for part in parts:
            names.update(dict.fromkeys(columns_of[part.file][table]))
        for name in names:
            kinds = [columns_of[part.file][table].get(name) for part in parts]
            dtype = _virtual_dtype(kinds)
            if dtype is None:
                continue
            layout = h5py.VirtualLayout(shape=(length,), dtype=dtype)
            start = 0
            for part, kind in zip(parts, kinds):
                rows = part.length(table)
                if kind is not None and rows:
                    # HDF5 reads "%" in a source's name as a printf-like specifier: "%%" is a "%"
                    source = f"{table}/{escape_name(name)}".replace("%", "%%")
                    layout[start:start + rows] = h5py.VirtualSource(part.file, source, shape=(rows,))
                start += rows
            fill = {np.float64: np.nan}.get(dtype)  # strings read "" where a part has no such column
            dataset = group.create_virtual_dataset(escape_name(name), layout, fillvalue=fill)
            dataset.attrs["name"] = name


def write_head(folder: Path, *, spec: dict, controller_state: dict | None, python_path: list[str],
               trials: list, running: list[dict], parts: list[PartInfo],
               columns_of: dict[str, dict[str, dict]], status: str, seq: int, keep_previous: bool = True) -> None:
    """Replace ``experiment.h5`` with a new snapshot, durably; keep the old one as ``experiment.prev.h5``.

    Args:
        columns_of: part file -> table -> column name -> dtype kind, for the virtual datasets.
        keep_previous: link the snapshot being replaced to ``experiment.prev.h5`` first (false when
            it is damaged, so that a good previous snapshot is not replaced by a bad one).

    Raises:
        OSError: the file could not be written (``errno`` tells why: ENOSPC, EDQUOT, EIO...).
    """
    path = folder / EXPERIMENT_FILE
    tmp = folder / f".{EXPERIMENT_FILE}.{os.getpid()}.tmp"

    def build(f: h5py.File) -> None:
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, "hpctune_version": __version__,
                        "name": spec["name"], "metric": spec["metric"], "mode": spec["mode"],
                        "status": status, "journal_seq": seq, "updated": time.time(),
                        "coordinator_host": socket.gethostname()})
        f["spec"] = _json(spec)
        f["controller_state"] = _json(controller_state) if controller_state is not None else ""
        f["python_path"] = _json(python_path)
        write_trials(f, "trials", trials)
        write_table(f, "running", rows=running)
        write_table(f, "manifest", rows=[{k: getattr(p, k) for k in _MANIFEST_FIELDS} for p in parts])
        _write_virtual_tables(f, parts, columns_of)

    try:
        write_hdf5(tmp, build, libver=("v110", "latest"))
        if keep_previous and path.exists():
            link = folder / f".{PREVIOUS_FILE}.{os.getpid()}.tmp"
            link.unlink(missing_ok=True)
            os.link(path, link)
            os.replace(link, folder / PREVIOUS_FILE)
        os.replace(tmp, path)
        fsync_path(folder)
    finally:
        tmp.unlink(missing_ok=True)


def _manifest(columns: Columns, length: int) -> list[PartInfo]:
    if not length:
        return []
    return [PartInfo(**{k: (str(columns[k][i]) if k == "file" else int(columns[k][i]))
                        for k in _MANIFEST_FIELDS if k in columns})  # an older manifest: no lineage column
            for i in range(length)]


def read_manifest(path: Path) -> list[PartInfo]:
    """Only the part files a snapshot lists; [] if it cannot be read."""
    try:
        with h5py.File(path, "r", locking=False) as f:
            return _manifest(*read_table(f["manifest"]))
    except (OSError, KeyError, ValueError):
        return []


def read_head(path: Path) -> Head:
    """Read a snapshot.

    Raises:
        FileNotFoundError: there is no such file.
        DamagedSnapshot: it cannot be read, with the reason.
    """
    if not path.exists():
        raise FileNotFoundError(path)
    try:
        with h5py.File(path, "r", locking=False) as f:
            if f.attrs.get("format") != FORMAT:
                raise DamagedSnapshot(f"{path}: not an hpctune experiment file")
            version = int(f.attrs.get("format_version", 0))
            if version != FORMAT_VERSION:
                raise UnsupportedFormat(f"{path}: written in format {version} by hpctune "
                                        f"{f.attrs.get('hpctune_version', '?')}; this hpctune reads format "
                                        f"{FORMAT_VERSION} (docs/hdf5-layout.md)")
            state_text = f["controller_state"].asstr()[()]
            trials, _ = read_table(f["trials"])
            running_columns, running_length = read_table(f["running"])
            return Head(
                path=path, seq=int(f.attrs["journal_seq"]), status=str(f.attrs["status"]),
                spec=json.loads(f["spec"].asstr()[()]),
                controller_state=json.loads(state_text) if state_text else None,
                python_path=json.loads(f["python_path"].asstr()[()]),
                trials=trials,
                running=[{k: _plain(v[i]) for k, v in running_columns.items()} for i in range(running_length)],
                parts=_manifest(*read_table(f["manifest"])),
                attrs={k: _plain(v) for k, v in f.attrs.items()},
            )
    except DamagedSnapshot:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise DamagedSnapshot(f"{path}: {_reason(path, exc)}") from None


def _reason(path: Path, exc: Exception) -> str:
    """h5py's 'Unable to synchronously open file (file signature not found)' -> 'file signature not found'."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    match = re.search(r"\((.*)\)\s*$", text)
    return match.group(1) if text.startswith("Unable to") and match else text


def _plain(value):
    return value.item() if hasattr(value, "item") else value
