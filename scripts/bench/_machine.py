"""How busy this (shared) machine is, for benchmarks that wait for it to be quiet before timing."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Average number of busy cores between two :func:`cpu_times` readings."""
    total = after[1] - before[1]
    return 0.0 if total <= 0 else (after[0] - before[0]) / total * len(os.sched_getaffinity(0))


def wait_idle(max_wait_s: float, threshold: float = 0.3, window_s: float = 2.0) -> dict:
    """Wait until other processes use less than ``threshold`` cores for two consecutive
    ``window_s`` windows (the machine is shared), at most ``max_wait_s``; returns what was seen."""
    t0 = time.perf_counter()
    quiet = 0
    busy = 0.0
    while True:
        before = cpu_times()
        time.sleep(window_s)
        busy = busy_cores(before, cpu_times())
        quiet = quiet + 1 if busy < threshold else 0
        waited = time.perf_counter() - t0
        if quiet >= 2 or waited >= max_wait_s:
            return {"idle": quiet >= 2, "waited_s": round(waited, 1), "busy_cores_before": round(busy, 2)}


def settle(max_wait_s: float) -> dict | None:
    """:func:`wait_idle`, saying so on stderr if the machine stayed busy (None: no wait asked)."""
    if max_wait_s <= 0:
        return None
    seen = wait_idle(max_wait_s)
    if not seen["idle"]:
        print(f"  machine still busy ({seen['busy_cores_before']:.2f} cores) after {seen['waited_s']} s; "
              "measuring anyway", file=sys.stderr, flush=True)
    return seen
