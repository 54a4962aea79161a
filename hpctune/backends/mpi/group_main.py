"""The processes of a multi-rank trial: ``mpiexec -n k python -m hpctune.backends.mpi.group_main ADDRESS HOST...``.

Started by the leading worker for one segment (:mod:`~hpctune.backends.mpi.trial_group`), with the
host of each of the trial's members in order. Each process first finds which member it is, by
the host it runs on (:func:`member_assignment`): launchers do not keep the order of ``-hosts``
(under Slurm, ``srun`` places its tasks in the allocation's node order, so COMM_WORLD's rank 0
may run on the second member's node). The trial's communicator is COMM_WORLD reordered so its
rank r is member r. Rank 0, on the leading worker's node, connects to ADDRESS, gets the segment's
task and passes it on; every rank then binds its member's GPUs, sets the variables
``torch.distributed`` reads (``MASTER_ADDR`` = member 0's host, ``MASTER_PORT``, ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) and runs the trainable with
``hpctune.get_comm()`` = that communicator. Rank 0's results go to the worker; at each
``report`` the other ranks wait for the decision rank 0 got, so all of them continue, pause or
stop together. hpctune's own messages travel on a duplicate of COMM_WORLD, never mixed with the
trainable's.

A rank that fails writes why (:func:`~hpctune.backends.mpi.trial_group.member_error_path`) and
ends the job with ``MPI_Abort``: the other ranks may be waiting for it in a collective.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from multiprocessing.connection import Connection

from ...enums import SegmentEnd
from .trial_group import member_error_path
from .trial_process import COORDINATOR_SIGNALS, PipeChannel

__all__ = ["main", "member_assignment", "torch_environment"]

_TASK, _DECISION = 1, 2
"""Tags of hpctune's messages from rank 0 to the others."""


def _wait_for(comm, tag: int):
    """Receive rank 0's next message with ``tag``, sleeping between polls (a blocking receive spins a core)."""
    delay = 1e-4
    while not comm.Iprobe(source=0, tag=tag):
        time.sleep(delay)
        delay = min(delay * 2, 0.01)
    return comm.recv(source=0, tag=tag)


def _tell_the_others(comm, message, tag: int) -> None:
    for rank in range(1, comm.Get_size()):
        comm.send(message, dest=rank, tag=tag)


class _LeaderChannel(PipeChannel):
    """Rank 0: results to the worker, and each decision (with control messages) on to the others."""

    def __init__(self, conn: Connection, comm):
        super().__init__(conn)
        self.comm = comm

    def send_result(self, row, checkpoint):
        decision, controls = super().send_result(row, checkpoint)
        _tell_the_others(self.comm, (decision, controls), _DECISION)
        return decision, controls


class _MemberChannel:
    """Ranks 1..k-1: a result is dropped; the decision is rank 0's, with the control messages it got."""

    def __init__(self, comm):
        self.comm = comm

    def send_result(self, row, checkpoint):
        return _wait_for(self.comm, _DECISION)

    def poll_controls(self) -> list:
        return []  # they arrive with the next decision


def torch_environment(members: list[dict], group_rank: int, port: int) -> dict[str, str]:
    """The variables ``torch.distributed.init_process_group`` reads (``env://``) for rank ``group_rank``."""
    host = members[group_rank]["host"]
    same_host = [index for index, member in enumerate(members) if member["host"] == host]
    return {"MASTER_ADDR": members[0]["host"], "MASTER_PORT": str(port), "WORLD_SIZE": str(len(members)),
            "RANK": str(group_rank), "LOCAL_RANK": str(same_host.index(group_rank)),
            "LOCAL_WORLD_SIZE": str(len(same_host))}


def member_assignment(rank_hosts: list[str], member_hosts: list[str]) -> list[int]:
    """Which member each process of the group is: ``result[r]`` for the process of COMM_WORLD rank r.

    Each process takes the first member not yet taken on the host it runs on (``rank_hosts[r]``),
    so the members of a host are taken in their order by the host's processes in rank order. A
    process whose host names no member left (a launcher that placed it elsewhere) takes the first
    members left, in order.
    """
    taken = [False] * len(member_hosts)
    assignment: list[int | None] = [None] * len(rank_hosts)
    for rank, host in enumerate(rank_hosts):
        index = next((i for i, member in enumerate(member_hosts) if member == host and not taken[i]), None)
        if index is not None:
            taken[index] = True
            assignment[rank] = index
    left = iter(i for i, was_taken in enumerate(taken) if not was_taken)
    return [index if index is not None else next(left) for index in assignment]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def main(address: str, member_hosts: list[str]) -> None:
    for signum in COORDINATOR_SIGNALS:  # the coordinator decides how to stop, and when to checkpoint
        signal.signal(signum, signal.SIG_IGN)
    from mpi4py import MPI

    launched = MPI.COMM_WORLD
    member = member_assignment(launched.allgather(socket.gethostname()), member_hosts)[launched.Get_rank()]
    world = launched.Split(0, member)  # rank r is member r: rank 0 on the leading worker's node
    comm = world.Dup()  # hpctune's messages, apart from the trainable's own
    group_rank = world.Get_rank()
    conn = None
    if group_rank == 0:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(address)
        conn = Connection(client.detach())
        task, port = conn.recv(), _free_port()
        _tell_the_others(comm, (task, port), _TASK)
    else:
        task, port = _wait_for(comm, _TASK)
    try:
        how, error = _run(task, port, group_rank, conn, comm, world)
        sys.stdout.flush()
        sys.stderr.flush()
        if conn is not None:
            conn.send(("end", how, error))
    except BaseException:  # the worker is gone (its connection broke), or hpctune's own failure
        traceback.print_exc()
        how, error = SegmentEnd.ERROR, traceback.format_exc()
    if how in (SegmentEnd.ERROR, SegmentEnd.STORAGE_FULL):
        if group_rank != 0:
            member_error_path(task.trial_dir, group_rank).write_text(error or "")
        sys.stderr.flush()
        comm.Abort(1)  # the other ranks may wait for this one in a collective: end them all


def _run(task, port: int, group_rank: int, conn, comm, world):
    from ...session import run_segment
    from ...trainable import resolve_trainable
    from ..gpus import bind_devices

    member = task.group[group_rank]
    os.environ.update(torch_environment(task.group, group_rank, port))
    bind_devices(member["gpus"])  # before the trainable's module loads (and before its first CUDA call)
    try:
        trainable = resolve_trainable(task.trainable, task.python_path)
    except Exception as exc:
        return SegmentEnd.ERROR, f"cannot load trainable {task.trainable!r}: {exc}"
    channel = _LeaderChannel(conn, comm) if group_rank == 0 else _MemberChannel(comm)
    return run_segment(trainable, task, channel, rank=member["rank"], hostname=socket.gethostname(), comm=world)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
