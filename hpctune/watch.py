"""``hpctune status DIR --watch``: the live view of an experiment, from any process, while it runs.

Each update reads the snapshot and the journal after it (no history, nothing locked: the
coordinator never waits for a reader), so watching costs the experiment nothing. A terminal gets
the table redrawn in place; a file or a pipe gets plain, time-stamped lines. The watch ends with
the experiment (finished, interrupted, requeued) or with Ctrl-C.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from .live import planned_trials, state_of_folder
from .live_render import LiveScreen, plain_lines, wants_live_screen
from .store import load_experiment

__all__ = ["watch", "WATCH_INTERVAL_S"]

WATCH_INTERVAL_S = {True: 2.0, False: 30.0}
"""Default seconds between updates: on a terminal, and in a file or pipe."""


def watch(folder: str | Path, interval: float | None = None, stream: TextIO | None = None,
          updates: int | None = None) -> int:
    """Show ``folder``'s experiment until it stops running (or ``updates`` updates); returns the exit code.

    Args:
        interval: seconds between updates (None: 2 on a terminal, 30 otherwise).
        stream: where to draw (stdout by default).
    """
    stream = stream or sys.stdout
    screen = LiveScreen(stream) if wants_live_screen(stream) else None
    if interval is None:
        interval = WATCH_INTERVAL_S[screen is not None]
    total = planned_trials(load_experiment(folder, history=False).spec)  # once: the spec does not change
    best_shown: tuple | None = None
    shown = 0
    try:
        while True:
            state = state_of_folder(folder, total)
            if screen is not None:
                screen.draw(state)
            else:
                best = state.best[1:] if state.best is not None else None
                stamp = time.strftime("%H:%M:%S")
                for line in plain_lines(state, with_best_config=best != best_shown):
                    print(f"[{stamp}] {line}", file=stream, flush=True)
                best_shown = best
            shown += 1
            if state.status != "running" or (updates is not None and shown >= updates):
                return 0
            time.sleep(interval)
    except KeyboardInterrupt:  # how a watch is usually left
        return 0
    finally:
        if screen is not None:
            screen.leave()
