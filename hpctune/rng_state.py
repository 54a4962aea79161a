"""A numpy generator's state as plain JSON, and back (snapshots hold schedulers' and searchers' state)."""
from __future__ import annotations

import numpy as np

__all__ = ["rng_to_json", "rng_from_json"]


def rng_to_json(rng: np.random.Generator) -> dict:
    """The generator's state with its 128-bit integers as text (JSON readers may not keep them exact)."""
    state = rng.bit_generator.state
    return {**state, "state": {key: str(value) for key, value in state["state"].items()}}


def rng_from_json(state: dict) -> dict:
    """What :func:`rng_to_json` wrote, as ``rng.bit_generator.state`` takes it."""
    return {**state, "state": {key: int(value) for key, value in state["state"].items()}}
