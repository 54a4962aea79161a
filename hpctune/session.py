"""The training side of the narrow waist: ``report``, ``get_checkpoint``, ``get_config``, ``Trainable``.

A trainable runs in *segments*: from its start (or a checkpoint) until it
returns, fails, or the scheduler pauses or stops it. :func:`run_segment` runs
one segment of a function or class trainable against a *channel* that carries
each result to the coordinator and brings back its decision, and brings the
coordinator's control messages (checkpoint now, pause, a new config) at any
time. The channel is a pipe to the worker rank (trial in its own process) or a
direct call (in-process backend); the trainable cannot tell.

When a trial sees a control message: it is read at the trial's next
:func:`report` (while waiting for the decision), and at once by
:func:`checkpoint_requested` and :func:`get_config` (each looks for one without
waiting); a class trainable's session looks before every ``step()``.
"""
from __future__ import annotations

import errno
import os
import socket
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .enums import Control, Decision, SegmentEnd
from .store.checkpoint import load_checkpoint, save_checkpoint, unreadable_reason
from .store.tables import utf8_text
from .trial import RESULT_FIELDS, TrialTask

__all__ = ["RESULT_FIELDS", "reserved_key", "report", "get_checkpoint", "get_config", "get_trial_id",
           "get_trial_dir", "get_comm", "checkpoint_requested", "Trainable", "run_segment", "ResultChannel"]

CONFIG_PREFIX = "config/"
"""The tables' columns of the config (``config/lr``; a live policy's values in force in the results)."""


def reserved_key(key: str) -> bool:
    """Whether a metric may not be called ``key``: hpctune sets it in every result row (``trial_id``,
    ``training_iteration``, ...; ``done`` excepted: a class trainable's step returns it to end the
    trial), or it would be read as a column of the config (``config/...``)."""
    return (key in RESULT_FIELDS and key != "done") or key.startswith(CONFIG_PREFIX)


class ResultChannel(Protocol):
    """Where a segment's results go, and where the coordinator's control messages come from.

    ``send_result(row, checkpoint_path)`` returns ``(decision, controls)``; ``poll_controls()``
    returns the control messages waiting, without blocking. A control message is
    ``(Control, payload)``.
    """

    def send_result(self, row: dict, checkpoint: str | None) -> tuple[Decision, list]: ...

    def poll_controls(self) -> list: ...


STORAGE_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
"""Write failures that are the storage's, not the trial's: the experiment stops, the trial is kept."""


class StorageFull(BaseException):
    """A checkpoint could not be written for want of space. A BaseException, so that a trainable's
    own ``except Exception`` does not swallow it and train on without checkpoints."""


def storage_full_reason(exc: BaseException | None) -> str | None:
    """'no space left on device' if ``exc`` or what caused it is a full disk or quota, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_FULL_ERRNOS:
            return os.strerror(exc.errno).lower()
        exc = exc.__cause__ or exc.__context__
    return None


class CheckpointUnreadable(Exception):
    """The checkpoint a trial starts from cannot be read: the segment fails with this one line
    (naming the file) as its error, not with the reader's traceback."""


class _SegmentOver(BaseException):
    """Unwinds a function trainable after a PAUSE or STOP decision (not an error)."""

    def __init__(self, decision: Decision):
        self.decision = decision


class Trainable:
    """Class API: subclass and implement :meth:`step` (plus checkpoint methods to pause/resume).

    One :meth:`step` is one ``training_iteration``; it returns the metrics dict
    (``"done": True`` ends the trial). :meth:`save_checkpoint` is called after
    every step and returns a dict of arrays and scalars (or None);
    :meth:`load_checkpoint` gets that dict back when the trial resumes.
    """

    def __init__(self, config: dict):
        self.config = config
        self.setup(config)

    def setup(self, config: dict) -> None:
        """Build the model and data; called once per segment."""

    def step(self) -> dict:
        """Train one iteration and return its metrics."""
        raise NotImplementedError

    def save_checkpoint(self) -> dict | None:
        """The state to resume from; None: this trainable cannot pause and resume."""
        return None

    def load_checkpoint(self, state: dict) -> None:
        """Restore what :meth:`save_checkpoint` returned."""

    def reset_config(self, new_config: dict) -> bool:
        """Take new hyperparameters in place (PBT, live policies): called before the next
        :meth:`step`; return True if done. False (the default): the trainable is built again
        with ``new_config`` and loads the checkpoint its last step saved (with no checkpoint,
        it keeps training as it was, with :attr:`config` updated)."""
        return False


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.item() if value.size == 1 else value.tolist()
    if isinstance(value, str):
        return utf8_text(value)
    return value


