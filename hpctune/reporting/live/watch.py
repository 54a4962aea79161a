"""``hpctune status DIR --watch``: the live view of an experiment, from any process, while it runs.

Each update reads the snapshot and the journal after it (no history, nothing locked: the
coordinator never waits for a reader), so watching costs the experiment nothing. A terminal gets
the table redrawn in place; a file or a pipe gets plain, time-stamped lines. The watch ends with
the experiment (finished, interrupted, requeued) or with Ctrl-C; its exit code says how the
experiment ended (:func:`watch`). An experiment ``hpctune submit`` queued and no allocation has
started yet is waited for (a line says the job's state).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from ...errors import EXIT_FAILED, EXIT_OK, EXIT_REQUEUED
from .state import planned_trials, state_of_folder
from .render import LiveScreen, plain_lines, wants_live_screen
from ...slurm.allocation import queued_job
from ...store import is_experiment, load_experiment

__all__ = ["watch", "WATCH_INTERVAL_S"]

WATCH_INTERVAL_S = {True: 2.0, False: 30.0}
"""Default seconds between updates: on a terminal, and in a file or pipe."""


def watch(folder: str | Path, interval: float | None = None, stream: TextIO | None = None,
          updates: int | None = None) -> int:
    """Show ``folder``'s experiment until it stops running (or ``updates`` updates); returns the exit code
    (:data:`hpctune.errors.EXIT_OK` and the others): 0 if it finished (or the watch was left: Ctrl-C,
    ``updates``), 1 if it stopped before its end (interrupted, or killed: a line on stderr says so), 3
    if its Slurm allocation ended and the job is queued again.

    Args:
        interval: seconds between updates (None: 2 on a terminal, 30 otherwise).
        stream: where to draw (stdout by default).
    """
    stream = stream or sys.stdout
    screen = LiveScreen(stream) if wants_live_screen(stream) else None
    if interval is None:
        interval = WATCH_INTERVAL_S[screen is not None]
    try:
        if not _wait_for_start(Path(folder), interval, stream):
            print(f"hpctune: {folder}: its Slurm job left the queue without starting the experiment",
                  file=sys.stderr)
            return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
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
            if state.status != "running":
                break
            if updates is not None and shown >= updates:
                return EXIT_OK
            time.sleep(interval)
    except KeyboardInterrupt:  # how a watch is usually left
        return EXIT_OK
    finally:
        if screen is not None:
            screen.leave()
    return _how_it_ended(Path(folder), state.status)


REQUEUE_WAIT_S = 30.0
"""How long a watch that saw its experiment stop waits for a Slurm job still running it to show whether
it was requeued (the coordinator writes its state, then asks Slurm to requeue the job)."""


def _how_it_ended(folder: Path, status: str) -> int:
    """The exit code for an experiment that stopped running with ``status``; a line on stderr unless finished."""
    if status == "finished":
        return EXIT_OK
    deadline = time.monotonic() + REQUEUE_WAIT_S
    queued = queued_job(folder)  # None at once outside Slurm: no scontrol call
    while queued is not None and not queued[1].startswith(("PENDING", "REQUEUE")) and time.monotonic() < deadline:
        time.sleep(1.0)
        queued = queued_job(folder)
    if queued is not None and queued[1].startswith(("PENDING", "REQUEUE")):
        print(f"hpctune: {folder}: this allocation ended; Slurm job {queued[0]} is queued again ({queued[1]}): "
              "its next allocation continues the experiment", file=sys.stderr)
        return EXIT_REQUEUED
    print(f"hpctune: {folder}: the experiment stopped before its end ({status}); continue it with "
          f"'hpctune resume {folder}'", file=sys.stderr)
    return EXIT_FAILED


def _wait_for_start(folder: Path, interval: float, stream: TextIO) -> bool:
    """Until the folder holds an experiment, while its Slurm job (``hpctune submit``) is queued: a line
    whenever the job's state changes. False if the job left the queue without starting it."""
    said = None
    while not is_experiment(folder):
        queued = queued_job(folder)
        if queued is None:
            return is_experiment(folder)  # it may have started in between
        line = f"{folder}: not started yet; Slurm job {queued[0]}: {queued[1]}"
        if line != said:
            print(f"[{time.strftime('%H:%M:%S')}] {line}", file=stream, flush=True)
            said = line
        time.sleep(interval)
    return True
