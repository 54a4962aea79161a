"""The coordinator's side of its worker ranks: sending, placing trials on them, letting them go.

:class:`MPIWorkers` wraps the communicator to the workers (COMM_WORLD under a launcher, the
intercommunicator to spawned ones), owns the :class:`~hpctune.backends.mpi.placement.RankPool`
and the GPU assignment, and ends the workers cleanly (SHUTDOWN, then BYE from each) or at
once (:meth:`MPIWorkers.end_now`).
"""
from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, NoReturn

from ...enums import Tag
from ..gpus import assign_devices
from .inbox import Inbox
from .polling import Backoff
from .placement import RankPool
from .trial_group import group_members

if TYPE_CHECKING:
    from ...controller.core import Controller, Launch

__all__ = ["MPIWorkers"]


class MPIWorkers:
    """The coordinator's view of its worker ranks on one communicator.

    Args:
        comm: COMM_WORLD (coordinator is rank 0) or the intercommunicator to spawned workers.
        spawned: whether ``comm`` is an intercommunicator (worker id = remote rank + 1).
        off_node: whether any worker is on another node than the coordinator (:mod:`.inbox`).
    """

    def __init__(self, comm, spawned: bool, off_node: bool = False):
        self.comm = comm
        self.inbox = Inbox(comm, off_node)
        self.spawned = spawned
        self.offset = 1 if spawned else 0
        self.ids = [r + self.offset for r in range(comm.Get_remote_size() if spawned else comm.Get_size())
                    if spawned or r != 0]
        self.pool = RankPool()  # which worker runs which trial
        self.hostnames: dict[int, str] = {}
        self._first_contact: dict[int, dict] = {}
        self._checked: set[int] = set()

    def first_contact(self, worker_id: int, info: dict) -> None:
        """A worker's first message (READY): its host, node and the GPUs it sees."""
        self.hostnames[worker_id] = info["hostname"]
        self._first_contact[worker_id] = info

    def join(self, controller: Controller, worker_id: int) -> None:
        """A worker checked that its node imports the trainable. Without GPUs and with one rank per
        trial, it takes work at once; otherwise once every worker has (each gets its devices).

        Raises:
            SpecError: a node has fewer GPUs than its worker ranks ask for (before any trial starts).
        """
        info = self._first_contact[worker_id]
        gpus_per_rank = controller.spec.resources.gpus_per_rank
        # multi-rank trials wait for every worker too, so that the first groups can be placed on one node
        if not gpus_per_rank and controller.spec.resources.ranks_per_trial == 1:
            self.pool.join(worker_id, info["node"])
            controller.on_workers_joined(1)
            return
        self._checked.add(worker_id)
        if len(self._checked) == len(self.ids):
            for joined, devices in assign_devices(self._first_contact, gpus_per_rank).items():
                self.pool.join(joined, self._first_contact[joined]["node"], devices)
            controller.on_workers_joined(len(self.ids))

    def place(self, launch: Launch) -> list[int]:
        """Give ``launch`` its ranks (and their GPUs); returns them, the worker rank that leads it first.

        A multi-rank trial's task lists its members (:func:`~hpctune.backends.mpi.trial_group.group_members`),
        in the order of their ranks in the trial's communicator; the ranks returned and
        :meth:`RankPool.ranks_of` then have that order too."""
        task, resources = launch.task, launch.resources
        ranks = self.pool.place(launch.trial_id, resources.ranks_per_trial)
        gpus = self.pool.gpus if resources.gpus_per_rank else None
        if len(ranks) > 1:
            task.group = group_members(ranks, self.hostnames, gpus)
            self.pool.reorder(launch.trial_id, [member["rank"] for member in task.group])
            ranks = self.pool.ranks_of(launch.trial_id)
        if gpus is not None:
            task.gpus = gpus[ranks[0]]
        return ranks

    def send(self, worker_id: int, tag: Tag, payload) -> None:
        self.comm.send(payload, dest=worker_id - self.offset, tag=tag)

    def shutdown(self) -> None:
        for worker_id in self.ids:
            try:
                self.send(worker_id, Tag.SHUTDOWN, None)
            except Exception:  # a dead worker; the others still need to hear it
                pass

    def release(self, timeout: float = 60.0) -> None:
        """After :meth:`shutdown`: read and drop whatever the workers still send until each has said
        BYE, then let go of them (disconnect spawned ones).

        MPI must not be finalized or disconnected while a worker's message is unreceived: a large
        result travels by rendezvous and waits for its receive, and MPICH crashes if it never comes.
        A worker that does not say BYE within ``timeout`` seconds (hung) gets :meth:`end_now`.
        """
        waiting = set(self.ids)
        deadline = time.monotonic() + timeout
        backoff = Backoff()
        while waiting:
            if self.inbox.waiting():
                source, tag, _ = self.inbox.take()
                if tag == Tag.BYE:
                    waiting.discard(source + self.offset)
                backoff.reset()
            elif time.monotonic() > deadline:
                print(f"hpctune: error: worker rank(s) {sorted(waiting)} did not stop within {timeout:.0f} s",
                      file=sys.stderr, flush=True)
                self.end_now()
            else:
                backoff.wait()
        if self.spawned:
            self.comm.Disconnect()

    def end_now(self) -> NoReturn:
        """End every rank at once, this process included, with exit code 1 (the journal is flushed).

        Under mpiexec, ``MPI_Abort(1)``: hydra's mpiexec kills every rank and exits with the
        code given to MPI_Abort. With spawned workers this process is the one the user started,
        so it exits with 1 itself; its process manager (in a session of its own, see
        :func:`~hpctune.backends.mpi.launch.spawn_workers`) then kills the spawned ranks. MPI_Abort
        there would end this process by a signal instead (SIGKILL from the process manager,
        which a shell shows as 137, or a segfault inside MPI_Abort).
        """
        sys.stdout.flush()
        sys.stderr.flush()
        if self.spawned:
            os._exit(1)
        _wait_until_forwarded(sys.stderr, sys.stdout)
        self.comm.Abort(1)
        os._exit(1)  # not reached: MPI_Abort does not return


def _wait_until_forwarded(*streams, timeout: float = 2.0) -> None:
    """Wait until hydra's proxy has read what this rank wrote to its stdout/stderr pipes.

    MPI_Abort makes hydra kill the job at once; output still in the pipe (the line that
    says why the job ends) would be lost with it. Bounded by ``timeout``, then a short
    grace for the proxy to pass it on to mpiexec.
    """
    import fcntl
    import stat
    import struct
    import termios

    deadline = time.monotonic() + timeout
    for stream in streams:
        try:
            fd = stream.fileno()
            if not (stat.S_ISFIFO(os.fstat(fd).st_mode) or stat.S_ISSOCK(os.fstat(fd).st_mode)):
                continue
            while time.monotonic() < deadline:
                unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]
                if unread == 0:
                    break
                time.sleep(0.01)
        except (OSError, ValueError, AttributeError):  # a closed or unusual stream: nothing to wait for
            continue
    time.sleep(0.2)
