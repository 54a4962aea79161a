"""A cost budget (``budget:`` hours of ranks, or of GPUs when trials use them): no segment starts and
none goes on past it, what was spent survives a replay, a crash's cut segments count to the last
event, and a simulated experiment spends exactly what fits (virtual time)."""
from __future__ import annotations

import pytest

from hpctune.backends.sim.simulation import simulate
from hpctune.backends.sim.surrogates import FunctionSurrogate
from hpctune.enums import Control, Decision, SegmentEnd
from hpctune.errors import SpecError
from hpctune.spec import spec_from_dict
from hpctune.store import load_experiment

from sim_driver import make_controller, report_at


def _two_running(tmp_path, budget_hours: float):
    controller = make_controller(tmp_path, "fifo", num_samples=4, budget=budget_hours)
    controller.on_workers_joined(2, t=0.0)
    trial_ids = [launch.trial_id for launch in controller.take_launches()]
    for rank, trial_id in enumerate(trial_ids, start=1):
        controller.placed(trial_id, [rank], t=0.0)
    return controller, trial_ids


def test_running_trials_pause_at_the_last_result_the_budget_leaves_room_after(tmp_path):
    """Two trials of 10 s iterations on 1 rank each, a budget of 175 rank-seconds; what is to come is
    counted 10% over (HEADROOM). At 60 s 120 are spent and two more iterations of both (44) fit; at 70 s
    (140) one more of both (22) fits, so a trial without a checkpoint is asked for one; at 80 s (160)
    a's next iteration and b's would pass it: a pauses. b alone may do one more (171), and pauses at 90 s."""
    controller, (a, b) = _two_running(tmp_path, budget_hours=175 / 3600)
    for i in range(1, 7):
        assert report_at(controller, a, i, t=10.0 * i) == Decision.CONTINUE
        assert report_at(controller, b, i, t=10.0 * i) == Decision.CONTINUE
    assert controller.take_controls() == []
    assert report_at(controller, a, 7, t=70.0, checkpoint=False) == Decision.CONTINUE
    assert [(m.trial_id, m.control) for m in controller.take_controls()] == [(a, Control.CHECKPOINT)]
    assert report_at(controller, a, 8, t=80.0) == Decision.PAUSE
    controller.on_segment_end(a, SegmentEnd.PAUSED, t=80.0)
    assert controller.take_launches() == []  # a new segment's first iteration would pass the budget too
    assert report_at(controller, b, 8, t=80.0) == Decision.CONTINUE
    assert report_at(controller, b, 9, t=90.0) == Decision.PAUSE
    controller.on_segment_end(b, SegmentEnd.PAUSED, t=90.0)
    assert controller.spent_s == pytest.approx(170.0) and controller.is_finished
    assert controller.finalize() == "finished"
    assert {(t.trial_id, t.state.name, t.end_reason, t.iteration) for t in controller.trials.values()} == {
        (a, "TERMINATED", "budget spent", 8), (b, "TERMINATED", "budget spent", 9)}


def test_without_a_budget_nothing_changes_and_the_spending_is_counted(tmp_path):
    controller, (a, b) = _two_running(tmp_path, budget_hours=None)
    for i in range(1, 21):
        assert report_at(controller, a, i, t=10.0 * i) == Decision.CONTINUE
    controller.on_segment_end(a, SegmentEnd.PAUSED, t=205.0)
    assert controller.spent_s == pytest.approx(205.0 + 205.0)  # a ended at 205 s, b runs on


def test_a_new_segment_starts_only_if_its_start_up_and_first_iteration_fit(tmp_path):
    """110 rank-seconds; 10 s iterations, what is to come counted 10% over. b fails at 20 s (40 spent):
    a's next iteration and a new segment's first (no start-up seen) make 62, so trial c starts. At 50 s
    100 are spent: a pauses, and no trial starts after it."""
    controller, (a, b) = _two_running(tmp_path, budget_hours=110 / 3600)
    assert report_at(controller, a, 1, t=10.0) == Decision.CONTINUE  # 20 spent; 20 + 1.1 x 2 x (10 + 10) = 64
    assert report_at(controller, a, 2, t=20.0) == Decision.CONTINUE  # 40 + 44 = 84
    controller.on_segment_end(b, SegmentEnd.ERROR, error="boom", t=20.0)
    (launch,) = controller.take_launches()
    controller.placed(launch.trial_id, [2], t=20.0)
    assert report_at(controller, a, 3, t=30.0) == Decision.CONTINUE  # 60 + 44 = 104
    assert report_at(controller, a, 4, t=40.0) == Decision.CONTINUE  # 80 + 22 = 102: one more, with a checkpoint
    assert report_at(controller, a, 5, t=50.0) == Decision.PAUSE     # 100 + 22 > 110
    controller.on_segment_end(a, SegmentEnd.PAUSED, t=50.0)
    assert controller.take_launches() == [] and controller.spent_s == pytest.approx(100.0)
    assert len(controller.trials) == 3


