"""Walltime-aware scheduling: how long iterations and segment start-ups take, and what fits before
the end of an allocation (plain data: the controller holds one :class:`IterationTimes`)."""
from __future__ import annotations

from enum import Enum

__all__ = ["IterationTimes", "Fit", "next_iteration_fits", "segment_fits"]


class IterationTimes:
    """Mean ``time_this_iter_s`` of each trial and of all of them, and the mean start-up of a
    segment (from its placement to its first result, less that result's iteration).

    The experiment-wide means are kept across allocations (:meth:`state_dict`); a trial's own
    mean is rebuilt from its results in each allocation.
    """

    def __init__(self):
        self._per_trial: dict[int, tuple[float, int]] = {}  # trial id -> (mean, count)
        self._all = [0.0, 0]                                # sum, count
        self._start = [0.0, 0]                              # sum, count
        self._launched_at: dict[int, float] = {}

    def launched(self, trial_id: int, now: float) -> None:
        self._launched_at[trial_id] = now

    def ended(self, trial_id: int) -> None:
        self._launched_at.pop(trial_id, None)

    def result(self, trial_id: int, row: dict, now: float) -> None:
        seconds = row.get("time_this_iter_s")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            return
        mean, count = self._per_trial.get(trial_id, (0.0, 0))
        self._per_trial[trial_id] = (mean + (seconds - mean) / (count + 1), count + 1)
        self._all[0] += seconds
        self._all[1] += 1
        launched = self._launched_at.pop(trial_id, None)
        if launched is not None:  # the segment's first result: what starting it cost
            self._start[0] += max(0.0, now - launched - seconds)
            self._start[1] += 1

    def iteration(self, trial_id: int | None = None) -> float | None:
        """Seconds the trial's next iteration should take (its mean, else the experiment's; None: no data)."""
        if trial_id in self._per_trial:
            return self._per_trial[trial_id][0]
        total, count = self._all
        return total / count if count else None

    def start_up(self) -> float:
        """Seconds from placing a segment to the start of its first iteration (0 before any)."""
        total, count = self._start
        return total / count if count else 0.0

    def state_dict(self) -> dict:
        return {"iteration_seconds": list(self._all), "start_seconds": list(self._start)}

    def load_state_dict(self, state: dict) -> None:
        self._all = list(state.get("iteration_seconds", (0.0, 0)))
        self._start = list(state.get("start_seconds", (0.0, 0)))

    def clear_segments(self) -> None:
        """The segments of an old allocation are gone (resume)."""
        self._launched_at.clear()


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
