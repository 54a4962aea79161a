"""A resumed trial whose newest checkpoint is missing or cannot be read goes on from its newest
intact one, saying so in one line that names both files; with none left it ends ERROR with one
line naming the file. Before, the trial's process died on an h5py traceback, and the trial was
ERROR for good although an older checkpoint was there. (A checkpoint the trial's own process cannot
read: tests/test_session.py.)
"""
from __future__ import annotations

import json
import shutil

import pytest

import hpctune
from hpctune.enums import TrialState
from hpctune.store import load_experiment, save_checkpoint
from hpctune.store.trials import trials_from_columns, trials_to_columns

from sim_driver import SimDriver, make_controller


def _paused_at_five(tmp_path):
    """Trial 0 of a fifo experiment paused after its 5th result (real HDF5 checkpoints for it,
    checkpoint_keep 2: iterations 4 and 5 kept); a snapshot; the folder to resume from."""
    controller = make_controller(tmp_path / "a", "fifo", num_samples=1)
    driver = SimDriver(controller, workers=1).start()
    while not (controller.trials and controller.trials[0].iteration == 5):
        driver.step()
    for iteration in (4, 5):  # the driver's are empty files
        save_checkpoint(controller.store.root / f"trials/000000/checkpoint_{iteration:06d}.h5", {"iteration": iteration})
    controller.store.flush()
    controller.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), "running")
    return controller


def _resumed(tmp_path, old, trials=None):
    """A controller restored from ``old``'s folder (``trials``: those to restore instead), its
    checkpoints checked, and one worker joined: ``(controller, the launch it made or None)``."""
    view = load_experiment(old.store.folder)
    fresh = make_controller(tmp_path / "b", "fifo", num_samples=1)
    shutil.copytree(old.store.root / "trials", fresh.store.root / "trials", dirs_exist_ok=True)
    fresh.restore(view.controller_state, trials if trials is not None else view.restored_trials(),
                  view.records_after_snapshot)
    fresh.check_checkpoints()
    fresh.on_workers_joined(1)
    launches = fresh.take_launches()
    return fresh, launches[0] if launches else None


def test_a_missing_newest_checkpoint_gives_way_to_the_one_before(tmp_path):
    old = _paused_at_five(tmp_path)
    (old.store.root / "trials/000000/checkpoint_000005.h5").unlink()
    fresh, launch = _resumed(tmp_path, old)
    assert fresh.take_notices() == ["warning: trial 0: its checkpoint trials/000000/checkpoint_000005.h5 is missing; "
                                    "it goes on from trials/000000/checkpoint_000004.h5 (iteration 4)"]
    assert launch.task.checkpoint == str(fresh.store.root / "trials/000000/checkpoint_000004.h5")
    assert launch.task.start_iteration == 4
    assert fresh.trials[0].iteration == 5  # iteration 5 is not recorded a second time


