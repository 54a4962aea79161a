"""The control channel: the coordinator tells a running trial to checkpoint now, to pause, or to take
a new config, without waiting for the trial's next result to answer."""
from __future__ import annotations

import os
import signal
import time

import pytest

import hpctune
from hpctune.backends.mpi.trial_process import TrialProcess
from hpctune.enums import Control, Decision, SegmentEnd
from hpctune.store import load_experiment
from hpctune.trial import TrialTask

from conftest import REPO, kill_run, run_pids, start_run, wait_for_results
from sim_driver import SimDriver, make_controller


def _task(tmp_path, trainable: str, config: dict, trial_id: int = 0) -> TrialTask:
    return TrialTask(trial_id=trial_id, trainable=f"trainable_fixtures:{trainable}", config=config,
                     experiment_dir=str(tmp_path), trial_dir=str(tmp_path / "trials" / f"{trial_id:06d}"),
                     checkpoint=None, start_iteration=0, time_total_s=0.0, metric="loss",
                     python_path=[str(REPO / "tests")])


def _run(process: TrialProcess, task: TrialTask, controls_after: dict[int, tuple]) -> list[tuple[dict, str | None]]:
    """Run ``task`` in the trial process; after the result of iteration i, send ``controls_after[i]``
    (before the decision, as a coordinator may). Returns every (row, checkpoint) reported."""
    seen = []

    def on_result(row, checkpoint):
        seen.append((row, checkpoint))
        for control, payload in controls_after.get(row["training_iteration"], ()):
            process.send_control(control, payload)
        return Decision.CONTINUE

    process.run(task, on_result)
    return seen


def test_a_function_trial_sees_a_new_config_and_checkpoints_when_asked(tmp_path):
    process = TrialProcess(rank=1)
    try:
        seen = _run(process, _task(tmp_path, "checkpoints_on_request", {"lr": 0.1, "epochs": 4}),
                    {1: [(Control.CONFIG, {"lr": 0.5, "epochs": 4})], 2: [(Control.CHECKPOINT, None)]})
    finally:
        process.close()
    assert [row["lr"] for row, _ in seen] == [0.1, 0.5, 0.5, 0.5]
    assert [row["asked"] for row, _ in seen] == [0, 0, 1, 0]      # asked once, at the report after
    assert [checkpoint for _, checkpoint in seen] == [None, None, "trials/000000/checkpoint_000003.h5", None]


@pytest.mark.parametrize("in_place", [True, False])
def test_a_class_trial_takes_a_new_config_before_its_next_step(tmp_path, in_place):
    """reset_config True: the same object goes on; False: built again with the new config from
    the checkpoint its last step saved, so its own count continues."""
    process = TrialProcess(rank=1)
    config = {"lr": 0.1, "epochs": 4, "in_place": in_place}
    try:
        seen = _run(process, _task(tmp_path, "Reconfigurable", config),
                    {2: [(Control.CONFIG, {**config, "lr": 0.7})]})
    finally:
        process.close()
    rows = [row for row, _ in seen]
    assert [row["lr"] for row in rows] == [0.1, 0.1, 0.7, 0.7]
    assert [row["loss"] * row["training_iteration"] for row in rows] == pytest.approx([0.1, 0.1, 0.7, 0.7])
    assert [row["builds"] - rows[0]["builds"] for row in rows] == ([0, 0, 0, 0] if in_place else [0, 0, 1, 1])


def test_pause_now_pauses_at_the_next_result_and_runs_the_trial_again_first(tmp_path):
    controller = make_controller(tmp_path, "fifo", num_samples=4)
    driver = SimDriver(controller, workers=2).start()
    driver.run(max_events=3)
    target = controller.running[0]
    controller.pause_now(target)
    assert [(m.trial_id, m.control) for m in controller.take_controls()] == [(target, Control.PAUSE)]
    before = len([1 for trial_id, _, _ in driver.log if trial_id == target])
    assert driver.run()
    decisions = [d for trial_id, _, d in driver.log if trial_id == target]
    assert decisions[before] == "PAUSE" and "PAUSE" not in decisions[before + 1:]
    starts = [start for trial_id, _, start in driver.launches if trial_id == target]
    assert starts == [0, before + 1]          # again, from the checkpoint of the paused result
    assert driver.iterations()[target] == list(range(1, 10))
    assert controller.finalize() == "finished"


def test_a_new_config_is_journaled_and_survives_a_resume(tmp_path):
    controller = make_controller(tmp_path / "a", "fifo", num_samples=2)
    driver = SimDriver(controller, workers=1).start()
    driver.run(max_events=2)
    trial_id = controller.running[0]
    controller.set_config(trial_id, {"x": 0.5, "y": 0.5, "epochs": 9})
    assert [(m.trial_id, m.control, m.payload["x"]) for m in controller.take_controls()] == \
        [(trial_id, Control.CONFIG, 0.5)]
    controller.store.flush()
    view = load_experiment(controller.store.folder)
    fresh = make_controller(tmp_path / "b", "fifo", num_samples=2)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    assert fresh.trials[trial_id].config == {"x": 0.5, "y": 0.5, "epochs": 9}
    assert driver.run()
    with pytest.raises(ValueError, match=f"trial {trial_id} is TERMINATED: its config can no longer change"):
        controller.set_config(trial_id, {"x": 0.1})


