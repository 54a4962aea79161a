"""Synchronous HyperBand (Li et al., 2017): successive halving over brackets of different aggressiveness.

With ``s_max = floor(log_η(max_t))``, bracket ``s`` starts
``n = ceil((s_max + 1) / (s + 1) · η^s)`` configs at resource ``r = max_t · η^-s``
and runs synchronous successive halving over ``s + 1`` rungs (``floor(n_i / η)``
configs continue with ``η`` times the resource, up to ``max_t``). New trials fill
the brackets in the order ``s_max, ..., 0``, then another round starts. Trials
pause at rung boundaries and the survivors resume from their checkpoints.

Cost: as for :mod:`._sha`, O(log n) per result plus amortised O(1) per rung completion.
"""
from __future__ import annotations

from ._base import SCHEDULERS
from ._rungs import Bracket, check_number, check_time_attr
from ._sha import SynchronousHalving

__all__ = ["HyperBand"]


@SCHEDULERS.register
class HyperBand(SynchronousHalving):
    """Synchronous HyperBand with pause and resume at rung boundaries.

    A bracket's rung is complete when all its trials have reported at the
    milestone (or failed); a bracket left partly filled when the search ends
    is closed then. :meth:`bracket_table` gives the plan as data.

    Args:
        max_t: the largest resource (``time_attr`` value) any trial gets.
        reduction_factor: η; each rung keeps the top ``1/η``.
        time_attr: the reported, monotone value that measures resource.
    """

    name = "hyperband"

    def __init__(self, *, max_t: float = 81, reduction_factor: int = 3, time_attr: str = "training_iteration"):
        check_number("max_t", max_t, 1)
        check_number("reduction_factor", reduction_factor, 2, integer=True)
        check_time_attr(time_attr)
        self.max_t = max_t
        self.eta = reduction_factor
        self.s_max = 0
        while reduction_factor ** (self.s_max + 1) <= max_t:   # integer powers: no log rounding
            self.s_max += 1
        self._init_halving(reduction_factor, time_attr,
                           [r for row in self.bracket_table() for _, r in row["rungs"]])

    def _bracket_plan(self, s: int) -> tuple[int, list]:
        """``(n, milestones)`` of bracket ``s``."""
        eta = self.eta
        n = -(-((self.s_max + 1) * eta ** s) // (s + 1))
        milestones = []
        for i in range(s + 1):
            r = self.max_t * eta ** i / eta ** s
            milestones.append(int(r) if float(r).is_integer() else r)
        return n, milestones

    def bracket_table(self) -> list[dict]:
        """The plan: ``[{"s": s, "rungs": [[n_i, r_i], ...]}, ...]`` for ``s = s_max .. 0``."""
        table = []
        for s in range(self.s_max, -1, -1):
            n, milestones = self._bracket_plan(s)
            table.append({"s": s, "rungs": [[n // self.eta ** i, r] for i, r in enumerate(milestones)]})
        return table

    def _new_bracket(self) -> Bracket:
        s = self.s_max - len(self._brackets) % (self.s_max + 1)
        n, milestones = self._bracket_plan(s)
        return Bracket(milestones, self.eta, capacity=n)
