"""The no-op trainable of ``scripts/bench/scale.py``.

It reports ``{"loss": float(i), "started": <time.time() at its start>}``
``SCALE_BENCH_REPORTS`` times (an environment variable, so that the search space
stays ``{"x": uniform(0, 1)}``; worker ranks and trial processes inherit it) and
does nothing else. ``started`` tells when the trial really began running.
"""
from __future__ import annotations

import os
import time

import hpctune


def train(config: dict) -> None:
    started = time.time()
    for i in range(int(os.environ["SCALE_BENCH_REPORTS"])):
        hpctune.report({"loss": float(i), "started": started})