@pytest.mark.mpi
@pytest.mark.parametrize("launcher", ["spawn", "mpiexec"])
def test_sigusr1_makes_every_running_trial_checkpoint_at_its_next_report(tmp_path, launcher):
    spec = tmp_path / "usr1.yaml"
    spec.write_text("name: usr1\ntrainable: trainable_fixtures:checkpoints_on_request\nmetric: loss\n"
                    "num_samples: 2\nspace: {lr: {uniform: [0, 1]}, epochs: 25, sleep: 0.1}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    folder = tmp_path / "runs" / "usr1"
    process = start_run(spec, launcher)
    try:
        wait_for_results(folder)
        signalled = time.time()
        os.kill(run_pids(spec, rank=0)[0], signal.SIGUSR1)
        _, stderr = process.communicate(timeout=60)
    finally:
        kill_run(spec)
    assert process.returncode == 0, stderr
    assert "received SIGUSR1: 2 running trial(s) checkpoint at their next report" in stderr
    results = hpctune.Analysis(folder).results
    trials = {trial.trial_id: trial for trial in load_experiment(folder).restored_trials()}
    for trial_id, rows in results.groupby("trial_id"):
        asked = rows[rows.asked == 1]
        assert len(asked) == 1, rows      # asked once; the checkpoint with that report answers it
        assert trials[trial_id].checkpoint_iteration == int(asked.training_iteration.iloc[0])
        assert signalled < asked.timestamp.iloc[0] < signalled + 2.0
        assert (rows[rows.timestamp < signalled].asked == 0).all()


@pytest.mark.mpi
def test_sigusr2_the_allocation_ends_trials_checkpoint_and_pause_then_resume_continues(tmp_path):
    """SIGUSR2 (Slurm's --signal warning) outside Slurm: the trials checkpoint when asked and pause,
    the run exits 1 (no job to requeue), and resume goes on from those checkpoints."""
    spec = tmp_path / "usr2.yaml"
    spec.write_text("name: usr2\ntrainable: trainable_fixtures:checkpoints_on_request\nmetric: loss\n"
                    "num_samples: 2\nspace: {lr: {uniform: [0, 1]}, epochs: 25, sleep: 0.1}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    folder = tmp_path / "runs" / "usr2"
    process = start_run(spec, "spawn")
    try:
        wait_for_results(folder)
        os.kill(run_pids(spec, rank=0)[0], signal.SIGUSR2)
        _, stderr = process.communicate(timeout=60)
    finally:
        kill_run(spec)
    assert process.returncode == 1, stderr
    assert ("received SIGUSR2: 2 running trial(s) checkpoint and pause at their next result; nothing new "
            "starts; the next allocation continues") in stderr
    assert f"hpctune: experiment interrupted; continue it with 'hpctune resume {folder}'" in stderr
    paused = {trial.trial_id: trial for trial in load_experiment(folder).restored_trials()}
    assert {trial.state.name for trial in paused.values()} == {"PAUSED"}
    results = hpctune.Analysis(folder).results
    for trial_id, rows in results.groupby("trial_id"):  # the last result before the pause carried the checkpoint
        assert rows.asked.iloc[-1] == 1 and paused[trial_id].checkpoint_iteration == rows.training_iteration.max()


def _decision(decision) -> Decision:
    return Decision(getattr(decision, "action", decision))


@pytest.mark.parametrize("second_has_checkpoint", [True, False])
def test_at_an_allocation_s_end_a_trial_pauses_at_its_checkpoint_and_a_replay_agrees(tmp_path, second_has_checkpoint):
    """The result already on its way when "checkpoint now" left is answered CONTINUE; the next one
    pauses the trial (at the checkpoint it carries, if the trainable honoured the request)."""
    controller = make_controller(tmp_path / "a", "fifo", num_samples=1)
    controller.on_workers_joined(1)
    trial_id = controller.take_launches()[0].trial_id
    controller.placed(trial_id, [1])

    def row(i):
        return {"training_iteration": i, "loss": 1.0 / i, "time_total_s": float(i)}

    assert _decision(controller.on_result(trial_id, row(1), "trials/000000/checkpoint_000001.h5")) == Decision.CONTINUE
    controller.request_stop(why="time limit", checkpoint_first=True)
    assert [(m.trial_id, m.control) for m in controller.take_controls()] == [(trial_id, Control.CHECKPOINT)]
    assert _decision(controller.on_result(trial_id, row(2))) == Decision.CONTINUE
    checkpoint = "trials/000000/checkpoint_000003.h5" if second_has_checkpoint else None
    assert _decision(controller.on_result(trial_id, row(3), checkpoint)) == Decision.PAUSE
    controller.on_segment_end(trial_id, SegmentEnd.PAUSED)
    controller.store.flush()
    view = load_experiment(controller.store.folder)
    fresh = make_controller(tmp_path / "b", "fifo", num_samples=1)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    trial = fresh.trials[trial_id]
    assert (trial.state.name, trial.iteration) == ("PAUSED", 3)
    assert trial.checkpoint_iteration == (3 if second_has_checkpoint else 1)
