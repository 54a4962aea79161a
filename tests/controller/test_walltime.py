"""Walltime-aware scheduling: with the allocation's deadline known, no iteration is started that
cannot end before it, and no segment that cannot reach its first result (virtual time)."""
from __future__ import annotations

from hpctune.enums import Control, Decision, SegmentEnd
from hpctune.store import load_experiment

from sim_driver import make_controller, report_at


def _start(tmp_path, deadline: float | None, num_samples: int = 2):
    controller = make_controller(tmp_path, "fifo", num_samples=num_samples)
    controller.on_workers_joined(1, t=0.0)
    if deadline is not None:
        controller.set_deadline(deadline, t=0.0)
    trial_id = controller.take_launches()[0].trial_id
    controller.placed(trial_id, [1], t=0.0)
    return controller, trial_id


def test_a_trial_pauses_at_its_last_result_that_leaves_room_for_no_other_iteration(tmp_path):
    controller, trial_id = _start(tmp_path, deadline=95.0)
    for i in range(1, 8):  # 10 s iterations; the deadline at 95 s
        assert report_at(controller, trial_id, i, t=10.0 * i) == Decision.CONTINUE
    assert controller.take_controls() == []
    # at 80 s one more iteration fits (ends at 90 s), and it is asked to checkpoint at its end
    assert report_at(controller, trial_id, 8, t=80.0, checkpoint=False) == Decision.CONTINUE
    assert [(m.trial_id, m.control) for m in controller.take_controls()] == [(trial_id, Control.CHECKPOINT)]
    # at 90 s the next one would end at 100 s, after the deadline: paused here, at its checkpoint
    assert report_at(controller, trial_id, 9, t=90.0) == Decision.PAUSE
    controller.on_segment_end(trial_id, SegmentEnd.PAUSED, t=90.0)
    # a new segment (start-up plus a 10 s iteration) no longer fits: the allocation stops early
    assert controller.take_launches() == []
    assert controller.stopped_for_deadline and controller.is_finished
    assert controller.finalize() == "interrupted"
    trial = controller.trials[trial_id]
    assert (trial.state.name, trial.checkpoint_iteration, len(controller.trials)) == ("PAUSED", 9, 1)


def test_without_a_deadline_nothing_changes(tmp_path):
    controller, trial_id = _start(tmp_path, deadline=None)
    for i in range(1, 12):
        assert report_at(controller, trial_id, i, t=10.0 * i) == Decision.CONTINUE
    assert not controller.stopped_for_deadline


def test_a_replay_of_the_journal_takes_the_same_decisions(tmp_path):
    controller, trial_id = _start(tmp_path / "a", deadline=95.0)
    decisions = [report_at(controller, trial_id, i, t=10.0 * i) for i in range(1, 10)]
    controller.store.flush()
    view = load_experiment(controller.store.folder)
    fresh = make_controller(tmp_path / "b", "fifo", num_samples=2)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    assert decisions[-1] == Decision.PAUSE
    assert fresh.trials[trial_id].iteration == 9
    # the new allocation sets its own deadline: the old one is gone after the restore
    assert fresh.state.deadline is None


def test_an_iteration_longer_than_any_allocation_is_not_held_back_for_ever(tmp_path):
    """40 s iterations, 30 usable seconds an allocation: no allocation could fit one, so waiting for
    a better one would requeue for ever; it starts and goes on (the stop point ends it)."""
    controller = make_controller(tmp_path, "fifo", num_samples=2)
    controller.on_workers_joined(1, t=0.0)
    controller.set_deadline(30.0, window=30.0, t=0.0)
    trial_id = controller.take_launches()[0].trial_id
    controller.placed(trial_id, [1], t=0.0)
    assert report_at(controller, trial_id, 1, t=40.0, seconds=40.0) == Decision.CONTINUE
    assert not controller.stopped_for_deadline
