"""The controller's state is declared once (hpctune/controller/state.py): each field says how a
snapshot keeps it and whether a new allocation starts it afresh, and ``state_dict``, ``restore``
and the reset for a new allocation all follow from that. The snapshot's keys and forms stay those
experiments were written with (older snapshots, without the later keys, still load)."""
from __future__ import annotations

import dataclasses

import pytest

from hpctune.controller.messages import ControlMessage
from hpctune.controller.state import ControllerState
from hpctune.controller.state_fields import load_state_dict, reset_for_allocation, state_dict
from hpctune.enums import Control

from sim_driver import SimDriver, json_round_trip, make_controller, restored_controller

SNAPSHOT_KEYS = ["next_trial_id", "searcher_finished", "metric_seen", "free_ranks", "running", "requeue", "best",
                 "interrupting", "interrupted", "pause_requested", "checkpoint_grace", "exploiting", "tentative",
                 "exploit_waits", "iteration_seconds", "start_seconds", "end_seconds", "started_at", "spent_s",
                 "running_costs"]
"""A snapshot's ``controller_state`` keys before the scheduler's and the searcher's, in this order."""

PROCESS_OWN = {"trials", "counts", "notices", "obsolete_checkpoints", "now", "replaying", "hold_requests"}
"""The fields neither saved nor reset: a new field is one of these only if it says nothing of its own."""


def test_a_controller_saves_the_keys_a_snapshot_always_had(tmp_path):
    controller = make_controller(tmp_path, "fifo")
    assert list(controller.state_dict()) == [*SNAPSHOT_KEYS, "scheduler", "searcher"]


def test_every_field_says_what_becomes_of_it():
    undeclared = {field.name for field in dataclasses.fields(ControllerState) if not field.metadata}
    assert undeclared == PROCESS_OWN


def _busy_state() -> ControllerState:
    state = ControllerState(next_trial_id=9, searcher_finished=True, metric_seen=True, free_ranks=1,
                            running={5: None, 2: None}, requeue={8: None, 3: None}, best=(-0.25, 2),
                            interrupting=True, interrupted={7, 1}, pause_requested={5}, checkpoint_grace={5: 1, 2: 0},
                            exploiting={4: 2}, tentative={4: {"config": {"x": 1}, "donor": 2}}, exploit_waits={4},
                            started_at=12.5, deadline=99.0, window=50.0, stopped_for_deadline=True,
                            storage_full="no space left on device", placements={5: ([1], 3.0)},
                            controls=[ControlMessage(5, Control.PAUSE)], notices=["a line"])
    state.times.result(5, {"time_this_iter_s": 2.0}, 10.0)
    state.times.launched(2, 11.0)
    return state


def test_each_field_is_saved_in_its_json_form_and_loaded_back():
    saved = state_dict(_busy_state())
    assert list(saved) == SNAPSHOT_KEYS
    assert (saved["running"], saved["requeue"], saved["interrupted"]) == ([5, 2], [8, 3], [1, 7])
    assert (saved["checkpoint_grace"], saved["exploiting"]) == ([[2, 0], [5, 1]], [[4, 2]])
    assert saved["tentative"] == [[4, {"config": {"x": 1}, "donor": 2}]]
    assert (saved["best"], saved["iteration_seconds"], saved["start_seconds"]) == ((-0.25, 2), [2.0, 1], [0.0, 0])
    loaded = ControllerState()
    load_state_dict(loaded, json_round_trip(saved))
    assert state_dict(loaded) == saved
    assert list(loaded.running) == [5, 2] and loaded.best == (-0.25, 2) and loaded.checkpoint_grace == {5: 1, 2: 0}
    assert loaded.deadline is None and loaded.notices == []  # not saved


def test_an_older_snapshot_without_the_later_keys_loads_and_one_without_a_first_key_is_refused():
    first = {key: state_dict(_busy_state())[key] for key in SNAPSHOT_KEYS[:7]}
    loaded = ControllerState(started_at=3.0)
    load_state_dict(loaded, json_round_trip(first))
    assert (loaded.next_trial_id, loaded.requeue, loaded.best) == (9, {8: None, 3: None}, (-0.25, 2))
    assert (loaded.interrupting, loaded.tentative, loaded.started_at, loaded.times.iteration_seconds) == (
        False, {}, 3.0, [0.0, 0])
    del first["requeue"]
    with pytest.raises(KeyError):
        load_state_dict(ControllerState(), first)


def test_a_new_allocation_starts_afresh_what_belonged_to_the_old_one():
    state = _busy_state()
    reset_for_allocation(state)
    fresh = ControllerState()
    for name in ("free_ranks", "running", "interrupting", "interrupted", "pause_requested", "checkpoint_grace",
                 "exploiting", "exploit_waits", "placements", "deadline", "window", "stopped_for_deadline",
                 "storage_full", "controls", "launches"):
        assert getattr(state, name) == getattr(fresh, name), name
    assert state.times.launched_at == {}
    kept = _busy_state()
    for name in ("next_trial_id", "searcher_finished", "metric_seen", "requeue", "best", "tentative", "started_at",
                 "notices"):
        assert getattr(state, name) == getattr(kept, name), name
    assert (state.times.iteration_seconds, state.times.per_trial) == (kept.times.iteration_seconds,
                                                                      kept.times.per_trial)


def test_a_restored_controller_saves_what_it_was_given(tmp_path):
    """Mid-run PBT (exploits under way, trials running): the state a restored controller saves is the
    one it loaded, but for what the new allocation starts afresh and the trials it lost."""
    kwargs = {"scheduler": {"type": "pbt", "perturbation_interval": 2, "synch": False}, "num_samples": 6}
    driver = SimDriver(make_controller(tmp_path / "a", **kwargs), workers=3).start()
    driver.run(max_events=20)
    old = driver.controller.state_dict()
    assert old["running"]
    new = restored_controller(tmp_path / "b", old, list(driver.controller.trials.values()), **kwargs).state_dict()
    assert new["requeue"] == old["running"] + [tid for tid in old["requeue"] if tid not in old["running"]]
    assert (new["free_ranks"], new["running"], new["interrupted"], new["exploiting"]) == (0, [], [], [])
    assert (new["running_costs"], new["spent_s"]) == ([], old["spent_s"])  # the old ranks' segments are over
    same = [key for key in new if key not in ("requeue", "free_ranks", "running", "interrupted", "exploiting",
                                              "exploit_waits", "checkpoint_grace", "pause_requested", "running_costs")]
    assert json_round_trip({key: new[key] for key in same}) == json_round_trip({key: old[key] for key in same})
