"""A trial's own process, so that a segfault or ``os._exit`` in a trainable cannot take its worker rank down.

Each worker rank keeps one child process (``python -m hpctune.backends.mpi.trial_process FD``)
and reuses it for trial after trial; if the child dies, the trial it ran becomes
an ERROR with the reason (exit code or signal) and the next trial gets a fresh child.
Parent and child talk over a socket pair with :class:`multiprocessing.connection.Connection`.

Messages, child -> parent: ``("result", row, checkpoint)`` (answered with a
Decision) and ``("end", SegmentEnd, error)``; parent -> child: a
:class:`~hpctune.trial.TrialTask`, a Decision, ``("control", Control, payload)``
(at any time during a segment: the coordinator's control channel), or None (exit).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from ...enums import Decision, SegmentEnd
from ...trial import TrialTask

__all__ = ["TrialProcess", "describe_exit", "TICK_S", "COORDINATOR_SIGNALS"]

COORDINATOR_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
"""Signals a launcher (mpiexec, Slurm) sends to every process of the job, for the coordinator alone to act
on: worker ranks and trial processes ignore them (SIGUSR1's and SIGUSR2's default action would end them)."""

TICK_S = 0.25
"""How often a worker looks for a message from the coordinator while its trial trains."""


def trial_environment() -> dict:
    """Environment for a trial's own process: the launcher's MPI wiring removed."""
    drop = ("PMI_", "PMIX_", "HYDRA_", "MPIR_", "OMPI_", "I_MPI_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["HPCTUNE_TRIAL_PROCESS"] = "1"
    return env


def describe_exit(returncode: int | None) -> str:
    """'exited with code 3' / 'killed by signal SIGSEGV (11)'."""
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown signal"
        return f"killed by signal {name} ({-returncode})"
    return f"exited with code {returncode}"


class TrialProcess:
    """The worker's side of the child process that runs trainables.

    Args:
        rank: the worker rank (stamped on every result row).
    """

    def __init__(self, rank: int):
        self.rank = rank
        self._proc: subprocess.Popen | None = None
        self._conn: Connection | None = None

    def start(self, waiting: Callable[[], None] | None = None) -> None:
        """Start the child now (a worker does so at once: its start-up overlaps the coordinator's).
        ``waiting``: called while a start takes long (not here: starting returns at once)."""
        parent, child = socket.socketpair()
        env = trial_environment()
        env["HPCTUNE_WORKER_RANK"] = str(self.rank)
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "hpctune.backends.mpi.trial_process", str(child.fileno())],
            pass_fds=[child.fileno()], env=env, stdin=subprocess.DEVNULL,
        )
        child.close()
        self._conn = Connection(parent.detach())

    def run(self, task: TrialTask, on_result: Callable[[dict, str | None], object],
            on_quiet: Callable[[], None] | None = None, quiet_interval: float = 5.0,
            on_tick: Callable[[], None] | None = None) -> tuple[SegmentEnd, str | None]:
        """Run one segment in the child; ``on_result(row, checkpoint)`` returns each decision.

        ``on_quiet()`` is called every ``quiet_interval`` seconds without a message (heartbeats),
        ``on_tick()`` every ``TICK_S`` while the child is quiet (it may raise to abandon the trial).
        """
        quiet_since = time.monotonic()

        def waiting():
            nonlocal quiet_since
            if on_tick is not None:
                on_tick()
            if on_quiet is not None and time.monotonic() - quiet_since >= quiet_interval:
                on_quiet()
                quiet_since = time.monotonic()

        try:
            if self._proc is None or self._proc.poll() is not None:
                self.start(waiting)
            self._conn.send(task)
            while True:
                if not self._conn.poll(TICK_S if on_tick else quiet_interval):
                    waiting()
                    continue
                quiet_since = time.monotonic()
                message = self._conn.recv()
                if message[0] == "result":
                    self._conn.send(on_result(message[1], message[2]))
                else:
                    return message[1], message[2]
        except (EOFError, OSError):
            return SegmentEnd.ERROR, self._died()

    def check(self, trainable: str, python_path: list) -> str | None:
        """Import ``trainable`` in the child, as its trials will: None, or why it cannot."""
        try:
            if self._proc is None or self._proc.poll() is not None:
                self.start()
            self._conn.send(("check", trainable, python_path))
            return self._conn.recv()[1]
        except (EOFError, OSError):
            return self._died()

    def send_control(self, control, payload) -> None:
        """Pass a control message on to the running trial (it reads it at its next report or poll)."""
        try:
            self._conn.send(("control", control, payload))
        except (OSError, AttributeError):  # the child is gone or was never started: its end says so
            pass

    def _died(self) -> str:
        try:
            code = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        self._conn.close()
        self._proc = self._conn = None
        return f"trial process {describe_exit(code)}"

    def kill(self) -> None:
        """End the child at once (the experiment is over; its trial is not waited for)."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._conn.close()
            self._proc = self._conn = None

    def close(self) -> None:
        """Ask the child to exit, and make sure it does."""
        if self._proc is None:
            return
        try:
            self._conn.send(None)
            self._proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        self._conn.close()
        self._proc = self._conn = None


class PipeChannel:
    """A trial process's end of the connection to its worker: results out, decisions and control messages in."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def send_result(self, row: dict, checkpoint: str | None) -> tuple[Decision, list]:
        self.conn.send(("result", row, checkpoint))
        controls = []
        while True:
            message = self.conn.recv()
            if not _is_control(message):
                return message, controls
            controls.append(message[1:])

    def poll_controls(self) -> list:
        controls = []
        while self.conn.poll(0):
            message = self.conn.recv()
            assert _is_control(message), f"unexpected message during a segment: {message!r}"
            controls.append(message[1:])
        return controls


def _is_control(message) -> bool:
    return type(message) is tuple and message[:1] == ("control",)


def main(fd: int) -> None:
    """The child's loop: run tasks until told to exit (or the parent goes away)."""
    from ...session import run_segment  # numpy and h5py: loaded while the worker's rank starts up
    from ..gpus import bind_devices
    from ...trainable import resolve_trainable

    for signum in COORDINATOR_SIGNALS:  # the coordinator decides how to stop, and when to checkpoint
        signal.signal(signum, signal.SIG_IGN)
    conn = Connection(fd)
    rank = int(os.environ.get("HPCTUNE_WORKER_RANK", "0"))
    hostname = socket.gethostname()
    channel = PipeChannel(conn)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        if _is_control(task):  # meant for the segment that just ended
            continue
        if type(task) is tuple and task[:1] == ("check",):  # the coordinator's start-up check of this node's environment
            conn.send(("checked", _import_error(task[1], task[2])))
            continue
        bind_devices(task.gpus)  # before the trainable's module loads (and before its first CUDA call)
        try:
            trainable = resolve_trainable(task.trainable, task.python_path)
        except Exception as exc:  # SpecError included: report it as the trial's error
            conn.send(("end", SegmentEnd.ERROR, f"cannot load trainable {task.trainable!r}: {exc}"))
            continue
        how, error = run_segment(trainable, task, channel, rank=rank, hostname=hostname)
        sys.stdout.flush()
        sys.stderr.flush()
        conn.send(("end", how, error))


def _import_error(trainable: str, python_path: list) -> str | None:
    from ...trainable import resolve_trainable

    try:
        resolve_trainable(trainable, python_path)
    except Exception as exc:  # SpecError says what failed and where
        return str(exc).removeprefix("trainable: ")
    return None


if __name__ == "__main__":
    main(int(sys.argv[1]))
