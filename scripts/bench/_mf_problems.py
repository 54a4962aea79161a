"""Multi-fidelity test problems with known optima (Kandasamy et al., 2017, "Multi-fidelity Bayesian
optimisation with continuous approximations", appendix: the Branin and Hartmann-6 fidelity
families), as hpctune trainables: epoch ``e`` of ``max_t`` evaluates fidelity ``z = e / max_t``.
The low fidelities move the optimum, so rankings change between early and late epochs.
"""
from __future__ import annotations

import math

import numpy as np

import hpctune

BRANIN_OPTIMUM = 0.397887
HARTMANN6_OPTIMUM = -3.32237

_A6 = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_P6 = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                       [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def branin(x1: float, x2: float, z: float) -> float:
    """Branin at fidelity ``z`` in [0, 1] (z = 1: the usual Branin, minimum 0.397887)."""
    b = 5.1 / (4 * math.pi ** 2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1 - z)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def hartmann6(x: np.ndarray, z: float) -> float:
    """Hartmann-6 at fidelity ``z`` (z = 1: minimum -3.32237): alpha shifted by 0.1 (1 - z)."""
    alpha = _ALPHA - 0.1 * (1 - z)
    return float(-np.sum(alpha * np.exp(-np.sum(_A6 * (x - _P6) ** 2, axis=1))))


BRANIN_SPACE = {"x1": hpctune.uniform(-5.0, 10.0), "x2": hpctune.uniform(0.0, 15.0)}
HARTMANN6_SPACE = {f"x{i}": hpctune.uniform(0.0, 1.0) for i in range(6)}


def value(problem: str, config: dict, z: float) -> float:
    if problem == "branin":
        return branin(config["x1"], config["x2"], z)
    return hartmann6(np.array([config[f"x{i}"] for i in range(6)]), z)


def train(config: dict) -> None:
    """``config["max_t"]`` epochs of ``config["problem"]``, one result each (``loss``), checkpointed."""
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["epoch"])
    for epoch in range(start + 1, int(config["max_t"]) + 1):
        hpctune.report({"loss": value(config["problem"], config, epoch / config["max_t"])},
                       checkpoint={"epoch": epoch})
