"""Walltime-aware scheduling: how long iterations and segment start-ups take, and what fits before
the end of an allocation (plain data: the controller's state holds one :class:`IterationTimes`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .state_fields import AS_LIST, per_allocation, saved

__all__ = ["IterationTimes", "Fit", "next_iteration_fits", "segment_fits"]


@dataclass
class IterationTimes:
    """Mean ``time_this_iter_s`` of each trial and of all of them, the mean start-up of a segment
    (from its placement to its first result, less that result's iteration), and its mean wind-down
    (from its last result to its end: the checkpoint written, the process gone).

    The experiment-wide means are kept across allocations (saved in snapshots); a trial's own
    mean is rebuilt from its results in each allocation (the journal's, replayed, and the new ones).
    """

    iteration_seconds: list = field(default_factory=lambda: [0.0, 0], metadata=saved(AS_LIST))  # sum, count
    start_seconds: list = field(default_factory=lambda: [0.0, 0], metadata=saved(AS_LIST))      # sum, count
    end_seconds: list = field(default_factory=lambda: [0.0, 0], metadata=saved(AS_LIST))        # sum, count
    per_trial: dict[int, tuple[float, int]] = field(default_factory=dict)  # trial id -> (mean, count)
    launched_at: dict[int, float] = field(default_factory=dict, metadata=per_allocation())
    last_result_at: dict[int, float] = field(default_factory=dict, metadata=per_allocation())  # running segments'

    def launched(self, trial_id: int, now: float) -> None:
        self.launched_at[trial_id] = now

    def ended(self, trial_id: int, now: float) -> None:
        self.launched_at.pop(trial_id, None)
        last = self.last_result_at.pop(trial_id, None)
        if last is not None:
            self.end_seconds[0] += max(0.0, now - last)
            self.end_seconds[1] += 1

    def result(self, trial_id: int, row: dict, now: float) -> None:
        self.last_result_at[trial_id] = now
        seconds = row.get("time_this_iter_s")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            return
        mean, count = self.per_trial.get(trial_id, (0.0, 0))
        self.per_trial[trial_id] = (mean + (seconds - mean) / (count + 1), count + 1)
        self.iteration_seconds[0] += seconds
        self.iteration_seconds[1] += 1
        launched = self.launched_at.pop(trial_id, None)
        if launched is not None:  # the segment's first result: what starting it cost
            self.start_seconds[0] += max(0.0, now - launched - seconds)
            self.start_seconds[1] += 1

    def iteration(self, trial_id: int | None = None) -> float | None:
        """Seconds the trial's next iteration should take (its mean, else the experiment's; None: no data)."""
        if trial_id is not None and trial_id in self.per_trial:
            return self.per_trial[trial_id][0]
        total, count = self.iteration_seconds
        return total / count if count else None

    def start_up(self) -> float:
        """Seconds from placing a segment to the start of its first iteration (0 before any)."""
        total, count = self.start_seconds
        return total / count if count else 0.0

    def wind_down(self) -> float:
        """Seconds from a segment's last result to its end (0 before any)."""
        total, count = self.end_seconds
        return total / count if count else 0.0


class Fit(Enum):
    """What a trial's next iteration may do before the deadline."""

    CONTINUE = "continue"      # room for at least two more
    CHECKPOINT = "checkpoint"  # one more fits: it should end with a checkpoint
    PAUSE = "pause"            # it would end too late: pause at this result


def next_iteration_fits(deadline: float, now: float, iteration: float | None, window: float | None = None) -> Fit:
    """Whether an iteration of ``iteration`` seconds started ``now`` (and one after it) ends by
    ``deadline``. One longer than a whole allocation's ``window`` fits in none: it goes on (pausing
    it would only repeat it), and the allocation's stop point ends it as it can."""
    left = deadline - now
    if iteration is None or left >= 2 * iteration or (window is not None and iteration > window):
        return Fit.CONTINUE
    return Fit.CHECKPOINT if left >= iteration else Fit.PAUSE


def segment_fits(deadline: float, now: float, start_up: float, iteration: float | None,
                 window: float | None = None) -> bool:
    """Whether a segment started ``now`` reaches its first result by ``deadline`` (or could not in
    any allocation of ``window`` usable seconds, and so is not held back: waiting would not help)."""
    if iteration is None:
        return now < deadline
    if window is not None and start_up + iteration > window:
        return now < deadline
    return now + start_up + iteration <= deadline
