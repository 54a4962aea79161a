"""Synchronous successive halving: the ASHA write-up's 27-config table, pause and resume, failures."""
from __future__ import annotations

import math
from collections import Counter

import pytest

from hpctune.enums import Decision
from hpctune.errors import SpecError
from hpctune.schedulers import SuccessiveHalving
from hpctune.trial import Trial
from sim_driver import SimDriver, make_controller
from simulated import iterations_of, launches_of, simulated

# 3 x 3 x 3 grid, as in the write-up (learning rate, momentum, weight decay)
GRID = {"lr": {"grid": [0.1, 0.01, 0.001]}, "momentum": {"grid": [0.85, 0.9, 0.95]},
        "wd": {"grid": [0.01, 0.001, 0.0001]}, "epochs": 27}
SHA = {"type": "sha", "grace_period": 1, "max_t": 27, "reduction_factor": 3}


def quality(config: dict) -> float:
    """A distinct final loss per grid point (the best: lr 0.01, momentum 0.9, wd 0.001)."""
    return (abs(math.log10(config["lr"]) + 2) + 10 * abs(config["momentum"] - 0.9)
            + abs(math.log10(config["wd"]) + 3) / 7)


def loss(config: dict, iteration: int) -> float:
    return quality(config) + 1.0 / iteration   # the same decay for all: rankings never cross


def _run(tmp_path, workers: int):
    simulation = simulated(tmp_path, SHA, "grid", space=GRID, num_samples=1, workers=workers, metric=loss)
    assert simulation.outcome.status == "finished"
    return simulation


@pytest.mark.parametrize("workers", [2, 4, 9])
def test_reproduces_the_27_config_table(tmp_path, workers):
    simulation = _run(tmp_path, workers)
    scheduler = simulation.controller.scheduler
    assert scheduler.rung_levels() == [1, 3, 9, 27]
    assert scheduler.describe_progress() == "rungs 1:27 3:9 9:3 27:1"
    final = Counter(trial.iteration for trial in simulation.controller.trials.values())
    assert final == {1: 18, 3: 6, 9: 2, 27: 1}     # 27, 9, 3, 1 configs reach 1, 3, 9, 27 epochs
    # the survivors of each rung are its best configs
    ranked = sorted(simulation.controller.trials.values(), key=lambda t: quality(t.config))
    assert [t.iteration for t in ranked[:1]] == [27]
    assert {t.iteration for t in ranked[1:3]} == {9}
    assert {t.iteration for t in ranked[3:9]} == {3}
    assert {t.iteration for t in ranked[9:]} == {1}
    reasons = Counter(trial.end_reason for trial in simulation.controller.trials.values())
    assert reasons == {"not promoted": 26, "stopped by scheduler": 1}


def test_rungs_are_synchronous_and_promoted_trials_resume_from_their_checkpoint(tmp_path):
    simulation = _run(tmp_path, workers=4)
    # every config reports at epoch 1 before any config trains its second epoch
    first_two = [i for _, _, i, _ in simulation.log if i in (1, 2)]
    assert first_two == [1] * 27 + [2] * 9
    resumed = [(trial_id, start) for trial_id, _, start in launches_of(simulation) if start > 0]
    assert Counter(start for _, start in resumed) == {1: 9, 3: 3, 9: 1}
    for trial_id, iterations in iterations_of(simulation).items():
        assert iterations == list(range(1, len(iterations) + 1))
    decisions = Counter((i, d) for _, _, i, d in simulation.log if d != "CONTINUE")
    assert decisions == {(1, "PAUSE"): 27, (3, "PAUSE"): 9, (9, "PAUSE"): 3, (27, "STOP"): 1}


def test_a_failed_trial_counts_as_done_and_worst(tmp_path):
    reference = _run(tmp_path / "reference", workers=3)
    best = next(t for t, trial in reference.controller.trials.items() if trial.iteration == 27)
    controller = make_controller(tmp_path / "failing", SHA, "grid", space=GRID, num_samples=1)
    driver = SimDriver(controller, workers=3, metric=loss, fail={(0, 1), (best, 1)}).start()
    assert driver.run()
    controller.finalize()
    # the rung still completes, with floor(27/3) promotions; the failed ones are not among them
    assert controller.scheduler.describe_progress() == "rungs 1:27 3:9 9:3 27:1"
    assert controller.trials[0].state.name == "ERROR" and controller.trials[best].state.name == "ERROR"
    assert controller.trials[0].iteration == 0
    assert any(trial.iteration == 27 for trial in controller.trials.values())   # another config wins


def test_nan_and_inf_are_never_promoted(tmp_path):
    def metric(config, iteration):
        if config["lr"] == 0.01 and config["momentum"] == 0.9:
            return float("nan") if config["wd"] == 0.001 else float("-inf")
        return loss(config, iteration)

    controller = simulated(tmp_path, SHA, "grid", space=GRID, num_samples=1, workers=3, metric=metric).controller
    for trial in controller.trials.values():
        if trial.config["lr"] == 0.01 and trial.config["momentum"] == 0.9:
            assert trial.iteration == 1, trial.config     # worst: paused at the base rung for good
    assert controller.scheduler.describe_progress() == "rungs 1:27 3:9 9:3 27:1"


def test_missing_time_attr_is_bad_input():
    scheduler = SuccessiveHalving(time_attr="epoch")
    scheduler.setup("loss", "min")
    trial = Trial(trial_id=0, config={})
    scheduler.on_trial_add(trial)
    with pytest.raises(SpecError) as info:
        scheduler.on_trial_result(trial, {"loss": 1.0, "training_iteration": 1})
    assert info.value.where == "time_attr"


def test_custom_time_attr_and_max_t_not_a_power():
    scheduler = SuccessiveHalving(grace_period=2, max_t=10, reduction_factor=2, time_attr="epoch")
    assert scheduler.rung_levels() == [2, 4, 8, 10]
    scheduler.setup("acc", "max")
    trials = [Trial(trial_id=i, config={}) for i in range(2)]
    for trial in trials:
        scheduler.on_trial_add(trial)
    scheduler.on_no_more_trials()
    assert scheduler.on_trial_result(trials[0], {"acc": 0.5, "epoch": 1}) == Decision.CONTINUE
    assert scheduler.on_trial_result(trials[0], {"acc": 0.6, "epoch": 2}) == Decision.PAUSE
    assert scheduler.on_trial_result(trials[1], {"acc": 0.9, "epoch": 2.5}) == Decision.PAUSE
    assert scheduler.describe_progress() == "rungs 2:2 4:0 8:0 10:0"


def test_one_worker(tmp_path):
    simulation = _run(tmp_path, workers=1)
    assert simulation.controller.scheduler.describe_progress() == "rungs 1:27 3:9 9:3 27:1"
