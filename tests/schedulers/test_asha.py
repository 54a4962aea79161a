"""ASHA: the promotion invariants at every step, resume from checkpoints, brackets, the stop variant, NaN."""
from __future__ import annotations

import math
from bisect import insort
from collections import Counter

import pytest

from hpctune.enums import Decision
from hpctune.schedulers import AsyncSuccessiveHalving
from hpctune.trial import Trial
from sim_driver import SimDriver, make_controller, restored_controller
from simulated import launches_of, simulated

SPACE = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": 27}
ASHA = {"type": "asha", "grace_period": 1, "max_t": 27, "reduction_factor": 3}


def crossing(config: dict, iteration: int) -> float:
    """Curves that cross, so that rankings change from rung to rung."""
    return abs(config["x"] - 0.3) + (0.1 + config["y"]) / iteration


class Mirror:
    """Rebuilds each rung from the driver's log and checks every promotion against it, event by event."""

    def __init__(self, milestones: list, eta: int):
        self.milestones = milestones
        self.eta = eta
        self.recorded = {m: [] for m in milestones}    # sorted (negated score, trial_id)
        self.promoted = {m: set() for m in milestones}
        self.seen_log = 0
        self.seen_launches = 0
        self.scores: dict[tuple, float] = {}

    def __call__(self, driver: SimDriver) -> None:
        scheduler = driver.controller.scheduler
        for trial_id, iteration, decision in driver.log[self.seen_log:]:
            if iteration in self.recorded:
                value = driver.controller.trials[trial_id].last_result[driver.controller.spec.metric]
                key = value if math.isfinite(value) else math.inf   # loss: smaller sorts first
                insort(self.recorded[iteration], (key, trial_id))
                self.scores[trial_id, iteration] = key
                assert decision == ("STOP" if iteration == self.milestones[-1] else "PAUSE")
        self.seen_log = len(driver.log)
        for trial_id, _, start in driver.launches[self.seen_launches:]:
            if start == 0:
                continue
            rung = self.recorded[start]
            assert trial_id not in self.promoted[start], "promoted twice from the same rung"
            self.promoted[start].add(trial_id)
            quota = len(rung) // self.eta
            assert rung.index((self.scores[trial_id, start], trial_id)) < quota, "promoted outside the top 1/eta"
        self.seen_launches = len(driver.launches)
        stats = scheduler.rung_stats()[0]
        for m, rung in zip(self.milestones, stats):
            assert rung["recorded"] == len(self.recorded[m])
            assert len(self.promoted[m]) <= rung["recorded"] // self.eta          # the invariant, at every step
            assert rung["promoted"] <= rung["recorded"] // self.eta


@pytest.mark.parametrize("workers,end_delay", [(1, 0.0), (3, 0.0), (4, 0.3), (8, 0.5)])
def test_promotion_invariants_at_every_step(tmp_path, workers, end_delay):
    controller = make_controller(tmp_path, ASHA, space=SPACE, num_samples=40)
    mirror = Mirror([1, 3, 9, 27], 3)
    driver = SimDriver(controller, workers=workers, metric=crossing, end_delay=end_delay, on_event=mirror)
    driver.start()
    assert driver.run()
    assert controller.finalize() == "finished"
    stats = controller.scheduler.rung_stats()[0]
    assert [r["recorded"] for r in stats][0] == 40
    assert stats[1]["recorded"] >= 1 and stats[3]["recorded"] >= 1
    # promoted trials continued from their checkpoints: each launch after the first starts at a milestone
    for trial_id, iterations in driver.iterations().items():
        assert iterations == list(range(1, len(iterations) + 1))
        starts = [start for t, _, start in driver.launches if t == trial_id]
        assert starts == [0, 1, 3, 9][:len(starts)]


def test_promotes_the_best_within_the_quota_then_grows_the_bottom():
    scheduler = AsyncSuccessiveHalving(max_t=9)
    scheduler.setup("loss", "min")
    trials = {i: Trial(trial_id=i, config={}) for i in range(4)}
    for trial in trials.values():
        scheduler.on_trial_add(trial)
        trial.state = trial.state.RUNNING
    for i, value in enumerate([0.5, 0.2, 0.9]):
        assert scheduler.on_trial_result(trials[i], {"loss": value, "training_iteration": 1}) == Decision.PAUSE
        trials[i].state = trials[i].state.PAUSED
    assert scheduler.choose_trial_to_run(trials) is trials[1]      # best of 3 at rung 1: floor(3/3) = 1
    trials[1].state = trials[1].state.RUNNING
    assert scheduler.choose_trial_to_run(trials) is None            # quota used: grow the bottom rung
    trials[3].state = trials[3].state.PENDING
    assert scheduler.on_trial_result(trials[1], {"loss": 0.1, "training_iteration": 2}) == Decision.CONTINUE
    assert scheduler.on_trial_result(trials[1], {"loss": 0.1, "training_iteration": 3}) == Decision.PAUSE
    assert scheduler.describe_progress() == "rungs 1:3 3:1 9:0"


