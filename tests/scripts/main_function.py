"""A trainable defined in __main__, tuned by hpctune.run; works as ``python`` and under mpiexec."""
from __future__ import annotations

import sys

import hpctune


def train(config):
    for i in range(1, 4):
        hpctune.report({"score": config["a"] * i})


if __name__ == "__main__":
    analysis = hpctune.run(train, space={"a": hpctune.grid([1, 2, 3])}, metric="score", mode="max",
                           num_samples=2, storage=sys.argv[1], name="main", workers=2, verbose=0)
    if analysis is not None:
        print("BEST", analysis.best_config["a"], len(analysis.trials), sorted(set(analysis.results["rank"])))