def test_a_segment_s_wind_down_after_its_last_result_counts_too(tmp_path):
    """58 rank-seconds, one rank, 10 s iterations. Paused on request at 20 s, the segment ends at 25 s:
    a wind-down of 5 s (its checkpoint written, its process gone). Started again at 25 s, at 45 s
    (45 spent) one more iteration and the wind-down would make 45 + 1.1 x 15 > 58: it pauses, and ends
    at 50 s. Without the wind-down, 45 + 11 = 56 would have let it go on and end at 60 s, past the budget."""
    controller = make_controller(tmp_path, "fifo", num_samples=1, budget=58 / 3600)
    controller.on_workers_joined(1, t=0.0)
    (launch,) = controller.take_launches()
    a = launch.trial_id
    controller.placed(a, [1], t=0.0)
    assert report_at(controller, a, 1, t=10.0) == Decision.CONTINUE
    controller.pause_now(a, t=15.0)
    assert report_at(controller, a, 2, t=20.0) == Decision.PAUSE
    controller.on_segment_end(a, SegmentEnd.PAUSED, t=25.0)
    (launch,) = controller.take_launches()  # 25 + 1.1 x (10 + 5) = 41.5: it fits
    controller.placed(a, [1], t=25.0)
    assert report_at(controller, a, 3, t=35.0) == Decision.CONTINUE
    assert report_at(controller, a, 4, t=45.0) == Decision.PAUSE
    controller.on_segment_end(a, SegmentEnd.PAUSED, t=50.0)
    assert controller.spent_s == pytest.approx(50.0) and controller.take_launches() == []


def test_a_replay_gives_the_same_spending_and_charges_a_cut_segment_to_the_last_event(tmp_path):
    controller, (a, b) = _two_running(tmp_path / "a", budget_hours=1.0)
    for i in range(1, 4):
        report_at(controller, a, i, t=10.0 * i)
    controller.on_segment_end(a, SegmentEnd.COMPLETED, t=35.0)
    report_at(controller, b, 1, t=40.0)
    controller.store.flush()  # then a crash: b's segment is cut after its result at 40 s
    view = load_experiment(controller.store.folder)
    fresh = make_controller(tmp_path / "b", "fifo", num_samples=4, budget=1.0)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    assert fresh.spent_s == pytest.approx(35.0 + 40.0)
    assert fresh.state.spending.running_costs == {}


def _timed(config, iteration):
    return {"loss": config["x"] / iteration}, 60.0


_timed.max_iterations = 10


def _sim_spec(tmp_path, **extra):
    raw = {"name": "budget", "trainable": "nowhere:train", "metric": "loss", "mode": "min", "num_samples": 20,
           "space": {"x": {"uniform": [0, 1]}}, "scheduler": "fifo", "storage": str(tmp_path), **extra}
    return spec_from_dict(raw, check_trainable=False)


def _spent(records: list[dict], units: int = 1) -> float:
    """Rank- (or GPU-) seconds of the segments in a simulation's records, from their launch and end."""
    launched = {}
    spent = 0.0
    for record in records:
        if record["k"] == "launch":
            launched[record["trial"]] = record["t"]
        elif record["k"] == "end":
            spent += (record["t"] - launched.pop(record["trial"])) * units
    assert not launched
    return spent


def test_a_simulated_experiment_spends_its_budget_and_no_more(tmp_path):
    """FIFO, 10 iterations of 60 s a trial, 4 virtual workers, 1 rank-hour: the first four trials
    complete (2,400 rank-s by 600 s). At 840 s (3,360) the first of the next four to report pauses:
    one more iteration of the four, 10% over, is 264; the other three go on to 900 s (3,540), where
    one more of even one (66) would pass the budget."""
    sim = simulate(_sim_spec(tmp_path, budget=1), FunctionSurrogate(_timed, "loss"), 4, keep_records=True)
    assert _spent(sim.store.records) == pytest.approx(3540.0) and sim.controller.spent_s == pytest.approx(3540.0)
    trials = sim.controller.trials
    assert [t.iteration for t in trials.values()][:4] == [10] * 4
    assert sorted(t.iteration for t in trials.values())[:4] == [4, 5, 5, 5] and len(trials) == 8
    assert [t.end_reason for t in trials.values()] == ["completed"] * 4 + ["budget spent"] * 4


def test_gpu_hours_count_each_rank_s_gpus(tmp_path):
    """2 GPUs a rank: 1 GPU-hour is 1,800 rank-seconds. At 420 s (3,360 GPU-s spent) the first three
    trials to report pause: one more iteration of four, three or two, 10% over, would pass the 240
    left. The last goes on to 480 s (3,480), where one more (132) would pass it."""
    spec = _sim_spec(tmp_path, budget=1, resources={"gpus_per_rank": 2})
    sim = simulate(spec, FunctionSurrogate(_timed, "loss"), 4, keep_records=True)
    assert _spent(sim.store.records, units=2) == pytest.approx(3480.0)
    assert sim.controller.spent_s == pytest.approx(3480.0)
    assert sorted(t.iteration for t in sim.controller.trials.values()) == [7, 7, 7, 8]


@pytest.mark.parametrize("value, message", [
    (0, "budget: expected hours > 0, got 0"),
    (-1.5, "budget: expected hours > 0, got -1.5"),
    ("2h", "budget: expected hours > 0, got '2h'"),
    (True, "budget: expected hours > 0, got True"),
])
def test_a_bad_budget_is_refused_in_one_line(tmp_path, value, message):
    with pytest.raises(SpecError) as refused:
        _sim_spec(tmp_path, budget=value)
    assert str(refused.value) == message