def test_brackets_round_robin(tmp_path):
    asha = {"type": "asha", "grace_period": 1, "max_t": 27, "brackets": 3}
    assert AsyncSuccessiveHalving(max_t=27, brackets=3).milestones == [[1, 3, 9, 27], [3, 9, 27], [9, 27]]
    simulation = simulated(tmp_path, asha, space=SPACE, num_samples=30, workers=4, metric=crossing)
    controller = simulation.controller
    first_pause = {}
    for _, trial_id, iteration, decision in simulation.log:
        if decision != "CONTINUE":
            first_pause.setdefault(trial_id, iteration)
    for trial_id, iteration in first_pause.items():
        assert iteration == [1, 3, 9][trial_id % 3]
    stats = controller.scheduler.rung_stats()
    assert [r["recorded"] for r in stats[2]][0] == 10
    for bracket in stats:
        for rung in bracket:
            assert rung["promoted"] <= rung["recorded"] // 3


def test_stop_variant_continues_within_the_cutoff_and_never_pauses(tmp_path):
    asha = dict(ASHA, stop_variant=True)
    simulation = simulated(tmp_path, asha, space=SPACE, num_samples=30, workers=3, metric=crossing)
    controller = simulation.controller
    assert "PAUSE" not in {d for _, _, _, d in simulation.log}
    recorded = {m: [] for m in (1, 3, 9)}
    for _, trial_id, iteration, decision in simulation.log:
        if iteration in recorded:
            key = -crossing(controller.trials[trial_id].config, iteration)
            better = sum(1 for k in recorded[iteration] if k > key)
            recorded[iteration].append(key)
            expected = "CONTINUE" if better < math.ceil(len(recorded[iteration]) / 3) else "STOP"
            assert decision == expected, (trial_id, iteration)
    assert all(start == 0 for _, _, start in launches_of(simulation))      # nothing is ever resumed
    assert controller.scheduler.describe_progress().startswith("rungs 1:30 ")


@pytest.mark.parametrize("stop_variant", [False, True])
def test_nan_and_inf_count_as_worst(tmp_path, stop_variant):
    def metric(config, iteration):
        if config["x"] < 0.2:
            return float("nan")
        if config["x"] > 0.8:
            return float("inf")
        return crossing(config, iteration)

    controller = simulated(tmp_path, dict(ASHA, stop_variant=stop_variant), space=SPACE, num_samples=30, workers=3,
                           metric=metric).controller
    bad = [t for t in controller.trials.values() if not 0.2 <= t.config["x"] <= 0.8]
    assert bad
    for trial in bad:
        assert trial.iteration == 1, trial.config      # never promoted, never continued
    assert Counter(trial.iteration for trial in controller.trials.values())[27] >= 1


def test_nan_is_never_promoted_even_when_the_quota_allows():
    scheduler = AsyncSuccessiveHalving(max_t=9)
    scheduler.setup("loss", "min")
    trials = {i: Trial(trial_id=i, config={}) for i in range(3)}
    for trial in trials.values():
        scheduler.on_trial_add(trial)
        scheduler.on_trial_result(trial, {"loss": float("nan"), "training_iteration": 1})
        trial.state = trial.state.PAUSED
    assert scheduler.choose_trial_to_run(trials) is None


@pytest.mark.parametrize("asha", [ASHA, dict(ASHA, brackets=2), dict(ASHA, stop_variant=True)])
def test_state_round_trip_in_the_middle(tmp_path, asha):
    kwargs = {"scheduler": asha, "space": SPACE, "num_samples": 30}
    reference = SimDriver(make_controller(tmp_path / "a", **kwargs), workers=4, metric=crossing).start()
    assert reference.run()
    reference.controller.finalize()
    cut = reference.events // 2
    driver = SimDriver(make_controller(tmp_path / "b", **kwargs), workers=4, metric=crossing).start()
    assert not driver.run(max_events=cut)
    driver.resume_with(restored_controller(tmp_path / "c", driver.controller.state_dict(),
                                        list(driver.controller.trials.values()), **kwargs))
    assert driver.run()
    driver.controller.finalize()
    assert driver.log == reference.log
    assert driver.final_results() == reference.final_results()
    assert driver.controller.scheduler.rung_stats() == reference.controller.scheduler.rung_stats()
