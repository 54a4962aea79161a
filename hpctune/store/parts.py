"""Part files: the history tables, appended as immutable HDF5 files and merged in tiers.

Each part ``parts/<first seq>-<last seq>.h5`` holds the ``results``,
``segments`` and ``decisions`` rows of the journal records ``first..last``
(tables as in :mod:`hpctune.store.tables`). A part is written once, under a
temporary name, synced, then renamed into place, and never changed: a crash
can leave a stray temporary file, never a damaged part.

So that an experiment of millions of results stays a few dozen files, the
coordinator merges parts in tiers (:func:`plan_merge`): whenever the newest
``FANOUT`` parts are of the same size class, they become one part. Each row is
rewritten about ``log(MAX_MERGED_ROWS / TIER_BASE_ROWS, FANOUT)`` times in all,
and no merge handles more than ``MAX_MERGED_ROWS`` rows, which bounds the
coordinator's pause and memory (a part's file is built in memory, see :mod:`.files`; a merge
reads and writes one column at a time). Which parts make up the experiment is listed in the
snapshot (``experiment.h5``); a merged part's inputs are deleted only once no
kept snapshot lists them.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from .files import fsync_path, write_hdf5
from .history import TABLES
from .tables import (Columns, concat_columns, fixed_width_pays, read_column, read_table, rows_to_columns, stored_kind,
                     unescape_name, write_columns)

__all__ = ["PART_DIR", "PartInfo", "Kinds", "write_part", "read_part", "part_kinds", "merge_parts", "plan_merge",
           "fsync_path", "FANOUT", "TIER_BASE_ROWS", "MAX_MERGED_ROWS"]

PART_DIR = "parts"
FORMAT = "hpctune-part"
FANOUT = 4
TIER_BASE_ROWS = 4096
MAX_MERGED_ROWS = 250_000
_NAME = re.compile(r"^(\d{12})-(\d{12})\.h5$")

Kinds = dict[str, dict[str, str]]
"""table -> column name -> how its dataset is stored: numpy dtype kind (``i``, ``f``, ``b``), ``O`` for
variable-length strings, ``S<width>`` for fixed-length ones."""
Table = tuple[int, Iterable[tuple[str, np.ndarray]]]
"""A table to write: its length, and its columns as (name, array), possibly made one by one."""


@dataclass(frozen=True)
class PartInfo:
    """One part file: its path relative to the experiment folder, the records it covers, rows per table."""

    file: str
    first_seq: int
    last_seq: int
    results: int
    segments: int
    decisions: int
    lineage: int = 0  # parts written before the lineage table existed have none

    @property
    def rows(self) -> int:
        return self.results + self.segments + self.decisions + self.lineage

    def length(self, table: str) -> int:
        return getattr(self, table)


def part_file(first_seq: int, last_seq: int) -> str:
    return f"{PART_DIR}/{first_seq:012d}-{last_seq:012d}.h5"


def is_part_file(name: str) -> bool:
    return _NAME.match(name) is not None


def _write(folder: Path, first_seq: int, last_seq: int, tables: dict[str, Table]) -> tuple[PartInfo, Kinds]:
    relative = part_file(first_seq, last_seq)
    path = folder / relative
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    kinds: Kinds = {}

    def build(f: h5py.File) -> None:
        f.attrs.update({"format": FORMAT, "format_version": 2, "first_seq": first_seq, "last_seq": last_seq})
        for name in TABLES:
            length, columns = tables.get(name) or (0, ())
            kinds[name] = _kinds(write_columns(f, name, length, columns))

    write_hdf5(tmp, build)
    os.replace(tmp, path)
    lengths = {name: (tables.get(name) or (0, ()))[0] for name in TABLES}
    return PartInfo(relative, first_seq, last_seq, **lengths), kinds


def write_part(folder: Path, first_seq: int, last_seq: int, rows: dict[str, list[dict]]) -> tuple[PartInfo, Kinds]:
    """Write the rows of records ``first_seq..last_seq`` as a new part (durable when it returns,
    but for the folder entry: the caller syncs ``parts/`` once for all its new files)."""
    (folder / PART_DIR).mkdir(exist_ok=True)
    tables = {}
    for name in TABLES:
        table_rows = rows.get(name, [])
        tables[name] = (len(table_rows), rows_to_columns(table_rows).items())
    return _write(folder, first_seq, last_seq, tables)


def _open_part(folder: Path, relative: str) -> h5py.File:
    """A part file, open for reading.

    Raises:
        FileNotFoundError: the part is gone (merged, and its inputs deleted).
        OSError: the file is damaged.
    """
    try:
        f = h5py.File(folder / relative, "r", locking=False)
    except OSError:
        if not (folder / relative).exists():  # deleted while HDF5 opened it (a merge): as if never there
            raise FileNotFoundError(f"{relative} is gone (merged into a newer part)") from None
        raise
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise OSError(f"{relative} is not an hpctune part file")
    return f


def read_part(folder: Path, part: PartInfo | str) -> dict[str, tuple[Columns, int]]:
    """The tables of one part file.

    Raises:
        FileNotFoundError: the part is gone (merged, and its inputs deleted).
        OSError: the file is damaged.
    """
    with _open_part(folder, part.file if isinstance(part, PartInfo) else part) as f:
        return {name: read_table(f[name]) if name in f else ({}, 0) for name in TABLES}


def part_kinds(folder: Path, part: PartInfo) -> Kinds:
    """The column types of a part, read without its data."""
    with h5py.File(folder / part.file, "r", locking=False) as f:
        return {name: _kinds(f[name]) if name in f else {} for name in TABLES}


def _kinds(group: h5py.Group) -> dict[str, str]:
    """Column name -> how it is stored (:func:`~hpctune.store.tables.stored_kind`)."""
    return {str(d.attrs.get("name", link)): stored_kind(d) for link, d in group.items()}


def merge_parts(folder: Path, parts: list[PartInfo]) -> tuple[PartInfo, Kinds]:
    """One part holding the rows of ``parts`` (consecutive, oldest first), in order.

    Read and written one column at a time: the coordinator holds one merged column (and the new
    file's image), not every table of its inputs. The columns and their types are those
    :func:`~hpctune.store.tables.concat_columns` gives the whole tables.
    """
    with ExitStack() as stack:
        files = [stack.enter_context(_open_part(folder, part.file)) for part in parts]
        tables = {name: _merged_table([f[name] if name in f else None for f in files]) for name in TABLES}
        return _write(folder, parts[0].first_seq, parts[-1].last_seq, tables)


def _merged_table(groups: list[h5py.Group | None]) -> Table:
    """The concatenation of one table's groups (None: a part without it), its columns made one by one."""
    blocks = [(group, int(group.attrs.get("length", 0)) if group is not None else 0) for group in groups]
    links: dict[str, str] = {}  # column -> dataset name, in the order concat_columns keeps
    for group, _ in [block for block in blocks if block[1]] or blocks[:1]:
        for link, dataset in (group.items() if group is not None else ()):
            if isinstance(dataset, h5py.Dataset):
                links.setdefault(unescape_name(link), link)

    def columns() -> Iterator[tuple[str, np.ndarray]]:
        for column, link in links.items():
            datasets = [group[link] if group is not None and link in group else None for group, _ in blocks]
            merged = _merged_fixed_strings(datasets, [length for _, length in blocks])
            if merged is None:
                pieces = [({column: read_column(dataset)} if dataset is not None else {}, length)
                          for dataset, (_, length) in zip(datasets, blocks)]
                merged = concat_columns(pieces)[column]
            yield column, merged

    return sum(length for _, length in blocks), columns()


def _merged_fixed_strings(datasets: list[h5py.Dataset | None], lengths: list[int]) -> np.ndarray | None:
    """A column stored as fixed-length strings in every part that has it, concatenated as bytes
    (b"" where a part lacks it), with no Python object per value; None if it is not such a column,
    or if fixed-length would not pay for the merged column (one part's long values among another's
    short ones: it is merged as text, and stored variable-length)."""
    present = [dataset for dataset in datasets if dataset is not None]
    if not present or any(stored_kind(dataset)[0] != "S" for dataset in present):
        return None
    pieces = [dataset[()] if dataset is not None else np.zeros(length, dtype="S1")
              for dataset, length in zip(datasets, lengths)]
    width = max(piece.dtype.itemsize for piece in pieces)
    text_bytes = sum(int(np.char.str_len(piece).sum()) for piece in pieces if len(piece))
    if not fixed_width_pays(width, sum(lengths), text_bytes):
        return None
    return np.concatenate(pieces)


def _tier(rows: int) -> int:
    return 0 if rows < TIER_BASE_ROWS else 1 + int(math.log(rows / TIER_BASE_ROWS, FANOUT))


def plan_merge(parts: list[PartInfo]) -> list[PartInfo] | None:
    """The newest ``FANOUT`` parts if they are of one tier and together small enough to merge, else None."""
    if len(parts) < FANOUT:
        return None
    tail = parts[-FANOUT:]
    if len({_tier(p.rows) for p in tail}) == 1 and sum(p.rows for p in tail) <= MAX_MERGED_ROWS:
        return tail
    return None
