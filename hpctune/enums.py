"""Every enumeration hpctune uses: trial states, decisions, how segments end, MPI message tags,
journal record kinds.

Kept in one module so that no other module needs a magic number or string.
"""
from __future__ import annotations

from enum import IntEnum


class TrialState(IntEnum):
    """Where a trial is in its life."""

    PENDING = 0      # waiting to run: new, to be retried, or cut off before its first checkpoint
    RUNNING = 1      # a worker runs it now
    PAUSED = 2       # stopped at a checkpoint; the scheduler may resume it
    TERMINATED = 3   # finished: completed, stopped (a criterion, the scheduler), or ended with the experiment
    ERROR = 4        # failed more often than max_failures allows

    @property
    def is_finished(self) -> bool:
        return self in (TrialState.TERMINATED, TrialState.ERROR)


class Decision(IntEnum):
    """What a running trial does after one of its results: the scheduler's answer, or the
    controller's (a stop criterion met, the experiment stopping, the time budget spent)."""

    CONTINUE = 0
    PAUSE = 1
    STOP = 2


class SegmentEnd(IntEnum):
    """How one run of a trial on a worker (a segment) ended."""

    COMPLETED = 0    # the trainable returned (or a Trainable's step reported done)
    PAUSED = 1       # paused on a PAUSE decision (checkpoint kept)
    STOPPED = 2      # stopped on a STOP decision (the scheduler's, or a stop criterion met)
    ERROR = 3        # raised, or its process died
    INTERRUPTED = 4  # the experiment is stopping (no backend sends it: such a trial gets PAUSE)
    STORAGE_FULL = 5  # a write failed for want of space (ENOSPC, EDQUOT): not the trial's fault


class Control(IntEnum):
    """What the coordinator tells a running trial between its results (the control channel)."""

    CHECKPOINT = 0   # checkpoint at your next report (hpctune.checkpoint_requested() is True)
    PAUSE = 1        # the next report pauses the trial; checkpoint with it
    CONFIG = 2       # new hyperparameters: hpctune.get_config(), Trainable.reset_config


class Tag(IntEnum):
    """MPI message tags between the coordinator and the worker ranks."""

    READY = 1         # worker -> coordinator: started, payload: {"hostname", "pid", "node", "devices", ...}
    RUN = 2           # coordinator -> worker: run a trial segment, payload: TrialTask
    RESULT = 3        # worker -> coordinator: (trial_id, row, checkpoint path or None)
    DECISION = 4      # coordinator -> worker: what Controller.on_result returned for the last result
    SEGMENT_END = 5   # worker -> coordinator: (trial_id, SegmentEnd, error text or None)
    SHUTDOWN = 6      # coordinator -> worker: leave the worker loop
    HEARTBEAT = 7     # worker -> coordinator: still running its trial (sent while the trial is quiet)
    BYE = 8           # worker -> coordinator: after SHUTDOWN, the last message it sends
    CONTROL = 9       # coordinator -> worker: (trial_id, Control, payload) for the trial it runs, at any time
    CHECK = 10        # coordinator -> worker, answering READY: (trainable, python_path) to import once
    CHECKED = 11      # worker -> coordinator: None (imported: the worker takes work) or the import error's text
    OFF_NODE = 12     # worker on another node -> coordinator: (its tag, its payload) for any message (mpi/inbox.py)


class RecordKind(IntEnum):
    """What one journal record says (docs/hdf5-layout.md); its fields follow each comment.

    READY, RESULT, END, INTERRUPT, PAUSE, CONFIG and DEADLINE are the controller's input events (``resume``
    replays them); ADD and SEARCH_END are replayed too, where they stand (a trial joins there, with the
    config it got then); the others record their effects, for the readers (``resume`` derives EXPLOIT
    and UNDO_EXPLOIT again from the results and ends it replays).

    Attributes:
        key: the record's ``"k"`` on disk, the name in lowercase (``"result"``); :meth:`from_key`
            parses it back.
    """

    READY = 0      # ranks joined (first contact): n
    RESULT = 1     # an accepted result: trial, row, ckpt
    END = 2        # a segment ended: trial, how (a SegmentEnd name), error, ckpt
    INTERRUPT = 3  # the experiment stops (Ctrl-C, SIGTERM, a full disk): why (optional)
    DECISION = 4   # a PAUSE or STOP for a result: trial, it, d (a Decision name)
    STATE = 5      # a trial's new state: trial, state (a TrialState name), why, failures
    ADD = 6        # a new trial: trial, config
    LAUNCH = 7     # a segment started on ranks the backend chose: trial, rank (its leader), ranks (if > 1), ckpt
    STATUS = 8     # the experiment's status when the coordinator ends: status
    PAUSE = 9      # pause a running trial at its next result (Controller.pause_now): trial
    CONFIG = 10    # a trial's new config (Controller.set_config): trial, config, it (its iteration then)
    DEADLINE = 11  # this allocation's results must be in by then (Controller.set_deadline): end (Unix time)
    EXPLOIT = 12   # a trial goes on from a copy of another's newest checkpoint: trial, donor, src, ckpt, it, config
    SEARCH_END = 13  # the searcher has no more configs (no fields)
    UNDO_EXPLOIT = 14  # an exploit undone: the trial finished with no result after it: trial, donor, ckpt, it, config

    def __init__(self, value: int):
        self.key = self.name.lower()  # an attribute, not a property: it is read for every record written

    @classmethod
    def from_key(cls, key: str) -> RecordKind:
        """The kind a record's ``"k"`` names.

        Raises:
            ValueError: ``key`` names no kind (a damaged journal, or one a newer hpctune wrote).
        """
        try:
            return _RECORD_KINDS[key]
        except (KeyError, TypeError):  # TypeError: not even a string
            raise ValueError(f"unknown record kind {key!r} (known: {', '.join(_RECORD_KINDS)})") from None


_RECORD_KINDS = {kind.key: kind for kind in RecordKind}
"""key -> RecordKind, for :meth:`RecordKind.from_key`."""
