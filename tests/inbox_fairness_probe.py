"""Three MPI ranks for tests/e2e/test_cluster.py's inbox test: 0 and 1 on one node, 2 on another.

Rank 1 sends ``BURST`` small messages to rank 0 as fast as it can, faster than rank 0 reads them
(``WORK_S`` on each): a node-local worker that keeps one waiting; rank 2 sends one (a worker on another node), the way ``MODE`` says: ``inbox`` as a
worker off the coordinator's node sends (:func:`hpctune.backends.mpi.inbox.to_coordinator`), ``plain``
with its tag alone. Rank 0 waits until both have sent, then reads with an
:class:`~hpctune.backends.mpi.inbox.Inbox` (``plain``: one that knows of no other node, i.e. only
``Iprobe(ANY_SOURCE, ANY_TAG)``) and prints, as JSON, how many messages it read before rank 2's.

Usage: ``srun -N 2 -n 3 --distribution=block python inbox_fairness_probe.py MODE``
"""
from __future__ import annotations

import json
import sys
import time

from mpi4py import MPI

from hpctune.backends.mpi.inbox import Inbox, to_coordinator
from hpctune.enums import Tag

BURST = 20_000
WORK_S = 100e-6
"""Rank 0's time on each message (the coordinator's own work on a result is of this order)."""


def _work() -> None:
    until = time.perf_counter() + WORK_S
    while time.perf_counter() < until:
        pass


def main(mode: str) -> None:
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    if rank == 1:
        comm.Barrier()
        for i in range(BURST):
            comm.send(i, dest=0, tag=Tag.RESULT)
    elif rank == 2:
        comm.Barrier()
        to_coordinator(comm, 0, off_node=mode == "inbox")(Tag.SEGMENT_END, "from another node")
    else:
        inbox = Inbox(comm, off_node_workers=mode == "inbox")
        comm.Barrier()
        time.sleep(1.0)  # rank 1's burst is under way and rank 2's message has been sent
        before = 0
        while True:
            while not inbox.waiting():
                time.sleep(1e-5)
            source, tag, message = inbox.take()
            _work()
            if source == 2:
                assert (tag, message) == (Tag.SEGMENT_END, "from another node"), (tag, message)
                break
            before += 1
        for _ in range(BURST - before):  # the rest of the burst, so that every send completes
            while not inbox.waiting():
                time.sleep(1e-5)
            inbox.take()
        print(json.dumps({"mode": mode, "read_before_other_node": before, "burst": BURST}), flush=True)
    comm.Barrier()


if __name__ == "__main__":
    main(sys.argv[1])
