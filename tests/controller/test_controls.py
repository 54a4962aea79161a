"""The controller's side of the control channel (hpctune.controller.controls): a trial paused now
pauses at its next result and runs again first, a new config is journaled and survives a resume,
and at an allocation's end a trial pauses at its checkpoint (the trial process's side:
tests/backends/mpi/test_trial_process.py; SIGUSR1 and SIGUSR2 on real ranks: tests/e2e/test_signals.py)."""
from __future__ import annotations

import pytest

from hpctune.enums import Control, Decision, SegmentEnd
from hpctune.store import load_experiment

from sim_driver import SimDriver, make_controller


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
