"""Column tables in HDF5: any column name, one dataset per column, typed by its values.

A table is an HDF5 group (attribute ``length``) holding one 1-D dataset per
column. A user names metrics and hyperparameters, and any string is a valid
name (``"a"`` next to ``"a/b"``, ``""``, ``"."``), while HDF5 reserves ``/``
and ``.``. So a column's dataset is named by :func:`escape_name` and carries
the real name in its ``name`` attribute; readers never parse names.

Types: integers -> int64, other numbers (and booleans mixed with numbers, or
any number column with a missing value) -> float64 with NaN for missing,
all-booleans -> bool, anything else -> UTF-8 strings ("" for missing; lists,
dicts and other values as JSON).

A string column is stored fixed-length (each value padded to the longest one's
bytes) when that takes no more room than HDF5's variable-length strings would
(about :data:`VLEN_OVERHEAD` bytes a value besides its own): a hostname, a state,
a config's JSON. Such a column costs HDF5 no heap object per value, and is written,
read and merged as one numpy array, with no Python object per value. A column
with a few long values among short ones (a traceback among empty errors) stays
variable-length. Readers see no difference: both read back as ``str``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

import h5py
import numpy as np

__all__ = ["utf8_text", "escape_name", "unescape_name", "column_array", "write_table", "write_columns",
           "read_table", "read_column", "Columns", "concat_columns", "STRING", "fixed_string",
           "fixed_width_pays", "stored_kind", "VLEN_OVERHEAD"]

STRING = h5py.string_dtype()
VLEN_OVERHEAD = 32
"""Bytes HDF5 spends on a variable-length string besides its text: the 16-byte reference in the
dataset and the global heap object's header (16 bytes, and its padding)."""


def fixed_string(width: int) -> np.dtype:
    """The dtype of a fixed-length UTF-8 string column ``width`` bytes wide (at least 1)."""
    return h5py.string_dtype("utf-8", max(1, int(width)))


def fixed_width_pays(width: int, rows: int, text_bytes: int) -> bool:
    """Whether ``rows`` strings of ``text_bytes`` bytes in all, the longest ``width``, take no more
    room fixed-length than variable-length."""
    return width * rows <= text_bytes + VLEN_OVERHEAD * rows


def stored_kind(dataset: h5py.Dataset) -> str:
    """How a column is stored: its numpy dtype kind (``i``, ``f``, ``b``), ``O`` for variable-length
    strings, ``S<width>`` for fixed-length ones."""
    info = h5py.check_string_dtype(dataset.dtype)
    if info is None:
        return dataset.dtype.kind
    return "O" if info.length is None else f"S{info.length}"
Columns = dict[str, np.ndarray]
"""A table as column name -> 1-D array of equal lengths (object arrays hold strings, None for missing)."""


