"""The workers' messages to the coordinator, read fairly across nodes.

MPICH (ch4) answers ``Iprobe(source=ANY_SOURCE)`` from shared memory first: it looks at the
network, and moves the network along, only when no message from a rank on the coordinator's own
node waits (``MPIDI_iprobe`` in ``src/mpid/ch4/src/ch4_probe.h``). So while the workers beside the
coordinator keep one message waiting (fast trials, or many workers on its node), the other nodes'
messages wait for them: on the virtual cluster, 48 ranks of no-op trials on 3 nodes, the 31 worker
ranks of the two other nodes got no trial for 20 s and more, in two runs of three (BENCHMARKS.md,
"The coordinator at cluster shape").

So a worker on another node than the coordinator's sends every message under one tag,
:attr:`~hpctune.enums.Tag.OFF_NODE`, its own tag inside (:func:`to_coordinator`), and the
coordinator's :class:`Inbox` asks for that tag first every other time: an ``ANY_SOURCE`` probe
for a tag no rank of its node sends goes past shared memory to the network. One worker's messages
all have one tag, so they keep their order.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...enums import Tag

__all__ = ["Inbox", "to_coordinator"]


def to_coordinator(comm, coordinator: int, off_node: bool) -> Callable[[Tag, Any], None]:
    """A worker's ``send(tag, payload)`` to the coordinator; ``off_node``: the worker is on
    another node than the coordinator (its messages travel under :attr:`Tag.OFF_NODE`)."""
    if off_node:
        return lambda tag, payload: comm.send((int(tag), payload), dest=coordinator, tag=Tag.OFF_NODE)
    return lambda tag, payload: comm.send(payload, dest=coordinator, tag=tag)


class Inbox:
    """The coordinator's side: whether a worker's message waits, and reading it.

    Args:
        comm: the communicator to the workers.
        off_node_workers: whether any worker is on another node (else every probe is one
            ``Iprobe(ANY_SOURCE, ANY_TAG)``, as before).
    """

    def __init__(self, comm, off_node_workers: bool):
        from mpi4py import MPI

        self.comm = comm
        self.off_node_workers = off_node_workers
        self._any_source, self._any_tag = MPI.ANY_SOURCE, MPI.ANY_TAG
        self._status = MPI.Status()
        self._off_node_first = off_node_workers

    def waiting(self) -> bool:
        """Whether a message waits (:meth:`take` reads it). With workers on other nodes, every
        other call looks for theirs first."""
        if self.off_node_workers:
            first, self._off_node_first = self._off_node_first, not self._off_node_first
            if first and self.comm.Iprobe(source=self._any_source, tag=Tag.OFF_NODE, status=self._status):
                return True
        return self.comm.Iprobe(source=self._any_source, tag=self._any_tag, status=self._status)

    def take(self) -> tuple[int, int, Any]:
        """The message :meth:`waiting` found: ``(source rank, tag, payload)``, the worker's own tag
        and payload for a message from another node."""
        source, tag = self._status.Get_source(), self._status.Get_tag()
        message = self.comm.recv(source=source, tag=tag)
        if tag == Tag.OFF_NODE:
            tag, message = message
        return source, tag, message
