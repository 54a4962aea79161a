"""The MPI backend's coordinator loop around the Controller (the workers' loop: :mod:`.worker_loop`).

In the manner of ``mpi4py.futures``: the coordinator polls with ``Iprobe`` and
backs off while idle (MPICH's blocking receives spin, which would starve the
trials of an oversubscribed node), replies only after the journal has the
events that caused them, and ends every worker with a SHUTDOWN sentinel.
Worker errors travel back as data (the traceback text), never as exceptions.
A stop the coordinator decides at once (a hung worker, a second Ctrl-C) writes
the state, then ends every rank with exit code 1
(:meth:`~hpctune.backends.mpi.workers.MPIWorkers.end_now`).

Worker ids are 1..N in both launch modes: under ``mpiexec -n N+1`` they are
the COMM_WORLD ranks; when the coordinator spawned its workers they are the
remote ranks of the intercommunicator plus one.
"""
from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

from ...enums import Decision, Tag
from ...errors import ExperimentError
from .polling import Backoff

if TYPE_CHECKING:  # a worker rank never loads the coordinator's side
    from ...controller.controls import ControlMessage
    from ...controller.core import Controller, Launch
    from ...controller.housekeeping import Housekeeping
    from .workers import MPIWorkers

__all__ = ["StoppedAtOnce", "TrainableMissing", "WorkerLost", "serve_coordinator",
           "HEARTBEAT_S", "MAX_POLL_GAP_S"]

HEARTBEAT_S = 5.0
"""A busy worker tells the coordinator it is alive at least this often."""

TICK_S = 0.01
"""Signals, the watchdog, progress and snapshots are looked at this often, not on every message."""

MAX_POLL_GAP_S = 1.0
"""The most a pause between two of the coordinator's polls counts towards a worker's silence."""


class WorkerLost(ExperimentError):
    """A worker rank running a trial stopped answering (its process or node died)."""


class TrainableMissing(ExperimentError):
    """A worker's node cannot import the trainable (another environment, a missing module)."""

    def __init__(self, worker_id: int, hostname: str, trainable: str, error: str):
        super().__init__(f"worker rank {worker_id} on {hostname} cannot import the trainable {trainable!r}: {error}")


class StoppedAtOnce(ExperimentError):
    """A second SIGINT/SIGTERM: the coordinator stopped without waiting for the running trials."""

    def __init__(self, signum: int):
        super().__init__(f"a second {signal.Signals(signum).name} stopped the experiment at once")


class _Watchdog:
    """Notices a busy worker that stayed silent for ``timeout`` seconds of the coordinator's listening.

    Silence is measured on a clock that runs only while the coordinator polls: the time between
    two polls counts at most ``max_gap`` seconds. A coordinator that was stopped (SIGSTOP, a
    swapped-out node, a long GC pause) or busy (a long snapshot) has not read what its workers
    sent meanwhile; that silence is its own, not theirs. (After such a pause, MPICH may answer
    the first ``Iprobe`` with False although messages are waiting.) Checked once a second.
    """

    def __init__(self, timeout: float, max_gap: float = MAX_POLL_GAP_S):
        self.timeout = timeout
        self.max_gap = max_gap
        self.listened = 0.0  # seconds the coordinator has been listening
        self.last_heard: dict[int, float] = {}
        self._last_poll = time.monotonic()
        self._next_check = 1.0

    def polled(self, now: float) -> None:
        """The coordinator polls for messages now (``time.monotonic()``)."""
        self.listened += min(now - self._last_poll, self.max_gap)
        self._last_poll = now

    def heard(self, worker_id: int) -> None:
        self.last_heard[worker_id] = self.listened

    def check(self, running: dict[int, int]) -> None:
        """Raise :class:`WorkerLost` if a worker of ``running`` (worker id -> trial id) was silent too long."""
        if self.listened < self._next_check:
            return
        self._next_check = self.listened + 1.0
        for worker_id, trial_id in running.items():
            silent = self.listened - self.last_heard.get(worker_id, self.listened)
            if silent > self.timeout:
                raise WorkerLost(f"worker rank {worker_id} stopped answering (nothing for {silent:.0f} s while "
                                 f"running trial {trial_id}); its process or node is gone")


