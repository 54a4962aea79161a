"""The experiment store's checkpoint files (hpctune.store.ExperimentStore): a copied checkpoint is
the recipient's own file, and a retired checkpoint is deleted only once the journal records that
made it obsolete are fsynced (a whole PBT run killed and resumed from any durable prefix of its
journal: tests/e2e/test_checkpoint_deletion.py)."""
from __future__ import annotations

import os

import h5py

from hpctune.enums import RecordKind
from hpctune.schedulers import FIFOScheduler
from hpctune.store import load_checkpoint, save_checkpoint

from sim_driver import make_controller


def _checkpoint(store, trial_id: int, iteration: int) -> str:
    ref = f"trials/{trial_id:06d}/checkpoint_{iteration:06d}.h5"
    save_checkpoint(store.root / ref, {"iteration": iteration})
    return ref


def test_a_retired_checkpoint_goes_at_the_next_fsync_not_before(tmp_path, monkeypatch):
    """Under a long fsync interval: kept through flushes, deleted by the fsync of a snapshot's
    rotation, and by the fsync of close; with fsync at every flush, at once."""
    monkeypatch.setenv("HPCTUNE_FSYNC_INTERVAL", "1000")
    store = make_controller(tmp_path, "fifo").store
    try:
        first, second = _checkpoint(store, 0, 1), _checkpoint(store, 0, 2)
        store.record(RecordKind.RESULT, trial=0, row={"training_iteration": 3}, ckpt=None, t=0.0)
        store.flush()
        store.retire_checkpoint(first, 0)
        store.record(RecordKind.RESULT, trial=0, row={"training_iteration": 4}, ckpt=None, t=0.0)
        store.flush()
        assert (store.root / first).exists()  # the record that made it obsolete is not fsynced yet
        store.write_snapshot({}, [], "running")
        assert not (store.root / first).exists()
        store.record(RecordKind.RESULT, trial=0, row={"training_iteration": 5}, ckpt=None, t=0.0)
        store.flush()
        store.retire_checkpoint(second, 0)
        store.flush()
        assert (store.root / second).exists()
    finally:
        store.close()
    assert not (store.root / second).exists()

    monkeypatch.setenv("HPCTUNE_FSYNC_INTERVAL", "0")
    store = make_controller(tmp_path / "every", "fifo").store
    try:
        ref = _checkpoint(store, 1, 1)
        store.record(RecordKind.RESULT, trial=1, row={"training_iteration": 2}, ckpt=None, t=0.0)
        store.flush()
        store.retire_checkpoint(ref, 1)
        assert not (store.root / ref).exists()
    finally:
        store.close()


def test_a_copied_checkpoint_is_the_recipient_s_own_file(tmp_path):
    """A hard link where the file system has them: deleting the donor's leaves the copy whole."""
    store = make_controller(tmp_path, FIFOScheduler()).store
    try:
        source = tmp_path / "sim" / "trials" / "000000" / "checkpoint_000003.h5"
        source.parent.mkdir(parents=True)
        save_checkpoint(source, {"iteration": 3, "w": [1.0, 2.0]})
        copy = store.copy_checkpoint("trials/000000/checkpoint_000003.h5", 0, 7, "exploit_000000_3.h5")
        assert copy == "trials/000007/exploit_000000_3.h5"
        target = tmp_path / "sim" / copy
        assert os.stat(target).st_nlink == 2  # no bytes copied
        assert store.copy_checkpoint("trials/000000/checkpoint_000003.h5", 0, 7, "exploit_000000_3.h5") == copy
        store.delete_checkpoint("trials/000000/checkpoint_000003.h5", 0)
        assert not source.exists()
        assert load_checkpoint(target) == {"iteration": 3, "w": [1.0, 2.0]}
        with h5py.File(target, "r") as f:
            assert f["iteration"][()] == 3
    finally:
        store.close()
