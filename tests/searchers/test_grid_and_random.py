"""The random and grid searchers: ``grid`` domains crossed (every finite domain for ``grid``) in
itertools.product order, ``num_samples`` repetitions of the grid, a huge grid enumerated lazily,
and the same configs for the same seed."""
from __future__ import annotations

import itertools
import json
import time

import pytest

from hpctune.searchers import FINISHED, GridSearcher, RandomSearcher, build_searcher
from hpctune.space import parse_space
from hpctune.spec import load_spec


def _configs(searcher, space, num_samples=1, seed=0):
    searcher.setup(parse_space(space), "loss", "min", num_samples, seed)
    out = []
    while (config := searcher.suggest(len(out))) is not FINISHED:
        out.append(config)
    return out


def test_grid_times_num_samples_counts():
    space = {"a": {"grid": [1, 2, 3]}, "b": {"grid": ["x", "y"]}, "lr": {"uniform": [0, 1]}}
    configs = _configs(RandomSearcher(), space, num_samples=4)
    assert len(configs) == 3 * 2 * 4
    pairs = [(c["a"], c["b"]) for c in configs]
    assert all(pairs.count(p) == 4 for p in set(pairs)) and len(set(pairs)) == 6
    assert len({c["lr"] for c in configs}) == 24


def test_grid_searcher_crosses_every_finite_domain():
    space = {"opt": {"choice": ["sgd", "adam"]}, "layers": {"randint": [1, 4]}, "m": {"grid": [0.9, 0.95]},
             "lr": {"loguniform": [1e-3, 1]}}
    configs = _configs(GridSearcher(), space, num_samples=2)
    assert len(configs) == 2 * 3 * 2 * 2
    assert len({(c["opt"], c["layers"], c["m"]) for c in configs}) == 12


def test_huge_grid_is_enumerated_lazily(tmp_path):
    # 10**10 points: building them as a list ran out of memory before the first trial
    path = tmp_path / "huge.yaml"
    path.write_text("trainable: trainable_fixtures:quick\nmetric: loss\nsearcher: grid\nnum_samples: 3\n"
                    "space: {a: {randint: [0, 100000]}, b: {randint: [0, 100000]}, lr: {uniform: [0, 1]}}\n")
    spec = load_spec(path, {"storage": str(tmp_path)})
    searcher = build_searcher(spec.searcher)
    started = time.perf_counter()
    searcher.setup(spec.space, spec.metric, spec.mode, spec.num_samples, spec.seed)
    first = [searcher.suggest(i) for i in range(3)]
    assert time.perf_counter() - started < 0.5
    assert searcher.total_trials() == 10**10 * 3
    assert [(c["a"], c["b"]) for c in first] == [(0, 0), (0, 1), (0, 2)]
    state = searcher.state_dict()
    assert state["count"] == 3 and len(json.dumps(state)) < 1000  # a counter and the RNG, nothing per point
    state["count"] = 3 * 10**10 - 1
    searcher.load_state_dict(state)
    last = searcher.suggest(3)
    assert (last["a"], last["b"]) == (99999, 99999)
    assert searcher.suggest(4) is FINISHED


# results stored before grids were enumerated lazily came in itertools.product order (last name fastest)
@pytest.mark.parametrize("searcher, crossed", [
    (GridSearcher(), {"opt": ["sgd", "adam", "rms"], "net/depth": [1, 2], "m": [0.9, 0.95], "h": [16, 32],
                      "layers": [1, 2, 3]}),
    (RandomSearcher(), {"opt": ["sgd", "adam", "rms"], "net/depth": [1, 2], "m": [0.9, 0.95]}),
], ids=["grid", "random"])
def test_grid_order_is_that_of_itertools_product(searcher, crossed):
    space = {"opt": {"grid": ["sgd", "adam", "rms"]}, "net": {"depth": {"grid": [1, 2]}, "act": "relu"},
             "m": {"grid": [0.9, 0.95]}, "h": {"choice": [16, 32]}, "layers": {"randint": [1, 4]},
             "lr": {"loguniform": [1e-3, 1]}}
    configs = _configs(searcher, space, num_samples=2)
    got = [tuple(c["net"]["depth"] if n == "net/depth" else c[n] for n in crossed) for c in configs]
    assert got == list(itertools.product(*crossed.values())) * 2


def test_same_spec_and_seed_same_configs_other_seed_other_configs():
    space = {"lr": {"loguniform": [1e-4, 1.0]}, "h": {"choice": [16, 32, 64]}, "m": {"grid": [1, 2]}}
    assert _configs(RandomSearcher(), space, 5, seed=3) == _configs(RandomSearcher(), space, 5, seed=3)
    assert _configs(RandomSearcher(), space, 5, seed=3) != _configs(RandomSearcher(), space, 5, seed=4)
    assert _configs(RandomSearcher(seed=7), space, 5, seed=0) == _configs(RandomSearcher(), space, 5, seed=7)
