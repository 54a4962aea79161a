"""Column tables: rows appended in O(columns), written to and read from HDF5 groups."""
from __future__ import annotations

import json
import math
from typing import Any

import h5py
import numpy as np

__all__ = ["ColumnTable", "read_group_columns"]

_STR = h5py.string_dtype()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _column_array(values: list) -> np.ndarray:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present) and len(present) == len(values):
        return np.asarray(values, dtype=bool)
    if all(_is_number(v) or isinstance(v, (bool, np.bool_)) for v in present):
        if len(present) == len(values) and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in present):
            if all(-2**63 <= int(v) < 2**63 for v in present):
                return np.asarray(values, dtype=np.int64)
        return np.asarray([math.nan if v is None else float(v) for v in values], dtype=np.float64)
    out = []
    for v in values:
        if v is None:
            out.append("")
        elif isinstance(v, str):
            out.append(v)
        else:
            out.append(json.dumps(v, default=str))
    return np.asarray(out, dtype=object)


class ColumnTable:
    """Rows of differing keys kept as columns; a missing value is ``None``."""

    def __init__(self) -> None:
        self.columns: dict[str, list] = {}
        self.length = 0

    def append(self, row: dict) -> None:
        for key, value in row.items():
            column = self.columns.get(key)
            if column is None:
                column = self.columns[key] = [None] * self.length
            column.append(value)
        self.length += 1
        for column in self.columns.values():
            if len(column) < self.length:
                column.append(None)

    def extend_columns(self, columns: dict[str, list], length: int) -> None:
        """Append a block of rows given as columns (used when loading a snapshot)."""
        for key in set(self.columns) | set(columns):
            column = self.columns.setdefault(key, [None] * self.length)
            column.extend(columns.get(key, [None] * length))
        self.length += length

    def write(self, group: h5py.Group) -> None:
        group.attrs["length"] = self.length
        for key, values in self.columns.items():
            array = _column_array(values)
            # a "/" in a name (nested config, "val/loss") becomes a subgroup
            if array.dtype == object:
                group.create_dataset(key, data=array, dtype=_STR)
            else:
                group.create_dataset(key, data=array)


def read_group_columns(group: h5py.Group) -> tuple[dict[str, list], int]:
    """Columns of a table group as Python lists (NaN and "" read back as None)."""
    columns: dict[str, list] = {}
    datasets: list[tuple[str, h5py.Dataset]] = []
    group.visititems(lambda name, node: datasets.append((name, node)) if isinstance(node, h5py.Dataset) else None)
    for name, dataset in datasets:
        data = dataset[()]
        if dataset.dtype.kind == "O" or h5py.check_string_dtype(dataset.dtype):
            values = [(v.decode() if isinstance(v, bytes) else v) or None for v in data]
        elif dataset.dtype.kind == "f":
            values = [None if math.isnan(v) else float(v) for v in data]
        else:
            values = data.tolist()
        columns[name] = values
    return columns, int(group.attrs.get("length", 0))
