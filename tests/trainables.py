"""Fast function trainables for end-to-end tests (importable as ``trainables:NAME`` with tests/ on the path)."""
from __future__ import annotations

import hpctune


def train(config: dict) -> None:
    """Reports ``loss`` for iterations up to ``config["epochs"]``, resuming from ``{"iteration": i}`` checkpoints.

    The loss is a function of the config and the iteration only: a floor set by
    ``x`` plus a term decaying with the iteration, so every rerun agrees.
    """
    state = hpctune.get_checkpoint()
    start = int(state["iteration"]) if state is not None else 0
    for iteration in range(start + 1, int(config["epochs"]) + 1):
        loss = abs(config["x"] - 0.3) + (0.1 + config.get("y", 0.0)) / iteration
        hpctune.report({"loss": loss}, checkpoint={"iteration": iteration})