class _Session:
    """The state of the segment running in this process."""

    def __init__(self, task: TrialTask, channel: ResultChannel, rank: int, hostname: str, comm=None):
        self.task = task
        self.channel = channel
        self.rank = rank
        self.hostname = hostname
        self.comm = comm  # the trial's ranks (a multi-rank trial); None: this process alone
        self.leader = comm is None or comm.Get_rank() == 0  # whose checkpoints and results count
        self.gpus = task.devices_text()  # the devices this trial was given ("" for none)
        self.iteration = task.start_iteration
        self.time_total = task.time_total_s
        self.last_time = time.time()
        self._checkpoint: dict | None = None
        self._checkpoint_loaded = False
        self.checkpoint_wanted = False          # the coordinator asked for a checkpoint (Control.CHECKPOINT/PAUSE)
        self.new_config: dict | None = None     # a config not yet handed to a class trainable

    def apply_controls(self, controls: list) -> None:
        """Take the coordinator's control messages into account."""
        for control, payload in controls:
            if control == Control.CONFIG:
                # in place: a function trainable that reads config[...] each epoch sees the change
                # without asking; the class API gets it through reset_config
                self.task.config.clear()
                self.task.config.update(payload)
                self.new_config = dict(payload)
            else:  # CHECKPOINT, PAUSE: the next report should carry a checkpoint
                self.checkpoint_wanted = True

    def poll(self) -> None:
        self.apply_controls(self.channel.poll_controls())

    def checkpoint(self) -> dict | None:
        if not self._checkpoint_loaded:
            self._checkpoint_loaded = True
            if self.task.checkpoint:
                try:
                    self._checkpoint = load_checkpoint(self.task.checkpoint)
                except (OSError, KeyError, RuntimeError) as exc:  # what h5py raises for a damaged file
                    name = os.path.relpath(self.task.checkpoint, self.task.experiment_dir)
                    problem = "is missing" if isinstance(exc, FileNotFoundError) else \
                        f"cannot be read ({unreadable_reason(exc)})"
                    raise CheckpointUnreadable(f"checkpoint {name} {problem}") from None
        return self._checkpoint

    def save(self, state: dict | None) -> str | None:
        """Write a checkpoint (the leader's alone); returns its path relative to the experiment folder."""
        if state is None or not self.leader:
            return None
        path = Path(self.task.trial_dir) / f"checkpoint_{self.iteration:06d}.h5"
        try:
            save_checkpoint(path, state)
        except OSError as exc:
            reason = storage_full_reason(exc)
            if reason is None:
                raise
            raise StorageFull(reason) from None
        return os.path.relpath(path, self.task.experiment_dir)

    def report(self, metrics: Mapping, checkpoint: dict | None = None) -> Decision:
        if not isinstance(metrics, Mapping):
            raise TypeError(f"hpctune.report() expects a dict of metrics, got {type(metrics).__name__}")
        now = time.time()
        self.iteration += 1
        this_iter = now - self.last_time
        self.last_time = now
        self.time_total += this_iter
        row = {utf8_text(str(k)): _plain(v) for k, v in metrics.items()}
        clashing = [key for key in row if reserved_key(key)]
        if clashing:  # it would overwrite hpctune's own column, or be taken for the config's: said, not dropped
            raise ValueError(f"hpctune.report(): {clashing[0]!r} is a reserved name (hpctune sets trial_id, "
                             "training_iteration, time_this_iter_s, time_total_s, timestamp, rank, hostname and gpus "
                             "in every result, and config/... are the config's columns); report it under another name")
        value = row.get(self.task.metric, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"hpctune.report(): the metric {self.task.metric!r} must be a number, got {value!r} "
                            f"({type(value).__name__})")
        row.update(trial_id=self.task.trial_id, training_iteration=self.iteration, time_this_iter_s=this_iter,
                   time_total_s=self.time_total, timestamp=now, rank=self.rank, hostname=self.hostname,
                   gpus=self.gpus)
        path = self.save(checkpoint)
        if checkpoint is not None:  # the leader's is saved; the other ranks of a group ask no more either
            self.checkpoint_wanted = False
        decision, controls = self.channel.send_result(row, path)
        self.apply_controls(controls)
        return decision


_current: _Session | None = None


def _session(what: str) -> _Session:
    if _current is None:
        raise RuntimeError(f"hpctune.{what}() can only be called inside a trainable run by hpctune")
    return _current


def report(metrics: Mapping, checkpoint: dict | None = None) -> None:
    """Report one iteration's metrics, optionally with the state to resume from.

    Each call is one ``training_iteration``. If the scheduler pauses or stops
    the trial, this call does not return: the trainable is unwound (a paused
    trial later resumes from its last checkpoint through :func:`get_checkpoint`).

    Args:
        metrics: name -> value (numbers, strings; numpy scalars are converted).
        checkpoint: a dict of arrays and scalars, saved as an HDF5 file.
    """
    decision = _session("report").report(metrics, checkpoint)
    if _action(decision) != Decision.CONTINUE:
        raise _SegmentOver(_action(decision))


