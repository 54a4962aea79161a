"""Polling without spinning: what the coordinator's and the workers' loops wait with.

MPICH's blocking receives spin, which would starve the trials of an oversubscribed node; so both
sides poll with ``Iprobe`` and back off while nothing arrives (the manner of ``mpi4py.futures``).
"""
from __future__ import annotations

import time

__all__ = ["Backoff", "receive"]


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


def receive(comm, source: int, tag: int, status, backoff: Backoff):
    """Receive the next message from ``source`` without spinning the CPU."""
    backoff.reset()
    while not comm.Iprobe(source=source, tag=tag, status=status):
        backoff.wait()
    return comm.recv(source=status.Get_source(), tag=status.Get_tag())
