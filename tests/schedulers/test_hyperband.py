"""Synchronous HyperBand: the bracket plan of Li et al. (2017), brackets filled in order, survivors resumed."""
from __future__ import annotations

from collections import Counter

import pytest

from hpctune.schedulers import HyperBand
from simulated import iterations_of, launches_of, simulated

SPACE = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": 9}


def loss(config: dict, iteration: int) -> float:
    return config["x"] + 1.0 / iteration    # rankings never cross: the survivors are the smallest x


def test_bracket_table_for_max_t_81_eta_3():
    table = HyperBand(max_t=81, reduction_factor=3).bracket_table()
    assert table == [
        {"s": 4, "rungs": [[81, 1], [27, 3], [9, 9], [3, 27], [1, 81]]},
        {"s": 3, "rungs": [[34, 3], [11, 9], [3, 27], [1, 81]]},
        {"s": 2, "rungs": [[15, 9], [5, 27], [1, 81]]},
        {"s": 1, "rungs": [[8, 27], [2, 81]]},
        {"s": 0, "rungs": [[5, 81]]},
    ]


@pytest.mark.parametrize("max_t,eta,s_max", [(9, 3, 2), (10, 3, 2), (26, 3, 2), (27, 3, 3), (16, 2, 4), (1, 3, 0)])
def test_s_max_uses_exact_integer_powers(max_t, eta, s_max):
    scheduler = HyperBand(max_t=max_t, reduction_factor=eta)
    assert scheduler.s_max == s_max
    assert [row["s"] for row in scheduler.bracket_table()] == list(range(s_max, -1, -1))
    assert scheduler.rung_levels()[-1] == max_t


def _run(tmp_path, num_samples: int, workers: int = 3):
    simulation = simulated(tmp_path, {"type": "hyperband", "max_t": 9, "reduction_factor": 3}, space=SPACE,
                           num_samples=num_samples, workers=workers, metric=loss)
    assert simulation.outcome.status == "finished"
    return simulation


@pytest.mark.parametrize("workers", [2, 3, 6])
def test_one_round_of_brackets(tmp_path, workers):
    # max_t 9: s=2: 9x1, 3x3, 1x9; s=1: 5x3, 1x9; s=0: 3x9 -> 17 configs in one round
    assert HyperBand(max_t=9).bracket_table() == [
        {"s": 2, "rungs": [[9, 1], [3, 3], [1, 9]]}, {"s": 1, "rungs": [[5, 3], [1, 9]]}, {"s": 0, "rungs": [[3, 9]]}]
    simulation = _run(tmp_path, num_samples=17, workers=workers)
    trials = simulation.controller.trials
    assert simulation.controller.scheduler.describe_progress() == "rungs 1:9 3:8 9:5"
    brackets = {2: range(0, 9), 1: range(9, 14), 0: range(14, 17)}     # filled in order s_max .. 0
    assert Counter(trials[t].iteration for t in brackets[2]) == {1: 6, 3: 2, 9: 1}
    assert Counter(trials[t].iteration for t in brackets[1]) == {3: 4, 9: 1}
    assert Counter(trials[t].iteration for t in brackets[0]) == {9: 3}
    for ids in brackets.values():          # the survivors of a bracket are its best configs
        by_quality = sorted(ids, key=lambda t: trials[t].config["x"])
        iterations = [trials[t].iteration for t in by_quality]
        assert iterations == sorted(iterations, reverse=True)
    # survivors resumed from their checkpoints at the rung milestones, iterations continuing
    resumed = Counter((trial_id in brackets[2], start) for trial_id, _, start in launches_of(simulation) if start > 0)
    assert resumed == {(True, 1): 3, (True, 3): 1, (False, 3): 1}
    for iterations in iterations_of(simulation).values():
        assert iterations == list(range(1, len(iterations) + 1))


def test_second_round_and_a_partial_bracket(tmp_path):
    # 20 configs: a full round (17), then 3 in a new s=2 bracket, closed when the search ends
    simulation = _run(tmp_path, num_samples=20)
    trials = simulation.controller.trials
    assert sorted(trials[t].iteration for t in range(17, 20)) == [1, 1, 9]   # 3 -> max(1, 3//3) -> 1
    assert simulation.controller.scheduler.describe_progress() == "rungs 1:12 3:9 9:6"


def test_partial_first_bracket(tmp_path):
    simulation = _run(tmp_path, num_samples=4)
    assert sorted(t.iteration for t in simulation.controller.trials.values()) == [1, 1, 1, 9]
    assert simulation.controller.scheduler.describe_progress() == "rungs 1:4 3:1 9:1"
