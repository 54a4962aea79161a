"""The MPI backend: a coordinator loop around the Controller, and the worker loop.

In the manner of ``mpi4py.futures``: the coordinator polls with ``Iprobe`` and
backs off while idle (MPICH's blocking receives spin, which would starve the
trials of an oversubscribed node), replies only after the journal has the
events that caused them, and ends every worker with a SHUTDOWN sentinel.
Worker errors travel back as data (the traceback text), never as exceptions.
A stop the coordinator decides at once (a hung worker, a second Ctrl-C) writes
the state, then ends every rank with exit code 1
(:meth:`~hpctune.backends.mpi_workers.MPIWorkers.end_now`).

Worker ids are 1..N in both launch modes: under ``mpiexec -n N+1`` they are
the COMM_WORLD ranks; when the coordinator spawned its workers they are the
remote ranks of the intercommunicator plus one.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from typing import TYPE_CHECKING

from ..enums import SegmentEnd, Tag
from ..errors import ExperimentError
from .gpus import node_of, visible_devices
from .trial_group import GroupTrialProcess
from .trial_process import COORDINATOR_SIGNALS, TrialProcess

if TYPE_CHECKING:  # a worker rank never loads the coordinator's side
    from ..controller import Controller
    from .housekeeping import Housekeeping
    from .mpi_workers import MPIWorkers

__all__ = ["Backoff", "StoppedAtOnce", "TrainableMissing", "WorkerLost", "serve_coordinator", "serve_worker",
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


class Backoff:
    """Sleep a little longer each time nothing arrived (up to ``max_sleep`` seconds).

    A few polls without sleeping first (an answer often follows at once), then sleeps from
    ``first_sleep`` doubling: every poll costs the coordinator CPU time, so polling rarely while
    idle keeps its cost per result low, and 1 ms at most keeps the latency low.
    """

    def __init__(self, max_sleep: float = 1e-3, spins: int = 2, first_sleep: float = 2e-5):
        self.max_sleep = max_sleep
        self.spins = spins
        self.first_sleep = first_sleep
        self.reset()

    def reset(self) -> None:
        self._misses = 0
        self._delay = self.first_sleep

    def wait(self) -> None:
        self._misses += 1
        if self._misses <= self.spins:
            time.sleep(0)
            return
        time.sleep(self._delay)
        self._delay = min(self._delay * 2, self.max_sleep)


def _receive(comm, source: int, tag: int, status, backoff: Backoff):
    """Receive the next message from ``source`` without spinning the CPU."""
    backoff.reset()
    while not comm.Iprobe(source=source, tag=tag, status=status):
        backoff.wait()
    return comm.recv(source=status.Get_source(), tag=status.Get_tag())


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
    from mpi4py import MPI

    comm = workers.comm
    status = MPI.Status()
    backoff = Backoff()
    watchdog = _Watchdog(worker_timeout)
    replies: list = []
    housekeeping.defer_second_signal = True  # acted on here, between two events, never mid-write
    controller.suggest_in_background()  # a model fit never holds up the answer to a result
    next_tick = 0.0
    try:
        while not controller.is_finished:
            idle = not comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
            if idle:
                backoff.wait()
            else:
                backoff.reset()
                _serve_messages(controller, workers, housekeeping, watchdog, comm, status, replies)
            if controller.suggestion_ready:
                controller.on_suggestion()
                _start_launches(controller, workers, housekeeping, watchdog, [])
            now = time.monotonic()
            watchdog.polled(now)
            if now >= next_tick:  # the rest at most every TICK_S: each call costs on every message
                next_tick = now + TICK_S
                if housekeeping.second_signal is not None:
                    raise StoppedAtOnce(housekeeping.second_signal)
                housekeeping.check_signals(controller)
                controls = controller.take_controls()  # e.g. SIGUSR1: every running trial checkpoints
                if controls:
                    housekeeping.flush(controller)
                    _send_controls(workers, controls)
                if idle:  # only with every pending message read; a group's other ranks wait silently
                    watchdog.check(workers.pool.leaders())
                housekeeping.tick(controller)
    except (WorkerLost, StoppedAtOnce, TrainableMissing):
        housekeeping.flush(controller)
        housekeeping.snapshot(controller, "interrupted")
        housekeeping.store.close()
        raise
    finally:
        workers.shutdown()
    return housekeeping.finish(controller)


def _serve_messages(controller: Controller, workers: MPIWorkers, housekeeping: Housekeeping, watchdog: _Watchdog,
                    comm, status, replies: list) -> None:
    """Take every message waiting, make their records durable, then answer and launch."""
    from mpi4py import MPI

    while True:
        source, tag = status.Get_source(), status.Get_tag()
        message = comm.recv(source=source, tag=tag)
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
        if not comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            break
    _start_launches(controller, workers, housekeeping, watchdog, replies)


def _start_launches(controller: Controller, workers: MPIWorkers, housekeeping: Housekeeping, watchdog: _Watchdog,
                    replies: list) -> None:
    """Place the controller's launches, make every record durable, then send the controls, the
    ``replies`` (worker id, decision) and the trials to run."""
    launches = []
    for launch in controller.take_launches():
        launches.append((workers.place(launch), launch.task))
        controller.placed(launch.trial_id, workers.pool.ranks_of(launch.trial_id))
    housekeeping.flush(controller)  # durable before anyone hears of it
    # controls first: a trial given a new config with its decision (a scheduler's payload) has it
    # when its report returns, as messages from one rank arrive in the order they were sent
    _send_controls(workers, controller.take_controls())
    for worker_id, decision in replies:
        workers.send(worker_id, Tag.DECISION, decision)
    replies.clear()
    for worker_id, task in launches:
        workers.send(worker_id, Tag.RUN, task)
        watchdog.heard(worker_id)


def _send_controls(workers: MPIWorkers, controls: list) -> None:
    """Send control messages (journaled and flushed already) to the ranks that lead their trials."""
    for message in controls:
        ranks = workers.pool.ranks_of(message.trial_id)
        if ranks:  # a trial that ended meanwhile needs nothing more
            workers.send(ranks[0], Tag.CONTROL, (message.trial_id, message.control, message.payload))


class _ShutdownWhileRunning(Exception):
    """The coordinator ended the experiment while this worker waited for a decision."""


def serve_worker(comm, worker_id: int, coordinator: int = 0, node: str | None = None) -> None:
    """A worker rank's loop: run the segments the coordinator sends until SHUTDOWN.

    ``node``: the node this rank is on (:func:`~hpctune.backends.gpus.node_of`); by default found
    now, collectively with the other ranks of this process's COMM_WORLD (spawned workers).
    """
    from mpi4py import MPI

    # Ctrl-C, Slurm's SIGTERM and its warning signal reach every rank; the coordinator alone acts on them
    for signum in COORDINATOR_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    status = MPI.Status()
    backoff = Backoff()
    trial_process = TrialProcess(worker_id)
    trial_process.start()
    devices, devices_from = visible_devices()
    comm.send({"hostname": socket.gethostname(), "pid": os.getpid(), "node": node or node_of(MPI.COMM_WORLD),
               "devices": devices, "devices_from": devices_from}, dest=coordinator, tag=Tag.READY)
    try:
        while True:
            task = _receive(comm, coordinator, MPI.ANY_TAG, status, backoff)
            if status.Get_tag() == Tag.SHUTDOWN:
                return
            if status.Get_tag() == Tag.CONTROL:  # for a segment that has ended meanwhile
                continue
            if status.Get_tag() == Tag.CHECK:  # once, at start-up: can this node import the trainable?
                comm.send(trial_process.check(*task), dest=coordinator, tag=Tag.CHECKED)
                continue

            def forward(message, trial_id=task.trial_id):
                if message[0] == trial_id:
                    trial_process.send_control(message[1], message[2])

            def on_result(row, checkpoint, trial_id=task.trial_id):
                comm.send((trial_id, row, checkpoint), dest=coordinator, tag=Tag.RESULT)
                while True:
                    message = _receive(comm, coordinator, MPI.ANY_TAG, status, backoff)
                    if status.Get_tag() == Tag.SHUTDOWN:
                        raise _ShutdownWhileRunning
                    if status.Get_tag() != Tag.CONTROL:
                        return message
                    forward(message)

            def on_quiet():
                comm.send(None, dest=coordinator, tag=Tag.HEARTBEAT)

            def on_tick():  # the coordinator may speak while the trial trains: it is not waited for
                if comm.Iprobe(source=coordinator, tag=Tag.SHUTDOWN):
                    comm.recv(source=coordinator, tag=Tag.SHUTDOWN)
                    raise _ShutdownWhileRunning
                while comm.Iprobe(source=coordinator, tag=Tag.CONTROL):
                    forward(comm.recv(source=coordinator, tag=Tag.CONTROL))

            # a multi-rank trial: its processes are started for this segment, then end
            process = GroupTrialProcess(worker_id, task.group, task.trial_dir) if task.group else trial_process
            try:
                how, error = process.run(task, on_result, on_quiet, HEARTBEAT_S, on_tick)
            except _ShutdownWhileRunning:
                process.kill()
                return
            finally:
                if process is not trial_process:
                    process.close()
            comm.send((task.trial_id, SegmentEnd(how), error), dest=coordinator, tag=Tag.SEGMENT_END)
    finally:
        trial_process.close()
        comm.send(None, dest=coordinator, tag=Tag.BYE)  # the coordinator reads until it has this