def serve_coordinator(controller: Controller, workers: MPIWorkers, housekeeping: Housekeeping,
                      worker_timeout: float = 4 * HEARTBEAT_S) -> str:
    """Run the experiment to its end (or interruption); returns the final status.

    Raises:
        WorkerLost: a busy worker was silent for ``worker_timeout`` seconds of listening.
        StoppedAtOnce: a second SIGINT/SIGTERM.
        Either way the journal holds everything accepted, the snapshot says
        ``interrupted``, the store is closed, and ``resume`` continues.
    """

    from ...controller.step import CoordinatorStep

    backoff = Backoff()
    watchdog = _Watchdog(worker_timeout)
    step = CoordinatorStep(controller, _RankMessages(workers, watchdog), housekeeping)
    housekeeping.defer_second_signal = True  # acted on here, between two events, never mid-write
    controller.suggest_in_background()  # a model fit never holds up the answer to a result
    next_tick = 0.0
    try:
        while not controller.is_finished:
            idle = not workers.inbox.waiting()
            if idle:
                backoff.wait()
            else:
                backoff.reset()
                step.after_event(_receive_messages(controller, workers, housekeeping, watchdog))
            if controller.suggestion_ready:
                controller.on_suggestion()
                step.after_event()
            now = time.monotonic()
            watchdog.polled(now)
            if now >= next_tick:  # the rest at most every TICK_S: each call costs on every message
                next_tick = now + TICK_S
                if housekeeping.second_signal is not None:
                    raise StoppedAtOnce(housekeeping.second_signal)
                if idle:  # only with every pending message read; a group's other ranks wait silently
                    watchdog.check(workers.pool.leaders())
                step.tick()  # e.g. SIGUSR1: every running trial is told to checkpoint
    except (WorkerLost, StoppedAtOnce, TrainableMissing):
        step.flush()
        housekeeping.snapshot(controller, "interrupted")
        housekeeping.store.close()
        raise
    finally:
        workers.shutdown()
    return step.finish()


def _receive_messages(controller: Controller, workers: MPIWorkers, housekeeping: Housekeeping,
                      watchdog: _Watchdog) -> list[tuple[int, Decision]]:
    """Take every message waiting and tell the controller; returns the replies owed, ``(worker id,
    decision)`` for each result (the coordinator step sends them once the journal has the events)."""
    replies = []
    while True:
        source, tag, message = workers.inbox.take()
        worker_id = source + workers.offset
        watchdog.heard(worker_id)
        if tag == Tag.RESULT:
            trial_id, row, checkpoint = message
            replies.append((worker_id, controller.on_result(trial_id, row, checkpoint)))
        elif tag == Tag.SEGMENT_END:
            trial_id, how, error = message
            workers.pool.release(trial_id)
            controller.on_segment_end(trial_id, how, error)
            housekeeping.segment_ended(controller, trial_id, how, error)
        elif tag == Tag.READY:  # first, its node must import the trainable as its trials will
            workers.first_contact(worker_id, message)
            workers.send(worker_id, Tag.CHECK, (controller.spec.trainable, controller.python_path))
        elif tag == Tag.CHECKED:
            if message is not None:
                raise TrainableMissing(worker_id, workers.hostnames[worker_id], controller.spec.trainable, message)
            workers.join(controller, worker_id)
        if not workers.inbox.waiting():
            return replies


class _RankMessages:
    """The worker ranks as the coordinator step sees them (:class:`~hpctune.controller.step.Workers`):
    MPI messages to the rank that leads each trial; the watchdog listens to a rank from its run on."""

    def __init__(self, workers: MPIWorkers, watchdog: _Watchdog):
        self.workers = workers
        self.watchdog = watchdog

    def place(self, launch: Launch) -> list[int]:
        return self.workers.place(launch)

    def send_controls(self, controls: list[ControlMessage]) -> None:
        pool, send = self.workers.pool, self.workers.send
        for message in controls:
            ranks = pool.ranks_of(message.trial_id)
            if ranks:  # a trial that ended meanwhile needs nothing more
                send(ranks[0], Tag.CONTROL, (message.trial_id, message.control, message.payload))

    def send_decision(self, worker_id: int, decision: Decision) -> None:
        self.workers.send(worker_id, Tag.DECISION, decision)

    def send_run(self, launch: Launch, ranks: list[int]) -> None:
        self.workers.send(ranks[0], Tag.RUN, launch.task)
        self.watchdog.heard(ranks[0])
