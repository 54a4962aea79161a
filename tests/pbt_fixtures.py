"""Trainables for the PBT tests on real ranks."""
from __future__ import annotations

import time

import hpctune
from examples.pbt_toy import train


def toy_slow_resume(config):
    """examples/pbt_toy.py's trainable; a segment that starts from a checkpoint first waits
    ``config["resume_sleep"]`` seconds (a window in which a test kills the run)."""
    if hpctune.get_checkpoint() is not None:
        time.sleep(config.get("resume_sleep", 0.0))
    train(config)
