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


@pytest.mark.parametrize("state, message", [
    ({"obj": object()}, "checkpoint value obj of type object is not supported: "
                        "convert it to numpy arrays, numbers, strings, lists or dicts"),
    ({"opt": {"sets": {1, 2}}}, "checkpoint value opt/sets of type set is not supported: "
                                "convert it to numpy arrays, numbers, strings, lists or dicts"),
    ({"ws": [np.ones(2)]}, "checkpoint value ws is a list holding a value that is not a number, string, list "
                           "or dict: convert its items, or make it a numpy array or a dict"),
], ids=["object", "nested-set", "list-of-arrays"])
def test_unsupported_value_says_what_to_convert_it_to(tmp_path, state, message):
    # hpctune.report and Trainable.save_checkpoint take no allow_pickle: the message must not offer it
    with pytest.raises(TypeError) as info:
        save_checkpoint(tmp_path / "c.h5", state)
    assert str(info.value) == message
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_pickle_only_when_asked_for(tmp_path):
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
