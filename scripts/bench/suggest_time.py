"""How long one suggestion takes as finished trials accumulate: tpe and gp, alone (fifo: every
trial told when it ends) and under asha's rungs (multi-fidelity: fitted on one rung's observations),
after 100, 1,000 and 5,000 finished trials of a 4-dimensional space; the median of 20 suggestions
each, in this process (the coordinator's cost, no MPI).

    python scripts/bench/suggest_time.py --trials 100 1000 5000
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hpctune.searchers import build_searcher
from hpctune.space import parse_space

SPACE = parse_space({"lr": {"loguniform": [1e-4, 1.0]}, "momentum": {"uniform": [0.5, 0.99]},
                     "width": {"quniform": [16, 256, 16]}, "act": {"choice": ["relu", "tanh", "gelu"]}})
LEVELS = [1, 3, 9, 27]


def _loss(config: dict, budget: int) -> float:
    return (np.log10(config["lr"]) + 2) ** 2 + (config["momentum"] - 0.9) ** 2 + 1.0 / budget


def _median_suggest_ms(kind: str, finished: int, rungs: bool, repeats: int) -> float:
    searcher = build_searcher({"type": kind})
    searcher.setup(SPACE, "loss", "min", num_samples=finished + repeats, seed=0)
    if rungs:
        searcher.set_fidelity("training_iteration", LEVELS)
    rng = np.random.default_rng(0)
    for trial_id in range(finished):  # finished trials, fed fast: given through the replay path
        config = {"lr": float(10 ** rng.uniform(-4, 0)), "momentum": float(rng.uniform(0.5, 0.99)),
                  "width": int(rng.integers(1, 17)) * 16, "act": ["relu", "tanh", "gelu"][int(rng.integers(3))]}
        searcher.replay_suggestion(trial_id, config)
        reached = LEVELS[: 1 + int(rng.integers(len(LEVELS)))] if rungs else [27]
        for budget in reached:
            searcher.on_trial_result(trial_id, {"loss": _loss(config, budget), "training_iteration": budget})
        searcher.on_trial_complete(trial_id, {})
    times = []
    for trial_id in range(finished, finished + repeats):
        start = time.perf_counter()
        searcher.suggest(trial_id)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--kinds", nargs="+", default=["tpe", "gp"])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print("| searcher | finished trials | ms per suggestion, alone | ms per suggestion, under asha's rungs |")
    print("| --- | ---: | ---: | ---: |")
    for kind in args.kinds:
        for finished in args.trials:
            alone = _median_suggest_ms(kind, finished, rungs=False, repeats=args.repeats)
            rungs = _median_suggest_ms(kind, finished, rungs=True, repeats=args.repeats)
            print(f"| {kind} | {finished:,} | {alone:.1f} | {rungs:.1f} |", flush=True)


if __name__ == "__main__":
    main()
