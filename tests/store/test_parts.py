"""Part files (hpctune.store.parts): a merge gives the columns and types of the whole tables
concatenated, and holds one column of its inputs at a time, not all of them."""
from __future__ import annotations

import math
import tracemalloc

import h5py
import numpy as np

from hpctune.store.history import TABLES
from hpctune.store.parts import merge_parts, read_part, write_part
from hpctune.store.tables import concat_columns, read_table, stored_kind, write_table


def _result(trial: int, **extra) -> dict:
    return {"trial_id": trial, "training_iteration": 1, "loss": 0.5 * trial, **extra}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or len(a) != len(b):
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return list(a) == list(b)


def test_a_merge_keeps_every_row_and_the_types_the_whole_tables_concatenated_have(tmp_path):
    """Four parts whose columns differ: a column in one part only (NaN, or None for text, elsewhere),
    integers with a gap (float), a column of numbers in one part and text in another (text), booleans,
    a part without segments: the merged part reads back exactly as the inputs concatenated."""
    rows = [
        {"results": [_result(0, only_here=7, flag=True), _result(1, flag=False)],
         "segments": [{"rank": 1, "trial_id": 0, "start": 0.0, "ranks": "1", "end": 1.0, "how": "COMPLETED"}]},
        {"results": [_result(2, mixed=3.5, note="a"), _result(3, mixed=4.0)]},
        {"results": [_result(4, mixed="text", flag=True, note=None)],
         "lineage": [{"trial_id": 4, "t": 1.0, "event": "add", "training_iteration": 0, "donor": -1,
                      "config_json": '{"x": 1}'}]},
        {"results": [], "segments": [{"rank": 2, "trial_id": 4, "start": 2.0, "ranks": "2,3", "end": None,
                                      "how": None}]},
    ]
    parts = [write_part(tmp_path, 10 * i + 1, 10 * i + 10, part)[0] for i, part in enumerate(rows)]
    whole = {name: concat_columns([read_part(tmp_path, part)[name] for part in parts]) for name in TABLES}
    with h5py.File(tmp_path / "whole.h5", "w") as f:  # the tables concatenated whole, written and read back
        groups = {name: write_table(f, name, columns=whole[name]) for name in TABLES}
        kinds_whole = {name: {d.attrs["name"]: stored_kind(d) for d in groups[name].values()} for name in TABLES}
        expected = {name: read_table(groups[name])[0] for name in TABLES}

    merged, kinds = merge_parts(tmp_path, parts)

    assert (merged.first_seq, merged.last_seq, merged.results, merged.segments, merged.lineage) == (1, 40, 5, 2, 1)
    back = read_part(tmp_path, merged)
    for name in TABLES:
        columns, length = back[name]
        assert length == sum(part.length(name) for part in parts)
        assert list(columns) == list(expected[name]), name  # the same columns, in the same order
        for column, array in columns.items():
            assert _same(array, expected[name][column]), (name, column, array, expected[name][column])
        assert kinds[name] == kinds_whole[name]
    results = back["results"][0]
    assert results["training_iteration"].dtype == np.int64 and results["only_here"].dtype == np.float64
    assert results["only_here"][0] == 7 and math.isnan(results["only_here"][1])
    assert list(results["mixed"])[2:] == ["3.5", "4.0", "text"]  # numbers written as text
    assert kinds["results"]["mixed"] == "S4" and kinds["lineage"]["config_json"] == "S8"  # fixed-length, below


def _merge_traced(tmp_path, parts):
    """merge_parts(tmp_path, parts), and the peak of what Python allocated meanwhile."""
    tracemalloc.start()
    try:
        merged, kinds = merge_parts(tmp_path, parts)
        return merged, kinds, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_merge_holds_one_column_of_its_inputs_not_every_table(tmp_path):
    """Four parts of 60,000 results with 8 number columns (15 MiB of numbers in all): what Python
    allocates during the merge stays under the merged file (its image is built in memory) plus three
    columns; reading every input whole and concatenating would take twice the data on top."""
    n, columns = 60_000, [f"m{i}" for i in range(6)]
    rng = np.random.default_rng(0)
    parts = []
    for i in range(4):
        rows = [{"trial_id": i * n + r, "training_iteration": 1, **dict(zip(columns, rng.random(len(columns))))}
                for r in range(n)]
        parts.append(write_part(tmp_path, 10 * i + 1, 10 * i + 10, {"results": rows})[0])
    column_bytes = 4 * n * 8

    merged, _, peak = _merge_traced(tmp_path, parts)

    size = (tmp_path / merged.file).stat().st_size
    assert size > 8 * column_bytes  # the image holds every column
    assert peak < size + 3 * column_bytes, (peak / 2**20, size / 2**20, column_bytes / 2**20)
    assert merged.results == 4 * n
    assert list(read_part(tmp_path, merged)["results"][0]["trial_id"]) == list(range(4 * n))


def test_a_merge_of_fixed_length_strings_holds_no_python_object_per_value(tmp_path):
    """Four parts of 60,000 results with two short string columns: what Python allocates during the
    merge stays under the merged file plus three string columns as bytes; reading them as ``str``
    (a Python object per value, about 60 bytes) took 38 MB here, 3.4 times this bound."""
    n = 60_000
    parts = [write_part(tmp_path, i + 1, i + 1, {"results": [
        {"trial_id": r, "training_iteration": 1, "host": f"node{i:03d}", "gpus": "0,1"} for r in range(n)]})[0]
        for i in range(4)]
    column_bytes = 4 * n * len("node000")

    merged, kinds, peak = _merge_traced(tmp_path, parts)

    size = (tmp_path / merged.file).stat().st_size
    assert (kinds["results"]["host"], kinds["results"]["gpus"]) == ("S7", "S3")
    assert peak < size + 3 * column_bytes, (peak / 2**20, size / 2**20, column_bytes / 2**20)
    hosts = read_part(tmp_path, merged)["results"][0]["host"]
    assert list(np.unique(hosts)) == [f"node{i:03d}" for i in range(4)] and len(hosts) == 4 * n
