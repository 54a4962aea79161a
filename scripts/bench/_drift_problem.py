"""The drifting-learning-rate problem of scripts/bench/pbt_drift.py, in numpy alone (hpctune's and
Ray Tune's trainables both import it, each in its own environment).

A noisy quadratic model (Zhang et al., 2019, "Which algorithmic choices matter at which batch
sizes?"): SGD on a quadratic loss 0.5 * sum(h_i * theta_i^2) whose curvatures h_i span three
decades (1 to 0.001), with gradient noise of variance proportional to h_i. The state is each
coordinate's expected second moment m_i = E[theta_i^2] (all 1 at the start); one SGD step of
learning rate lr maps it exactly to m_i (1 - lr h_i)^2 + lr^2 h_i NOISE. So a run is
deterministic: the same learning rates give the same model.

Why the best learning rate drifts: the low-curvature coordinates shrink only by (1 - lr h_i)^2 a
step, so early on the largest stable rate is best; the noise leaves a floor of about
lr * NOISE / 2 in every m_i, so late in training a small rate is best. Any fixed rate is a
compromise; a schedule that starts high and decays beats it (lr 0.6 for 25 iterations, 0.1 for 10,
0.02 for 5: 4.2 decades of loss removed in 40 iterations, against 3.3 for the best fixed rate, 0.2).

The score is in [0, 1]: the share of ``DECADES`` decades of loss that training removed, clipped
(0: no better than the start, or diverged; 1: 5 decades or more).
"""
from __future__ import annotations

import math

import numpy as np

CURVATURES = np.logspace(0.0, -3.0, 10)
NOISE = 3e-3
STEPS_PER_ITERATION = 100
DECADES = 5.0
INITIAL_LOSS = 0.5 * float(CURVATURES.sum())


def initial_state() -> np.ndarray:
    """Each coordinate's E[theta_i^2] before training."""
    return np.ones_like(CURVATURES)


def train_iteration(state: np.ndarray, lr: float) -> np.ndarray:
    """``STEPS_PER_ITERATION`` SGD steps of learning rate ``lr`` from ``state``: the new state."""
    contraction = (1.0 - lr * CURVATURES) ** 2
    noise = lr * lr * CURVATURES * NOISE
    state = np.asarray(state, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(STEPS_PER_ITERATION):
            state = contraction * state + noise
    return state


def loss(state: np.ndarray) -> float:
    """The expected loss of the model ``state`` describes (inf once diverged)."""
    value = 0.5 * float(CURVATURES @ state)
    return value if math.isfinite(value) else math.inf


def score(state: np.ndarray) -> float:
    """The share of ``DECADES`` decades of loss removed since the start, in [0, 1]."""
    value = loss(state)
    if not value < INITIAL_LOSS:
        return 0.0
    return min(1.0, math.log10(INITIAL_LOSS / value) / DECADES)
