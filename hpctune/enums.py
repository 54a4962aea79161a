"""Every enumeration hpctune uses: trial states, scheduler decisions, MPI message tags.

Kept in one module so that no other module needs a magic number or string.
"""
from __future__ import annotations

from enum import IntEnum


class TrialState(IntEnum):
    """Where a trial is in its life."""

    PENDING = 0      # created, never ran (or waiting to be retried)
    RUNNING = 1      # a worker runs it now
    PAUSED = 2       # stopped at a checkpoint; the scheduler may resume it
    TERMINATED = 3   # finished: completed, stopped by a criterion or by the scheduler
    ERROR = 4        # failed more often than max_failures allows

    @property
    def is_finished(self) -> bool:
        return self in (TrialState.TERMINATED, TrialState.ERROR)


class Decision(IntEnum):
    """What a scheduler tells a running trial after one of its results."""

    CONTINUE = 0
    PAUSE = 1
    STOP = 2


class SegmentEnd(IntEnum):
    """How one run of a trial on a worker (a segment) ended."""

    COMPLETED = 0    # the trainable returned, or a stop criterion was met
    PAUSED = 1       # paused on the scheduler's decision (checkpoint kept)
    STOPPED = 2      # stopped on the scheduler's decision
    ERROR = 3        # raised, or its process died
    INTERRUPTED = 4  # the experiment is shutting down (Ctrl-C, SIGTERM, time limit)
    STORAGE_FULL = 5  # a write failed for want of space (ENOSPC, EDQUOT): not the trial's fault


class Control(IntEnum):
    """What the coordinator tells a running trial between its results (the control channel)."""

    CHECKPOINT = 0   # checkpoint at your next report (hpctune.checkpoint_requested() is True)
    PAUSE = 1        # the next report pauses the trial; checkpoint with it
    CONFIG = 2       # new hyperparameters: hpctune.get_config(), Trainable.reset_config


class Tag(IntEnum):
    """MPI message tags between the coordinator and the worker ranks."""

    READY = 1         # worker -> coordinator: idle, payload: WorkerInfo
    RUN = 2           # coordinator -> worker: run a trial segment, payload: TrialTask
    RESULT = 3        # worker -> coordinator: (trial_id, row, checkpoint path or None)
    DECISION = 4      # coordinator -> worker: Decision for the last result
    SEGMENT_END = 5   # worker -> coordinator: (trial_id, SegmentEnd, error, checkpoint)
    SHUTDOWN = 6      # coordinator -> worker: leave the worker loop
    HEARTBEAT = 7     # worker -> coordinator: still running its trial (sent while the trial is quiet)
    BYE = 8           # worker -> coordinator: after SHUTDOWN, the last message it sends
    CONTROL = 9       # coordinator -> worker: (trial_id, Control, payload) for the trial it runs, at any time
