"""The experiment folder of a simulation: the ordinary layout, without a journal or checkpoint files.

A simulation is deterministic and runs again in seconds, so nothing is journaled: the
history rows are collected in memory and written as part files at every snapshot (timed by
the virtual clock) and at the end, which makes an ordinary experiment folder that
``hpctune analyze``, ``hpctune plot`` and :class:`hpctune.Analysis` read. Checkpoints are
names only (a virtual trial has no state to save): copying one (PBT's exploit) gives the
new name, deleting one does nothing.
"""
from __future__ import annotations

from ...store.base import NamedCheckpoints
from ...store.experiment import ExperimentStore

__all__ = ["SimulatedStore", "NullJournal"]


class NullJournal:
    """A journal that numbers records and writes none (see :class:`hpctune.store.journal.Journal`)."""

    def __init__(self, next_seq: int):
        self.seq = next_seq - 1

    @property
    def durable_seq(self) -> int:
        return self.seq

    def append(self, record: dict) -> int:
        self.seq += 1
        return self.seq

    def flush(self) -> None:
        pass

    def rotate(self, covered_seq: int) -> None:
        pass

    def close(self) -> None:
        pass


SNAPSHOT_INTERVAL_S = 3600.0
"""Virtual seconds between a simulation's snapshots (``HPCTUNE_SNAPSHOT_INTERVAL`` sets another)."""


class SimulatedStore(NamedCheckpoints, ExperimentStore):
    """An :class:`ExperimentStore` for the ``sim`` backend (same arguments; ``clock`` is the virtual
    one, and ``snapshot_interval`` counts virtual seconds, default :data:`SNAPSHOT_INTERVAL_S`: a
    snapshot holds every trial, and a simulation goes through hours in seconds)."""

    def __init__(self, *args, snapshot_interval: float = SNAPSHOT_INTERVAL_S, **kwargs):
        super().__init__(*args, snapshot_interval=snapshot_interval, **kwargs)

    def _open_journal(self, next_seq: int, fsync_interval: float) -> NullJournal:
        return NullJournal(next_seq)

    def record(self, kind, **fields) -> None:
        fields["k"] = kind.key
        self.journal.seq += 1
        self.history.apply(kind, fields)
