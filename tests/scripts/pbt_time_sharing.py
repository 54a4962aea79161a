"""Asynchronous PBT, a population of 4 on 2 worker ranks, perturbation interval 3, 12 iterations,
with a trainable that checkpoints only every 10th iteration or when asked
(``hpctune.checkpoint_requested()``); each result says which checkpoint iteration its segment
started from. ``python pbt_time_sharing.py STORAGE`` (it spawns two workers).
"""
from __future__ import annotations

import sys
import time

import hpctune

EPOCHS = 12


def train(config):
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    for i in range(start + 1, EPOCHS + 1):
        time.sleep(config["sleep"])
        x = hpctune.get_config()["x"]
        asked = hpctune.checkpoint_requested()
        hpctune.report({"loss": abs(x - 0.3) + 1.0 / i, "started_from": start, "asked": asked},
                       checkpoint={"iteration": i} if i % 10 == 0 or asked else None)


if __name__ == "__main__":
    hpctune.run(train, space={"x": hpctune.uniform(0.0, 1.0), "sleep": 0.05}, metric="loss", mode="min",
                num_samples=4, workers=2, seed=3, storage=sys.argv[1], name="shared", verbose=0,
                scheduler={"type": "pbt", "perturbation_interval": 3, "quantile_fraction": 0.25})
