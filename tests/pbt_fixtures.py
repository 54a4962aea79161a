"""Trainables for the PBT tests on real ranks."""
from __future__ import annotations

import time

import hpctune
from examples.pbt_toy import train


def toy_slow_resume(config):
    """examples/pbt_toy.py's trainable; a segment that starts from a checkpoint first waits
    ``config["resume_sleep"]`` seconds, and one that starts from a finished model (nothing left to
    train) ``config["finished_sleep"]`` seconds (default the same): windows in which a test kills the run."""
    state = hpctune.get_checkpoint()
    if state is not None:
        finished = int(state["step"]) >= int(config["steps"])
        time.sleep(config.get("finished_sleep" if finished else "resume_sleep", config.get("resume_sleep", 0.0)))
    train(config)