def test_a_truncated_newest_checkpoint_gives_way_to_the_one_before(tmp_path):
    old = _paused_at_five(tmp_path)
    newest = old.store.root / "trials/000000/checkpoint_000005.h5"
    data = newest.read_bytes()
    newest.write_bytes(data[:len(data) // 2])
    fresh, launch = _resumed(tmp_path, old)
    assert fresh.take_notices() == [
        "warning: trial 0: its checkpoint trials/000000/checkpoint_000005.h5 cannot be read (truncated file: "
        f"eof = {len(data) // 2}, sblock->base_addr = 0, stored_eof = {len(data)}); it goes on from "
        "trials/000000/checkpoint_000004.h5 (iteration 4)"]
    assert launch.task.start_iteration == 4
    assert newest.exists()  # left for the user to look at; the trial writes that name again


def test_with_no_intact_checkpoint_left_the_trial_ends_as_error_in_one_line(tmp_path):
    old = _paused_at_five(tmp_path)
    for name in ("checkpoint_000004.h5", "checkpoint_000005.h5"):
        (old.store.root / "trials/000000" / name).unlink()
    fresh, launch = _resumed(tmp_path, old)
    line = "trial 0: its checkpoint trials/000000/checkpoint_000005.h5 is missing and no older checkpoint of it is intact"
    assert fresh.take_notices() == [f"warning: {line}: it ends as ERROR"]
    assert launch is None
    trial = fresh.trials[0]
    assert (trial.state, trial.error, trial.end_reason) == (TrialState.ERROR, line, "checkpoint lost")
    assert fresh.is_finished and fresh.finalize() == "finished"


def test_a_snapshot_with_plain_paths_in_the_history_still_falls_back(tmp_path):
    """Snapshots written before each checkpoint's iteration was kept hold plain paths: the iteration
    comes from the file's name, the time in proportion to the newest one's."""
    old = _paused_at_five(tmp_path)
    (old.store.root / "trials/000000/checkpoint_000005.h5").unlink()
    columns = trials_to_columns(list(old.trials.values()))
    columns["checkpoint_history_json"][0] = json.dumps([ref for ref, _, _ in old.trials[0].checkpoint_history])
    trials = trials_from_columns(columns)
    time_at_5 = old.trials[0].checkpoint_time_s
    assert trials[0].checkpoint_history == [["trials/000000/checkpoint_000004.h5", 4, time_at_5 * 4 / 5],
                                            ["trials/000000/checkpoint_000005.h5", 5, time_at_5]]
    fresh, launch = _resumed(tmp_path, old, trials)
    assert fresh.take_notices() == ["warning: trial 0: its checkpoint trials/000000/checkpoint_000005.h5 is missing; "
                                    "it goes on from trials/000000/checkpoint_000004.h5 (iteration 4)"]
    assert (launch.task.start_iteration, launch.task.time_total_s) == (4, pytest.approx(time_at_5 * 4 / 5))


# -- on real MPI ranks -------------------------------------------------------------------------

@pytest.mark.mpi
def test_a_killed_run_resumes_from_the_newest_intact_checkpoint_of_each_trial(tmp_path, run_cli):
    """SIGKILL, then trial 0's newest checkpoint deleted and trial 1's truncated: both go on from the
    one before (one line each) and the experiment finishes with every iteration once. From a copy
    of the killed run with every checkpoint of trial 0 deleted: trial 0 ends ERROR in one line."""
    from conftest import assert_finished, kill_run, slow_counter_spec, start_run, wait_until

    epochs = 30
    spec = slow_counter_spec(tmp_path, "lost", num_samples=3, epochs=epochs, sleep=0.05)
    folder = tmp_path / "runs" / "lost"
    process = start_run(spec, "spawn")
    try:
        wait_until(folder, lambda run: run.results.groupby("trial_id").size().reindex([0, 1]).min() >= 5,
                   "trials 0 and 1 did not both report 5 results")
    finally:
        kill_run(spec)
        process.wait(timeout=30)
    newest = hpctune.Analysis(folder).results.groupby("trial_id").training_iteration.max()
    gone = tmp_path / "copy" / "lost"
    shutil.copytree(folder, gone)

    def ref(trial, iteration):
        return f"trials/{trial:06d}/checkpoint_{iteration:06d}.h5"

    (folder / ref(0, newest[0])).unlink()
    damaged = folder / ref(1, newest[1])
    size = damaged.stat().st_size
    damaged.write_bytes(damaged.read_bytes()[:size // 2])
    done = run_cli("resume", str(folder), "--workers", "2")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert (f"[hpctune lost] warning: trial 0: its checkpoint {ref(0, newest[0])} is missing; it goes on from "
            f"{ref(0, newest[0] - 1)} (iteration {newest[0] - 1})") in lines
    assert (f"[hpctune lost] warning: trial 1: its checkpoint {ref(1, newest[1])} cannot be read (truncated file: "
            f"eof = {size // 2}, sblock->base_addr = 0, stored_eof = {size}); it goes on from {ref(1, newest[1] - 1)} "
            f"(iteration {newest[1] - 1})") in lines
    assert "Traceback" not in done.stderr
    analysis = assert_finished(folder, trials=3, epochs=epochs)
    for trial in (0, 1):  # trained on from the checkpoint before
        assert newest[trial] - 1 in set(analysis.results[analysis.results.trial_id == trial].started_from)

    for path in (gone / "trials" / "000000").glob("*.h5"):
        path.unlink()
    done = run_cli("resume", str(gone), "--workers", "2")
    assert done.returncode == 0, done.stderr
    line = f"trial 0: its checkpoint {ref(0, newest[0])} is missing and no older checkpoint of it is intact"
    assert f"[hpctune lost] warning: {line}: it ends as ERROR" in done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    trials = hpctune.Analysis(gone).trials.set_index("trial_id")
    assert (trials.loc[0, "state"], trials.loc[0, "error"], trials.loc[0, "end_reason"]) == (
        "ERROR", line, "checkpoint lost")
    assert list(trials.loc[[1, 2], "state"]) == ["TERMINATED", "TERMINATED"]
    assert list(trials.loc[[1, 2], "training_iteration"]) == [epochs, epochs]
