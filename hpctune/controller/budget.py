"""A cost budget: what the experiment's segments spent, in rank-seconds (GPU-seconds when its trials
use GPUs), across allocations, and whether more work fits in what is left (plain data: the
controller's state holds one :class:`Spending`).

A segment costs its wall time (from its placement to its end) times its ranks, times each rank's
GPUs where it has any. Running segments are counted up to now. A segment a crash cut short counts
up to the last event the journal holds (what was spent after it is not known). The controller never
starts a segment, nor lets one go on, when what is spent, what every running segment will spend on
its next iteration and its wind-down (the means so far, with :data:`HEADROOM`), and the new work
would pass the budget: the trials pause at a checkpoint and the experiment ends (docs/budget.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .state_fields import ID_TO_VALUE, saved
from .walltime import Fit, IterationTimes

__all__ = ["Spending", "units_of", "forecast", "budget_fit", "HEADROOM"]

HEADROOM = 1.1
"""What the budget's predictions (iterations, start-ups, wind-downs: their means so far) are multiplied
by: a real iteration takes a little more or less than the mean, and the budget is a cap."""


def units_of(ranks: int, gpus_per_rank: int) -> int:
    """What one second of a segment on ``ranks`` ranks costs: rank-seconds, or GPU-seconds with GPUs."""
    return ranks * gpus_per_rank if gpus_per_rank else ranks


@dataclass
class Spending:
    """Resource-seconds spent by the segments that ended, and the running ones' start and units."""

    spent_s: float = field(default=0.0, metadata=saved())  # segments that ended (or a crash cut)
    running_costs: dict[int, list] = field(  # running trial -> [counted up to, units a second]
        default_factory=dict, metadata=saved(ID_TO_VALUE, resets=True))

    def started(self, trial_id: int, now: float, units: int) -> None:
        self.running_costs[trial_id] = [now, units]

    def ended(self, trial_id: int, now: float) -> None:
        since, units = self.running_costs.pop(trial_id, (now, 0))
        self.spent_s += max(0.0, now - since) * units

    def settle(self, now: float) -> None:
        """Count the running segments up to ``now`` in :attr:`spent_s` (before a snapshot, so that a
        crash right after it loses none of that)."""
        for cost in self.running_costs.values():
            if now > cost[0]:
                self.spent_s += (now - cost[0]) * cost[1]
                cost[0] = now

    def cut(self, now: float) -> None:
        """Every open segment ends at ``now`` (the last event before a crash or an allocation's end)."""
        for trial_id in list(self.running_costs):
            self.ended(trial_id, now)

    def total(self, now: float) -> float:
        """Spent up to ``now``, running segments included."""
        return self.spent_s + sum(max(0.0, now - since) * units for since, units in self.running_costs.values())


def forecast(spending: Spending, times: IterationTimes, now: float, iterations: int, unplaced: int) -> float:
    """What will have been spent once every running segment has done ``iterations`` more iterations
    and wound down, and so has each of ``unplaced`` segments (units a second, in all) launched but not
    yet placed, after its start-up: the means so far (a trial's own iterations where it has them),
    with :data:`HEADROOM`. A placed segment with no result yet still has the rest of its start-up."""
    start_up, wind_down = times.start_up(), times.wind_down()
    ahead = unplaced * (start_up + iterations * (times.iteration() or 0.0) + wind_down)
    for trial_id, (_, units) in spending.running_costs.items():
        placed_at = times.launched_at.get(trial_id)  # there until its first result
        starting = max(0.0, placed_at + start_up - now) if placed_at is not None else 0.0
        ahead += units * (starting + iterations * (times.iteration(trial_id) or 0.0) + wind_down)
    return spending.total(now) + HEADROOM * ahead


def budget_fit(spending: Spending, budget_s: float, now: float, times: IterationTimes, unplaced: int) -> Fit:
    """Whether the running segments' next iteration (and one after it), and their wind-down, fit in
    ``budget_s`` (:func:`forecast`)."""
    if forecast(spending, times, now, 2, unplaced) <= budget_s:
        return Fit.CONTINUE
    return Fit.CHECKPOINT if forecast(spending, times, now, 1, unplaced) <= budget_s else Fit.PAUSE
