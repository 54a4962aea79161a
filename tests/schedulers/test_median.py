"""The median stopping rule on hand-computed curves.

Three trials A, B, C report these losses (mode min) at steps 1..4; their
running averages are:

    step   A: loss / avg     B: loss / avg       C: loss / avg      median of avgs
    1      1.0 / 1.0         2.0 / 2.0           3.0 / 3.0          2.0
    2      0.8 / 0.9         1.0 / 1.5           2.0 / 2.5          1.5
    3      0.6 / 0.8         0.5 / 1.1667        1.0 / 2.0          1.1667
    4      0.4 / 0.7         0.3 / 0.95          0.2 / 1.55         0.95

A fourth trial D reports 1.9, 1.4, 1.2, 1.1: its best so far is 1.9 (< 2.0 ok),
1.4 (< 1.5 ok), then 1.2 > 1.1667: stopped at step 3.
"""
from __future__ import annotations

import json

import pytest

from hpctune.enums import Decision
from hpctune.schedulers import MedianStopping
from hpctune.trial import Trial

CURVES = {"A": [1.0, 0.8, 0.6, 0.4], "B": [2.0, 1.0, 0.5, 0.3], "C": [3.0, 2.0, 1.0, 0.2]}
D = [1.9, 1.4, 1.2, 1.1]


def _scheduler(**options) -> tuple[MedianStopping, dict]:
    scheduler = MedianStopping(**options)
    scheduler.setup("loss", "min")
    trials = {}
    for i, (name, curve) in enumerate(CURVES.items()):
        trials[name] = Trial(trial_id=i, config={})
        scheduler.on_trial_add(trials[name])
        for step, value in enumerate(curve, start=1):   # fewer than 3 others: never stopped
            assert scheduler.on_trial_result(trials[name], _row(value, step)) == Decision.CONTINUE
    return scheduler, trials


def _row(value: float, step: int) -> dict:
    return {"loss": value, "training_iteration": step}


def _feed(scheduler: MedianStopping, trial_id: int, curve: list) -> list[str]:
    trial = Trial(trial_id=trial_id, config={})
    scheduler.on_trial_add(trial)
    decisions = []
    for step, value in enumerate(curve, start=1):
        decisions.append(Decision(scheduler.on_trial_result(trial, _row(value, step))).name)
        if decisions[-1] == "STOP":
            break
    return decisions


def test_medians_of_running_averages():
    scheduler, _ = _scheduler()
    # scores are negated losses (larger is better)
    assert scheduler.median_at(1) == pytest.approx(-2.0)
    assert scheduler.median_at(2) == pytest.approx(-1.5)
    assert scheduler.median_at(3) == pytest.approx(-3.5 / 3)
    assert scheduler.median_at(4) == pytest.approx(-0.95)


def test_fourth_trial_is_stopped_at_step_3():
    scheduler, _ = _scheduler()
    assert _feed(scheduler, 3, D) == ["CONTINUE", "CONTINUE", "STOP"]


def test_grace_period_delays_the_stop():
    scheduler, _ = _scheduler(grace_period=4)
    # steps 1-3 are in the grace period; at step 4 the best is 1.1 > median 0.95
    assert _feed(scheduler, 3, D) == ["CONTINUE", "CONTINUE", "CONTINUE", "STOP"]


def test_min_samples_required():
    scheduler, _ = _scheduler(min_samples_required=4)
    assert _feed(scheduler, 3, D) == ["CONTINUE"] * 4          # only 3 other trials
    # now there are 4 others at every step; at step 1: avgs 1.0, 1.9, 2.0, 3.0 -> median 1.95
    assert scheduler.median_at(1) == pytest.approx(-1.95)
    assert _feed(scheduler, 4, [1.96]) == ["STOP"]
    assert _feed(scheduler, 5, [1.94, 9.0]) == ["CONTINUE", "STOP"]


def test_equal_to_the_median_is_not_worse():
    scheduler, _ = _scheduler()
    assert _feed(scheduler, 3, [2.0, 1.5]) == ["CONTINUE", "CONTINUE"]


def test_best_so_far_not_the_last_value_decides():
    scheduler, _ = _scheduler()
    # 1.0 at step 1 stays its best: at step 4 the median is 0.95 and 1.0 is worse
    assert _feed(scheduler, 3, [1.0, 5.0, 5.0, 5.0]) == ["CONTINUE", "CONTINUE", "CONTINUE", "STOP"]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_nan_inf_missing_are_worst(bad):
    scheduler, _ = _scheduler()
    trial = Trial(trial_id=3, config={})
    scheduler.on_trial_add(trial)
    row = {"training_iteration": 1} if bad is None else _row(bad, 1)
    assert scheduler.on_trial_result(trial, row) == Decision.STOP
    # its running average counts as the worst at step 1: the median of 4 moves to (2.0 + 3.0) / 2
    assert scheduler.median_at(1) == pytest.approx(-2.5)
    json.dumps(scheduler.state_dict(), allow_nan=False)


def test_state_round_trip_decides_the_same():
    scheduler, _ = _scheduler()
    _feed(scheduler, 3, [float("nan")])
    state = json.loads(json.dumps(scheduler.state_dict(), allow_nan=False))
    fresh = MedianStopping()
    fresh.setup("loss", "min")
    fresh.load_state_dict(state)
    assert fresh.state_dict() == state
    for trial_id, curve in [(4, D), (5, [0.1, 0.1, 0.1, 0.1]), (6, [3.0])]:
        assert _feed(fresh, trial_id, curve) == _feed(scheduler, trial_id, curve)


def test_grace_period_and_samples_validation():
    from hpctune.errors import SpecError

    with pytest.raises(SpecError, match="min_samples_required"):
        MedianStopping(min_samples_required=0)
    with pytest.raises(SpecError, match="grace_period"):
        MedianStopping(grace_period=-1)
