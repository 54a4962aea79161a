"""Console output on the coordinator: progress while it runs, errors, and the closing table."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from .enums import TrialState

__all__ = ["Console"]


class Console:
    """Args:
        verbose: 0 silent, 1 progress and errors, 2 also every state change.
        interval: seconds between progress lines.
        stream: where to write (stderr keeps stdout for the closing table).
    """

    def __init__(self, name: str, metric: str, mode: str, total: int | None, verbose: int = 1,
                 interval: float = 2.0, stream: TextIO | None = None):
        self.name = name
        self.metric = metric
        self.mode = mode
        self.total = total
        self.verbose = verbose
        self.interval = interval
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._last = self.started

    def message(self, text: str) -> None:
        if self.verbose:
            print(f"[hpctune {self.name}] {text}", file=self.stream, flush=True)

    def progress(self, controller, force: bool = False) -> None:
        now = time.monotonic()
        if not self.verbose or (not force and now - self._last < self.interval):
            return
        self._last = now
        counts = controller.counts
        done = counts[TrialState.TERMINATED] + counts[TrialState.ERROR]
        total = f"/{self.total}" if self.total else ""
        parts = [f"{now - self.started:6.1f}s", f"{done}{total} finished",
                 f"{counts[TrialState.RUNNING]} running", f"{counts[TrialState.PAUSED]} paused",
                 f"{counts[TrialState.PENDING]} pending", f"{counts[TrialState.ERROR]} error"]
        if controller.best is not None:
            score, trial_id = controller.best
            parts.append(f"best {self.metric}={-score if self.mode == 'min' else score:.5g} (trial {trial_id})")
        extra = controller.scheduler.describe_progress()
        if extra:
            parts.append(extra)
        self.message(" | ".join(parts))

    def trial_error(self, trial_id: int, error: str, retrying: bool) -> None:
        if not self.verbose:
            return
        what = "failed, retrying from its last checkpoint" if retrying else "failed (ERROR)"
        lines = error.rstrip().splitlines()
        body = "\n".join("    " + line for line in lines[-15:])
        self.message(f"trial {trial_id} {what}:\n{body}")
