"""Which ranks run which trial: the backend's side of the controller/backend split.

The controller only counts free ranks and emits :class:`~hpctune.controller.core.Launch`
requests; a :class:`RankPool` turns each into concrete ranks. Plain Python (no
MPI), so the MPI backend, the in-process backend and a simulator of virtual
workers share it.
"""
from __future__ import annotations

from collections import deque

__all__ = ["RankPool"]


class RankPool:
    """Idle and busy worker ranks, and the node each is on.

    Ranks are handed out in the order they became idle (first joined, first freed),
    so that work spreads over the ranks as they come free. A request for ``k``
    ranks takes them from one node when one node has ``k`` idle, else the longest
    idle ones wherever they are.
    """

    def __init__(self):
        self._idle: deque[int] = deque()
        self._host: dict[int, str] = {}
        self.gpus: dict[int, list[str]] = {}          # rank -> the devices its trials see (the backend binds them)
        self._trial_ranks: dict[int, list[int]] = {}   # trial id -> its ranks, leader first
        self.running: dict[int, int] = {}              # rank -> the trial it runs

    def join(self, rank: int, host: str = "", gpus: list[str] | None = None) -> None:
        """``rank`` (on node ``host``, with devices ``gpus``) made first contact and can take work."""
        self._host[rank] = host
        if gpus is not None:
            self.gpus[rank] = gpus
        self._idle.append(rank)

    @property
    def num_idle(self) -> int:
        return len(self._idle)

    def place(self, trial_id: int, count: int) -> list[int]:
        """Take ``count`` idle ranks for ``trial_id``; the first leads the trial.

        Raises:
            RuntimeError: fewer than ``count`` ranks are idle (the controller asked for more than it was given).
        """
        if count > len(self._idle):
            raise RuntimeError(f"trial {trial_id} needs {count} ranks but only {len(self._idle)} are idle")
        ranks = self._one_node(count) if count > 1 else None
        if ranks is None:
            ranks = [self._idle.popleft() for _ in range(count)]
        else:
            for rank in ranks:
                self._idle.remove(rank)
        self._trial_ranks[trial_id] = ranks
        for rank in ranks:
            self.running[rank] = trial_id
        return ranks

    def ranks_of(self, trial_id: int) -> list[int]:
        """The ranks running ``trial_id`` (empty if it runs nowhere)."""
        return self._trial_ranks.get(trial_id, [])

    def reorder(self, trial_id: int, ranks: list[int]) -> None:
        """``trial_id``'s ranks (the same ones) in the order its communicator gives them; the leader stays first."""
        assert sorted(ranks) == sorted(self._trial_ranks[trial_id]) and ranks[0] == self._trial_ranks[trial_id][0]
        self._trial_ranks[trial_id] = list(ranks)

    def leaders(self) -> dict[int, int]:
        """Rank -> trial, for the rank that leads each running trial."""
        return {ranks[0]: trial_id for trial_id, ranks in self._trial_ranks.items()}

    def release(self, trial_id: int) -> list[int]:
        """``trial_id``'s segment ended: its ranks are idle again (in their order); returns them."""
        ranks = self._trial_ranks.pop(trial_id, [])
        for rank in ranks:
            self.running.pop(rank, None)
            self._idle.append(rank)
        return ranks

    def _one_node(self, count: int) -> list[int] | None:
        """The ``count`` longest-idle ranks of the first node (in idle order) that has that many idle."""
        by_host: dict[str, list[int]] = {}
        for rank in self._idle:
            members = by_host.setdefault(self._host[rank], [])
            members.append(rank)
            if len(members) == count:
                return members
        return None
