"""The median stopping rule (Golovin et al., 2017, "Google Vizier").

A trial is stopped at step ``t`` (a value of ``time_attr``) if its best result so
far is worse than the median of the running averages that the other trials
had at the same step ``t`` (each one's mean of its results up to ``t``). No
stopping before ``grace_period``, nor while fewer than ``min_samples_required``
other trials have reached step ``t``. Trials never pause.

Data kept: per trial its running sum, count and best score; per step the
running averages recorded there, split in two heaps (:class:`_MedianHeaps`: a
max-heap of the lower half and a min-heap of the upper half). A result costs
O(log n) (two or three heap operations, no list shifting) and the median is
read off the two heap tops in O(1). Steps
are matched by value, so ``time_attr`` should take the same values in every
trial (``training_iteration``, epochs), not wall time.
"""
from __future__ import annotations

import heapq
from collections import deque

from ..enums import Decision
from ._base import SCHEDULERS, Scheduler
from ._rungs import check_number, check_time_attr, time_value

__all__ = ["MedianStopping"]


class _MedianHeaps:
    """A multiset of floats with O(log n) insert and O(1) median.

    ``lower`` is a max-heap (stored negated) of the ``ceil(n/2)`` smallest values,
    ``upper`` a min-heap of the others. The median is the same value a sorted
    list gives: its middle item for odd ``n``, the mean of the two middle ones
    for even ``n``.
    """

    __slots__ = ("lower", "upper")

    def __init__(self):
        self.lower: list[float] = []   # negated: -lower[0] is the largest of the lower half
        self.upper: list[float] = []

    def __len__(self) -> int:
        return len(self.lower) + len(self.upper)

    def add(self, value: float) -> None:
        lower, upper = self.lower, self.upper
        if not lower or value <= -lower[0]:
            heapq.heappush(lower, -value)
            if len(lower) > len(upper) + 1:
                heapq.heappush(upper, -heapq.heappop(lower))
        else:
            heapq.heappush(upper, value)
            if len(upper) > len(lower):
                heapq.heappush(lower, -heapq.heappop(upper))

    def median(self) -> float:
        if len(self.lower) > len(self.upper):
            return -self.lower[0]
        return (-self.lower[0] + self.upper[0]) / 2

    def state(self) -> list:
        """``[lower, upper]``: both heaps in heap order, values not negated, -inf as None."""
        return [[_enc(-v) for v in self.lower], [_enc(v) for v in self.upper]]

    @classmethod
    def from_state(cls, lower: list, upper: list) -> "_MedianHeaps":
        heaps = cls()
        heaps.lower = [-_dec(v) for v in lower]
        heaps.upper = [_dec(v) for v in upper]
        return heaps

    @classmethod
    def from_sorted(cls, values: list) -> "_MedianHeaps":
        """From the ascending list of values (the earlier state format)."""
        heaps = cls()
        half = (len(values) + 1) // 2
        heaps.lower = [-v for v in reversed(values[:half])]   # descending values, negated: a valid heap
        heaps.upper = list(values[half:])                     # ascending: a valid heap
        return heaps


def _enc(value: float):
    return None if value == -float("inf") else value


def _dec(value) -> float:
    return -float("inf") if value is None else value


@SCHEDULERS.register
class MedianStopping(Scheduler):
    """Stop trials whose best result is worse than the median of the others' running averages.

    Larger is better internally (``mode`` is applied by :meth:`score`); a NaN,
    inf or missing metric is the worst value.

    Args:
        grace_period: no stopping before this ``time_attr`` value.
        min_samples_required: other trials needed at a step before it can stop anyone.
        time_attr: the reported value that identifies a step.
    """

    name = "median"

    def __init__(self, *, grace_period: float = 1, min_samples_required: int = 3,
                 time_attr: str = "training_iteration"):
        check_number("grace_period", grace_period, 0)
        check_number("min_samples_required", min_samples_required, 1, integer=True)
        check_time_attr(time_attr)
        self.grace_period = grace_period
        self.min_samples_required = min_samples_required
        self.time_attr = time_attr
        self._running: dict[int, list] = {}     # trial_id -> [sum, count, best, last step]
        self._steps: dict[float, _MedianHeaps] = {}   # step -> running averages of the trials there
        self._queue: deque[int] = deque()

    def on_trial_add(self, trial):
        self._queue.append(trial.trial_id)

    def on_trial_result(self, trial, result):
        step = time_value(result, self.time_attr)
        score = self.score(result)
        running = self._running.setdefault(trial.trial_id, [0.0, 0, -float("inf"), None])
        if running[3] is not None and step <= running[3]:
            return Decision.CONTINUE      # the same step again: already counted
        running[0] += score
        running[1] += 1
        running[2] = max(running[2], score)
        running[3] = step
        others = self._steps.get(step)
        if others is None:
            others = self._steps[step] = _MedianHeaps()
        decision = Decision.CONTINUE
        if step >= self.grace_period and len(others) >= self.min_samples_required:
            if running[2] < others.median():
                decision = Decision.STOP
        others.add(running[0] / running[1])   # after the decision: "others" excludes this trial
        return decision

    def choose_trial_to_run(self, trials):
        return self.first_pending(self._queue, trials)

    def median_at(self, step) -> float | None:
        """The median running average recorded at ``step`` (None if none), in score units (larger is better)."""
        values = self._steps.get(step)
        return values.median() if values else None

    def state_dict(self):
        return {"running": [[t, _enc(s), n, _enc(b), last] for t, (s, n, b, last) in self._running.items()],
                "steps": [[step, *values.state()] for step, values in self._steps.items()],
                "queue": list(self._queue)}

    def load_state_dict(self, state):
        self._running = {t: [_dec(s), n, _dec(b), last] for t, s, n, b, last in state["running"]}
        # [step, lower heap, upper heap]; the earlier format was [step, ascending values]
        self._steps = {row[0]: _MedianHeaps.from_state(row[1], row[2]) if len(row) == 3
                       else _MedianHeaps.from_sorted([_dec(v) for v in row[1]]) for row in state["steps"]}
        self._queue = deque(state["queue"])
