"""Waiting for a Slurm job of the loopback cluster (tests/e2e/test_slurm.py, scripts/bench/walltime.py)."""
from __future__ import annotations

import subprocess
import time

from hpctune.slurm.job import FINAL_STATES, job_state

HOLD_S = 5.0
"""A requeued job waits this long before it may start again. Slurm holds one for 2 minutes; started
at once (within a second of the requeue) it fails with 'Job credential revoked'."""


def wait_until_ended(job_id: str, timeout: float) -> None:
    """Wait until the job ended for good, through its requeues (cancelled after ``timeout`` seconds).

    A requeued job is let start after :data:`HOLD_S` instead of Slurm's two minutes: that changes
    nothing but the wait. A job counts as ended when seen in a final state three times running.
    """
    deadline = time.monotonic() + timeout
    ended, held_since = 0, None
    while time.monotonic() < deadline:
        state = job_state(job_id) or "UNKNOWN"
        ended = ended + 1 if state in FINAL_STATES else 0
        if ended == 3:
            return
        if state == "PENDING BeginTime":
            held_since = held_since or time.monotonic()
            if time.monotonic() - held_since >= HOLD_S:
                subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], capture_output=True)
                held_since = None
        else:
            held_since = None
        time.sleep(1)
    subprocess.run(["scancel", job_id])
    raise AssertionError(f"Slurm job {job_id} still queued after {timeout:.0f} s")
