"""Checkpoints: HDF5 round trip of nested values, atomic writes, no pickle by default."""
from __future__ import annotations

import os

import numpy as np
import pytest

from hpctune.store import load_checkpoint, save_checkpoint


def test_round_trip_of_nested_values(tmp_path):
    state = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "epoch": 4, "lr": 0.1, "name": "adam",
             "flag": True, "none": None, "raw": b"\x00\x01", "history": [1.0, 2.5], "pair": (1, "a"),
             "nested": {"inner": {"v": np.ones(3)}, "n": np.int64(7)}}
    path = save_checkpoint(tmp_path / "c.h5", state)
    back = load_checkpoint(path)
    assert back["w"].dtype == np.float32 and np.array_equal(back["w"], state["w"])
    assert (back["epoch"], back["lr"], back["name"], back["flag"], back["none"], back["raw"]) == \
        (4, 0.1, "adam", True, None, b"\x00\x01")
    assert type(back["epoch"]) is int and type(back["flag"]) is bool
    assert back["history"] == [1.0, 2.5] and back["pair"] == (1, "a")
    assert np.array_equal(back["nested"]["inner"]["v"], np.ones(3)) and back["nested"]["n"] == 7


def test_objects_need_pickle_explicitly(tmp_path):
    with pytest.raises(TypeError, match="checkpoint value obj of type object is not supported"):
        save_checkpoint(tmp_path / "c.h5", {"obj": object()})
    assert not list(tmp_path.iterdir())  # no partial file left behind
    save_checkpoint(tmp_path / "p.h5", {"obj": {1, 2}}, allow_pickle=True)
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_checkpoint(tmp_path / "p.h5")
    assert load_checkpoint(tmp_path / "p.h5", allow_pickle=True)["obj"] == {1, 2}


def test_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = save_checkpoint(tmp_path / "c.h5", {"a": 1})
    finally:
        os.umask(old)
    assert os.stat(path).st_mode & 0o777 == 0o640
