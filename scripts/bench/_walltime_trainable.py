"""The trainable of ``scripts/bench/walltime.py``: ``config["iter_s"]`` seconds an iteration
(sleeping), a checkpoint with every result, and a line in ``$WALLTIME_BENCH_LOG`` when each
iteration starts (``trial iteration start_time iter_s``), so that iterations computed but never
reported (killed at an allocation's end) can be counted afterwards."""
from __future__ import annotations

import os
import time

import hpctune


def train(config: dict) -> None:
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    log = os.environ["WALLTIME_BENCH_LOG"]
    for i in range(start + 1, int(config["iterations"]) + 1):
        with open(log, "a") as f:
            f.write(f"{hpctune.get_trial_id()} {i} {time.time()} {config['iter_s']}\n")
        time.sleep(config["iter_s"])
        hpctune.report({"loss": config["x"] + 1.0 / i}, checkpoint={"iteration": i})