def utf8_text(text: str) -> str:
    """``text`` as valid UTF-8 (HDF5 stores UTF-8): a lone surrogate becomes ``\\udcff``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def escape_name(name: str) -> str:
    """The HDF5 link name of a column: ``%`` -> ``%25``, ``/`` -> ``%2F``, a leading ``.`` -> ``%2E``;
    the empty name is ``%`` (no escaped name is a lone ``%``)."""
    if name == "":
        return "%"
    escaped = utf8_text(name).replace("%", "%25").replace("/", "%2F")
    return "%2E" + escaped[1:] if escaped.startswith(".") else escaped


def unescape_name(link: str) -> str:
    """Inverse of :func:`escape_name`."""
    if link == "%":
        return ""
    return link.replace("%2F", "/").replace("%2E", ".").replace("%25", "%")


_BOOLS = frozenset({bool, np.bool_})
_INTS = frozenset({int, np.int64, np.int32, np.int16, np.int8, np.uint32, np.uint16, np.uint8})
_NUMBERS = _BOOLS | _INTS | frozenset({float, np.float64, np.float32, np.float16, np.uint64})
_MISSING = type(None)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return utf8_text(value)
    return json.dumps(value, default=str, allow_nan=True)


def column_array(values: list) -> np.ndarray:
    """The stored form of one column (see the module docstring for the rules).

    Decided from the set of the values' types, then converted by numpy in one call: this runs
    for every cell of every part the coordinator writes.
    """
    types = set(map(type, values))
    if types and types <= _BOOLS:
        return np.asarray(values, dtype=bool)
    if types and types <= _INTS:
        try:
            return np.asarray(values, dtype=np.int64)
        except OverflowError:  # beyond int64: stored as float
            pass
    if types <= _NUMBERS | {_MISSING}:
        return np.asarray(values, dtype=np.float64)  # None becomes NaN
    array = np.empty(len(values), dtype=object)
    array[:] = [None if v is None else _as_text(v) for v in values]
    return array


def write_table(parent: h5py.Group, key: str, rows: Iterable[dict] | None = None,
                columns: Columns | None = None) -> h5py.Group:
    """Write a table under ``parent[key]`` from row dicts or from ready columns."""
    if columns is None:
        columns = rows_to_columns(list(rows or ()))
    length = len(next(iter(columns.values()))) if columns else 0
    return write_columns(parent, key, length, columns.items())


def write_columns(parent: h5py.Group, key: str, length: int,
                  columns: Iterable[tuple[str, np.ndarray | list]]) -> h5py.Group:
    """Write a table of ``length`` rows under ``parent[key]``, one ``(name, values)`` column at a time.

    ``columns`` may be a generator: each column is written before the next is asked for, so a
    caller that makes them one by one (a merge of part files) holds one column, not the table.
    """
    group = parent.create_group(key, track_order=True)
    group.attrs["length"] = length
    for name, array in columns:
        array = array if isinstance(array, np.ndarray) else column_array(list(array))
        if array.dtype == object:
            data = _write_text(group, escape_name(name), array)
        elif array.dtype.kind == "S":
            data = _write_bytes(group, escape_name(name), array)
        else:
            data = group.create_dataset(escape_name(name), data=array)
        data.attrs["name"] = utf8_text(name)
    return group


def _write_text(group: h5py.Group, link: str, array: np.ndarray) -> h5py.Dataset:
    """An object column (str, None for "", other values as JSON), fixed-length where that pays."""
    encoded = [b"" if v is None else (v if type(v) is str else _as_text(v)).encode("utf-8", "backslashreplace")
               for v in array]
    lengths = list(map(len, encoded))
    width = max(lengths, default=0)
    if fixed_width_pays(width, len(encoded), sum(lengths)):
        return group.create_dataset(link, data=np.array(encoded, dtype=fixed_string(width)))
    text = np.empty(len(encoded), dtype=object)
    text[:] = [value.decode("utf-8") for value in encoded]
    return group.create_dataset(link, data=text, dtype=STRING)


def _write_bytes(group: h5py.Group, link: str, array: np.ndarray) -> h5py.Dataset:
    """A numpy array of UTF-8 bytes (a merge of fixed-length columns), as narrow as its longest value."""
    width = int(np.char.str_len(array).max()) if len(array) else 0
    return group.create_dataset(link, data=array.astype(fixed_string(width)))


def rows_to_columns(rows: list[dict]) -> Columns:
    """Row dicts (differing keys allowed) -> typed columns, in first-seen key order."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    return {name: column_array([row.get(name) for row in rows]) for name in names}


def read_table(group: h5py.Group) -> tuple[Columns, int]:
    """A table group as columns (strings as Python ``str``, "" read back as None) and its length."""
    columns: Columns = {}
    for link, dataset in group.items():
        if isinstance(dataset, h5py.Dataset):
            columns[unescape_name(link)] = read_column(dataset)  # its "name" attribute says the same
    return columns, int(group.attrs.get("length", 0))


def read_column(dataset: h5py.Dataset) -> np.ndarray:
    """One column's dataset as an array (strings, fixed- or variable-length, as Python ``str``, ""
    read back as None)."""
    if h5py.check_string_dtype(dataset.dtype) is not None or dataset.dtype.kind == "O":
        data = dataset.asstr()[()]
        array = np.empty(len(data), dtype=object)
        array[:] = [v or None for v in data]
        return array
    return dataset[()]


def _missing(kind_array: np.ndarray, length: int) -> np.ndarray:
    if kind_array.dtype == object:
        return np.full(length, None, dtype=object)
    return np.full(length, math.nan)


def concat_columns(blocks: list[tuple[Columns, int]]) -> Columns:
    """Concatenate tables; a column missing from a block is NaN (numbers) or None there.

    Integer and boolean columns with gaps become float64; a column that holds
    strings in one block and numbers in another becomes an object column.
    """
    blocks = [block for block in blocks if block[1]] or blocks[:1]  # an empty block must not change a type
    names: dict[str, np.ndarray] = {}
    for columns, _ in blocks:
        for name, array in columns.items():
            names.setdefault(name, array)
    out: Columns = {}
    for name, example in names.items():
        pieces = [columns.get(name) if name in columns else _missing(example, length) for columns, length in blocks]
        kinds = {p.dtype.kind for p in pieces}
        if "O" in kinds and kinds != {"O"}:
            pieces = [p.astype(object) for p in pieces]
        out[name] = np.concatenate(pieces) if pieces else example[:0]
    return out