def get_checkpoint() -> dict | None:
    """The last checkpoint this trial reported, or None if it starts from scratch."""
    return _session("get_checkpoint").checkpoint()


def get_config() -> dict:
    """This trial's config: the newest one, if the coordinator sent a new one (PBT, live policies).
    It is the dict the trainable was called with, changed in place: reading ``config["lr"]`` each
    epoch sees a change too; a value copied into a variable does not."""
    session = _session("get_config")
    session.poll()
    return session.task.config


def checkpoint_requested() -> bool:
    """True once the coordinator asked this trial to checkpoint (a time limit is near, or it is to
    pause), until a :func:`report` carries a checkpoint. For function trainables that do not
    checkpoint every iteration::

        hpctune.report(metrics, checkpoint=state if epoch % 10 == 0 or hpctune.checkpoint_requested() else None)
    """
    session = _session("checkpoint_requested")
    session.poll()
    return session.checkpoint_wanted


def get_comm():
    """An mpi4py communicator over this trial's ranks (``resources.ranks_per_trial``).

    Rank 0 of it is the trial's leader: its :func:`report` calls are the trial's results and its
    checkpoints the trial's checkpoints; the other ranks' metrics and checkpoints are accepted
    and ignored, but every rank must call :func:`report` as often as the leader (each call
    waits for the leader's decision, so that all ranks pause or stop together). A one-rank
    trial gets ``MPI.COMM_SELF``, so the same code runs with any ``ranks_per_trial``.
    """
    session = _session("get_comm")
    if session.comm is not None:
        return session.comm
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("hpctune.get_comm() needs mpi4py (pip install 'hpctune[mpich]')") from None
    return MPI.COMM_SELF


def get_trial_id() -> int:
    """This trial's id."""
    return _session("get_trial_id").task.trial_id


def get_trial_dir() -> str:
    """A folder of this trial's own (checkpoints live here), created on demand."""
    path = Path(_session("get_trial_dir").task.trial_dir)
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def _action(decision) -> Decision:
    return Decision(getattr(decision, "action", decision))


def _run_function(fn, session: _Session) -> SegmentEnd:
    try:
        returned = fn(session.task.config)
        if isinstance(returned, Mapping):
            report(returned)
    except _SegmentOver as over:
        return SegmentEnd.PAUSED if over.decision == Decision.PAUSE else SegmentEnd.STOPPED
    return SegmentEnd.COMPLETED


def _run_class(cls, session: _Session) -> SegmentEnd:
    trainable = cls(dict(session.task.config))  # its own: reset_config sees the old config next to the new
    state = session.checkpoint()
    if state is not None:
        trainable.load_checkpoint(state)
    while True:
        session.poll()
        if session.new_config is not None:
            trainable = _reconfigured(cls, trainable, session.new_config, state)
            session.new_config = None
        metrics = dict(trainable.step())
        done = bool(metrics.pop("done", False))
        state = trainable.save_checkpoint()
        decision = _action(session.report(metrics, state))
        if done:
            return SegmentEnd.COMPLETED
        if decision == Decision.PAUSE:
            return SegmentEnd.PAUSED
        if decision == Decision.STOP:
            return SegmentEnd.STOPPED


def _reconfigured(cls, trainable: Trainable, config: dict, state: dict | None) -> Trainable:
    """``trainable`` with ``config``: in place if its ``reset_config`` can, else built again from ``state``."""
    if trainable.reset_config(config) or state is None:
        trainable.config = config
        return trainable
    rebuilt = cls(config)
    rebuilt.load_checkpoint(state)
    return rebuilt


def run_segment(trainable: Any, task: TrialTask, channel: ResultChannel, rank: int = 0,
                hostname: str | None = None, comm=None) -> tuple[SegmentEnd, str | None]:
    """Run one segment of ``task`` with ``trainable`` (a function or a Trainable subclass).

    ``comm``: the communicator over a multi-rank trial's processes (:func:`get_comm`); this
    process leads the trial if it is rank 0 of it.

    Returns:
        ``(how, error)``: how the segment ended and, for ERROR, the traceback text.
    """
    global _current
    session = _Session(task, channel, rank, hostname or socket.gethostname(), comm)
    previous, _current = _current, session
    try:
        if isinstance(trainable, type) and issubclass(trainable, Trainable):
            how = _run_class(trainable, session)
        else:
            how = _run_function(trainable, session)
        return how, None
    except StorageFull as full:
        return SegmentEnd.STORAGE_FULL, str(full)
    except CheckpointUnreadable as unreadable:  # one line, not h5py's traceback
        return SegmentEnd.ERROR, str(unreadable)
    except Exception as exc:  # the trial failed; the worker goes on
        reason = storage_full_reason(exc)
        if reason is not None:  # the trainable's own write hit a full disk: not its fault either
            return SegmentEnd.STORAGE_FULL, reason
        return SegmentEnd.ERROR, traceback.format_exc()
    finally:
        _current = previous

