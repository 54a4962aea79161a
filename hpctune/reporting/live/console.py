"""Console output on the coordinator: the live view while it runs, messages and errors."""
from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from ...errors import SpecError

from .state import state_of_controller
from .render import LiveScreen, plain_lines, wants_live_screen

__all__ = ["Console", "plain_interval"]

LIVE_INTERVAL_S = 1.0
PLAIN_INTERVAL_S = 30.0


def plain_interval() -> float:
    """Seconds between plain progress lines: ``HPCTUNE_PROGRESS_INTERVAL``, else 30."""
    text = os.environ.get("HPCTUNE_PROGRESS_INTERVAL")
    if text is None:
        return PLAIN_INTERVAL_S
    try:
        seconds = float(text)
    except ValueError:
        raise SpecError("HPCTUNE_PROGRESS_INTERVAL", f"expected seconds, got {text!r}") from None
    if not seconds > 0:
        raise SpecError("HPCTUNE_PROGRESS_INTERVAL", f"must be > 0, got {text!r}")
    return seconds


class Console:
    """The coordinator's console: messages, and the live view of the experiment while it runs.

    A terminal gets the live table, redrawn in place every second; a file, a pipe or a Slurm log
    gets plain lines every ``HPCTUNE_PROGRESS_INTERVAL`` seconds (30 by default), never an escape
    code (see :mod:`hpctune.reporting.live.render`).

    Args:
        verbose: 0 silent, 1 progress and errors, 2 also every state change.
        interval: seconds between progress updates (None: 1 s on a terminal, else as above).
        stream: where to write (stderr keeps stdout for the closing table).

    Attributes:
        allocation_end: Unix time the Slurm allocation ends (shown as the time left), if known.
    """

    def __init__(self, name: str, metric: str, mode: str, total: int | None, verbose: int = 1,
                 interval: float | None = None, stream: TextIO | None = None):
        self.name = name
        self.metric = metric
        self.mode = mode
        self.total = total
        self.verbose = verbose
        self.stream = stream or sys.stderr
        self._screen = LiveScreen(self.stream) if verbose and wants_live_screen(self.stream) else None
        if interval is None:
            interval = LIVE_INTERVAL_S if self._screen else plain_interval()
        self.interval = interval
        self.allocation_end: float | None = None
        self.virtual = False  # a simulation: elapsed and running times are the controller's virtual ones
        self.started = time.monotonic()
        self._started_at = time.time()
        self._last = self.started
        self._best_shown: tuple | None = None

    def message(self, text: str) -> None:
        if not self.verbose:
            return
        line = f"[hpctune {self.name}] {text}"
        if self._screen is not None:
            self._screen.message(line)
        else:
            print(line, file=self.stream, flush=True)

    def progress(self, controller, force: bool = False, status: str = "running") -> None:
        """Show where the experiment stands, if the interval has passed (``force``: now)."""
        now = time.monotonic()
        if not self.verbose or (not force and now - self._last < self.interval):
            return
        self._last = now
        left = None if self.allocation_end is None else max(self.allocation_end - time.time(), 0.0)
        if self.virtual:
            state = state_of_controller(controller, controller.started_at, now=controller.clock(), status=status)
        else:
            state = state_of_controller(controller, self._started_at, left, status=status)
        if self._screen is not None:
            self._screen.draw(state)
            return
        best = state.best[1:] if state.best is not None else None
        for line in plain_lines(state, with_best_config=best != self._best_shown):
            self.message(line)
        self._best_shown = best

    def final(self, controller, status: str) -> None:
        """The last update, when the experiment ends with ``status``; a terminal keeps it on screen."""
        self.progress(controller, force=True, status=status)
        if self._screen is not None:
            self._screen.leave()

    def trial_error(self, trial_id: int, error: str, retrying: bool) -> None:
        if not self.verbose:
            return
        what = "failed, retrying from its last checkpoint" if retrying else "failed (ERROR)"
        lines = error.rstrip().splitlines()
        body = "\n".join("    " + line for line in lines[-15:])
        self.message(f"trial {trial_id} {what}:\n{body}")
