"""String columns (hpctune.store.tables): fixed-length where that takes no more room than HDF5's
variable-length strings, variable-length where a few long values would blow it up; read back the
same either way, and read whole through experiment.h5 (a merge's memory: test_parts.py)."""
from __future__ import annotations

import h5py

from hpctune.store.head import write_head
from hpctune.store.parts import merge_parts, read_part, write_part
from hpctune.store.tables import read_table, stored_kind, write_table

TRACEBACK = "Traceback (most recent call last):\n" + "  File 'train.py', line 1\n" * 200


def _results(notes: list, **more) -> dict:
    return {"results": [{"trial_id": i, "training_iteration": 1, "note": note, **{k: v[i] for k, v in more.items()}}
                        for i, note in enumerate(notes)]}


def test_short_strings_are_stored_fixed_length_and_a_long_one_among_short_ones_variable_length(tmp_path):
    rows = [{"host": "node1", "error": None, "text": "héllo", "config": {"lr": 0.1}, "odd": "bad\udcff"},
            {"host": "node22", "error": TRACEBACK, "text": "", "config": [1, 2], "odd": "a\x00b"}]
    rows += [{"host": "node3", "error": None, "text": "x", "config": None, "odd": "c"}] * 98
    with h5py.File(tmp_path / "t.h5", "w") as f:
        group = write_table(f, "t", rows=rows)
        kinds = {d.attrs["name"]: stored_kind(d) for d in group.values()}
        columns, length = read_table(group)

    assert kinds == {"host": "S6", "error": "O", "text": "S6", "config": "S11", "odd": "S9"}
    assert length == 100
    assert list(columns["host"][:3]) == ["node1", "node22", "node3"]
    assert list(columns["error"][:3]) == [None, TRACEBACK, None]  # "" reads back as None, as before
    assert list(columns["text"][:3]) == ["héllo", None, "x"]  # width counts UTF-8 bytes, not characters
    assert list(columns["config"][:3]) == ['{"lr": 0.1}', "[1, 2]", None]  # other values as JSON
    assert list(columns["odd"][:3]) == ["bad\\udcff", "a\x00b", "c"]  # a lone surrogate as HDF5 can hold it


def test_a_merge_widens_fixed_length_parts_and_is_variable_length_where_fixed_would_not_pay(tmp_path):
    short = write_part(tmp_path, 1, 1, _results(["n1"] * 1000))[0]
    wide = write_part(tmp_path, 2, 2, _results(["w" * 40] * 1000))[0]
    absent = write_part(tmp_path, 3, 3, {"results": [{"trial_id": 7, "training_iteration": 1}]})[0]
    long = write_part(tmp_path, 4, 4, _results(["L" * 500] * 3))[0]  # fixed on its own: every value is long

    merged, kinds = merge_parts(tmp_path, [short, wide, absent])
    notes = read_part(tmp_path, merged)["results"][0]["note"]
    assert kinds["results"]["note"] == "S40"
    assert list(notes) == ["n1"] * 1000 + ["w" * 40] * 1000 + [None]

    merged, kinds = merge_parts(tmp_path, [short, long])  # 1,003 values 500 bytes wide would not pay
    notes = read_part(tmp_path, merged)["results"][0]["note"]
    assert kinds["results"]["note"] == "O"
    assert list(notes) == ["n1"] * 1000 + ["L" * 500] * 3


def test_experiment_h5_reads_string_columns_whole_across_widths_and_both_forms(tmp_path):
    narrow, kinds_narrow = write_part(tmp_path, 1, 1, _results(["ab", "c"]))
    wide, kinds_wide = write_part(tmp_path, 2, 2, _results(["w" * 30]))
    varying, kinds_varying = write_part(tmp_path, 3, 3, _results([""] * 20 + [TRACEBACK]))
    columns_of = {narrow.file: kinds_narrow, wide.file: kinds_wide, varying.file: kinds_varying}
    assert (kinds_narrow["results"]["note"], kinds_wide["results"]["note"], kinds_varying["results"]["note"]) == (
        "S2", "S30", "O")
    spec = {"name": "s", "metric": "loss", "mode": "min"}

    for parts, expected in (([narrow, wide], ["ab", "c", "w" * 30]),
                            ([narrow, wide, varying], ["ab", "c", "w" * 30] + [""] * 20 + [TRACEBACK])):
        write_head(tmp_path, spec=spec, controller_state=None, python_path=[], trials=[], running=[], parts=parts,
                   columns_of=columns_of, status="running", seq=3)
        with h5py.File(tmp_path / "experiment.h5", "r") as f:  # plain h5py, through the virtual datasets
            assert list(f["results/note"].asstr()[()]) == expected
