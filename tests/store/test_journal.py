"""The journal: records in order, a torn last line ignored, segments rotated after snapshots."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hpctune.enums import RecordKind
from hpctune.store.journal import Journal, read_journal


def test_record_kinds_keep_their_lowercase_names_on_disk():
    assert [kind.key for kind in RecordKind] == ["ready", "result", "end", "interrupt", "decision", "state",
                                                 "add", "launch", "status", "pause", "config", "deadline",
                                                 "exploit", "search_end", "undo_exploit"]  # docs/hdf5-layout.md
    assert all(RecordKind.from_key(kind.key) is kind for kind in RecordKind)
    for key in ("RESULT", "rewind", None, ["result"]):
        with pytest.raises(ValueError, match="unknown record kind"):
            RecordKind.from_key(key)


def test_append_flush_read_in_order(tmp_path):
    journal = Journal(tmp_path / "j", next_seq=1)
    for i in range(5):
        journal.append({"k": "result", "row": {"loss": np.float32(i / 2), "nan": math.nan}})
    assert list(read_journal(tmp_path / "j")) == []  # buffered, not yet handed to the OS
    journal.flush()
    records = list(read_journal(tmp_path / "j"))
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[3]["row"]["loss"] == 1.5 and math.isnan(records[0]["row"]["nan"])
    assert [r["seq"] for r in read_journal(tmp_path / "j", after_seq=3)] == [4, 5]


def test_torn_last_line_is_ignored(tmp_path):
    journal = Journal(tmp_path / "j", next_seq=1)
    journal.append({"k": "ready", "rank": 1})
    journal.flush()
    segment = next((tmp_path / "j").glob("*.jsonl"))
    with open(segment, "a") as f:
        f.write('{"k":"result","row":{"lo')  # a crash in the middle of a write
    assert [r["k"] for r in read_journal(tmp_path / "j")] == ["ready"]


def test_rotate_deletes_segments_covered_by_the_snapshot(tmp_path):
    journal = Journal(tmp_path / "j", next_seq=1)
    for _ in range(3):
        journal.append({"k": "x"})
    journal.rotate(covered_seq=3)
    journal.append({"k": "y"})
    journal.flush()
    assert sorted(p.name for p in (tmp_path / "j").glob("*.jsonl")) == ["000000000004.jsonl"]
    assert [r["seq"] for r in read_journal(tmp_path / "j")] == [4]
