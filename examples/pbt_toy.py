"""The toy problem of the PBT paper (Jaderberg et al., 2017, section 4.1 and figure 2).

Maximise Q(theta) = 1.2 - theta0^2 - theta1^2, but each trial can only climb a surrogate
Q_hat(theta | h) = 1.2 - h0 * theta0^2 - h1 * theta1^2 by gradient ascent: its hyperparameters
h = (h0, h1) decide which directions it moves in. A trial with h = (1, 0) only ever shrinks theta0.
With PBT a trial copies the theta of a better one and explores h around that one's, so the
population reaches theta = 0 (Q = 1.2), which no single fixed h from a poor start does as fast.

    python examples/pbt_toy.py            # pbt, 4 trials on 4 workers
    python examples/pbt_toy.py --synch    # synchronous pbt: rounds of 4 steps, as in the paper
    python examples/pbt_toy.py --fixed    # the same population, hyperparameters fixed (fifo)
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import hpctune


def train(config: dict) -> None:
    """``config["steps"]`` steps of gradient ascent on Q_hat, reporting Q after each, with theta as checkpoint."""
    state = hpctune.get_checkpoint()
    theta = np.array([0.9, 0.9]) if state is None else np.asarray(state["theta"], dtype=float)
    start = 0 if state is None else int(state["step"])
    for step in range(start + 1, int(config["steps"]) + 1):
        config = hpctune.get_config()  # PBT may change h while the trial runs
        time.sleep(config.get("sleep", 0.0))  # a stand-in for real work (tests use it)
        h = np.array([config["h0"], config["h1"]])
        theta = theta + config["lr"] * (-2.0 * h * theta)  # the gradient of Q_hat
        q = 1.2 - float(np.sum(theta ** 2))
        hpctune.report({"Q": q, "theta0": theta[0], "theta1": theta[1], "h0": h[0], "h1": h[1]},
                       checkpoint={"theta": theta, "step": step})


SPACE = {"h0": hpctune.uniform(0.0, 1.0), "h1": hpctune.uniform(0.0, 1.0), "lr": 0.02, "steps": 40}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixed", action="store_true", help="no PBT: the same trials with fixed hyperparameters")
    parser.add_argument("--synch", action="store_true", help="synchronous pbt: the population waits at each interval")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--storage", default="runs")
    parser.add_argument("--name", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    scheduler = "fifo" if args.fixed else {"type": "pbt", "perturbation_interval": 4, "quantile_fraction": 0.25,
                                           "resample_probability": 0.25, "synch": args.synch}
    analysis = hpctune.run(train, space=SPACE, metric="Q", mode="max", num_samples=args.trials,
                           scheduler=scheduler, workers=args.workers, storage=args.storage, seed=args.seed,
                           name=args.name or ("pbt_toy_fixed" if args.fixed else "pbt_toy"))
    if analysis is not None:
        print(f"best Q: {analysis.best_value:.4f}")


if __name__ == "__main__":
    main()
