"""The sleep-based trainable of ``scripts/bench/utilization.py``.

One ``training_iteration`` sleeps ``iteration_seconds(config)``: a truncated
Pareto (alpha = 1) transform of the uniform hyperparameter ``cost``,
``10 ms / (1 - cost)``, capped at 0.3 s. The median iteration is 20 ms, the
mean about 44 ms, and 1 config in 30 sleeps the full 0.3 s per iteration: a
heavy tail of slow configs, as in real searches (wide layers, big batches).

The metric ``loss`` depends on ``lr`` (best near 1e-2) and on the iteration
(curves cross: a config-dependent floor plus a config-dependent decaying term),
plus deterministic noise; it does not depend on ``cost``, so the configs that
survive to the top rung are a random sample of costs. Every report checkpoints
``{"iteration": i}``, and a resumed trial continues from it.
"""
from __future__ import annotations

import math
import random
import time

import hpctune

BASE_S = 0.010
CAP_S = 0.3
MAX_ITERATIONS = 27


def iteration_seconds(config: dict) -> float:
    """Seconds one iteration of ``config`` sleeps."""
    scale = config.get("time_scale", 1.0)
    return scale * min(CAP_S, BASE_S / max(1e-9, 1.0 - config["cost"]))


def loss(config: dict, iteration: int) -> float:
    x = math.log10(config["lr"]) + 2.0
    floor = 0.1 * x * x + 0.05 * config["width"]
    decay = (0.5 + abs(x)) / iteration
    noise = random.Random(f"{config['lr']!r}/{iteration}").gauss(0.0, 0.02) / math.sqrt(iteration)
    return floor + decay + noise


def train(config: dict) -> None:
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    seconds = iteration_seconds(config)
    for i in range(start + 1, config.get("max_iterations", MAX_ITERATIONS) + 1):
        time.sleep(seconds)
        hpctune.report({"loss": loss(config, i)}, checkpoint={"iteration": i})
