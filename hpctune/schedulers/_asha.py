"""Asynchronous successive halving (ASHA, Li et al. 2018), promotion-based, with optional brackets.

A trial reaching a rung milestone pauses there. Whenever a worker is free the
rungs are looked at from the top down for a paused config in the top ``1/η`` of
its rung that was not promoted from that rung yet; it resumes from its
checkpoint towards the next rung. If there is none, a new config starts in the
bottom rung. From rung ``k`` at most ``floor(n_k / η)`` configs are ever
promoted (``n_k``: results recorded in rung ``k`` so far), each at most once.

``brackets > 1`` is asynchronous HyperBand: bracket ``s`` has its first rung at
``grace_period · η^s``; new trials go to the brackets round-robin (deterministic,
equal shares, no state beyond a counter). ``stop_variant`` is the stopping form
(no pausing): at each milestone a trial continues if it is within the top
``ceil(n/η)`` results recorded in that rung so far (ties at the cutoff continue),
else it stops. A NaN, inf or missing metric is the worst value and is never
promoted. Failed trials are not recorded in the rungs (they would free
promotion slots for others).

Cost per result: one insert into the rung's :class:`~._sorted.SortedKeys` and one
``heapq.heappush`` (O(log n); no O(n) list shifting), plus one rank query
(O(log n)) in the stopping form.
Per free worker: O(1) per rung for the quota check, plus O(log n) heap pops
(amortised: each config leaves a rung's heap once; configs whose pause is
still in flight, at most one per worker, are put back).
"""
from __future__ import annotations

import heapq
import math
from collections import deque

from ..enums import Decision, TrialState
from ..errors import SpecError
from ._base import SCHEDULERS, Scheduler
from ._rungs import (check_number, check_time_attr, decode, encode, format_level, negate, rung_milestones,
                   time_value)
from ._sorted import SortedKeys

__all__ = ["AsyncSuccessiveHalving"]


class _Rung:
    """Recorded results of one rung: all of them sorted, and a heap of the promotable ones."""

    def __init__(self, milestone):
        self.milestone = milestone
        self.ranked = SortedKeys()      # (negated score, trial_id), ascending: best first
        self.heap: list[list] = []      # not promoted yet, finite score; best on top
        self.promoted = 0


@SCHEDULERS.register
class AsyncSuccessiveHalving(Scheduler):
    """ASHA: successive halving without synchronisation; workers never wait for a rung.

    Args:
        grace_period: resource (``time_attr`` value) of the first rung.
        max_t: the largest resource; a trial reaching it stops as complete.
        reduction_factor: η; the top ``1/η`` of a rung are promoted.
        brackets: number of asynchronous HyperBand brackets (1: plain ASHA).
        time_attr: the reported, monotone value that measures resource.
        stop_variant: continue-or-stop at each milestone instead of pause-and-promote.
    """

    name = "asha"

    def __init__(self, *, grace_period: float = 1, max_t: float = 100, reduction_factor: int = 3,
                 brackets: int = 1, time_attr: str = "training_iteration", stop_variant: bool = False):
        check_number("grace_period", grace_period, 1)
        check_number("max_t", max_t, grace_period)
        check_number("reduction_factor", reduction_factor, 2, integer=True)
        check_number("brackets", brackets, 1, integer=True)
        check_time_attr(time_attr)
        if not isinstance(stop_variant, bool):
            raise SpecError("stop_variant", f"expected true or false, got {stop_variant!r}")
        self.eta = reduction_factor
        self.time_attr = time_attr
        self.stop_variant = stop_variant
        self.milestones = [rung_milestones(grace_period * reduction_factor ** s, reduction_factor, max_t)
                           for s in range(brackets)]
        self._levels = sorted({m for ms in self.milestones for m in ms})
        self._level_index = {m: i for i, m in enumerate(self._levels)}
        # promotion candidates are looked for top down: highest milestone first, over all brackets
        self._scan = sorted(((b, k) for b, ms in enumerate(self.milestones) for k in range(len(ms) - 1)),
                            key=lambda bk: (-self.milestones[bk[0]][bk[1]], bk[0]))
        self._reset()

    def _reset(self) -> None:
        self._rungs = [[_Rung(m) for m in ms] for ms in self.milestones]
        self._where: dict[int, list] = {}     # trial_id -> [bracket, rung, waiting]
        self._finished: set[int] = set()
        self._pending: deque[int] = deque()
        self._added = 0
        self._level_counts = [0] * len(self._levels)

    def rung_levels(self) -> list:
        """The rung milestones (values of ``time_attr``) of all brackets, ascending."""
        return list(self._levels)

    def describe_progress(self) -> str:
        return "rungs " + " ".join(f"{format_level(v)}:{n}" for v, n in zip(self._levels, self._level_counts))

    def rung_stats(self) -> list[list[dict]]:
        """Per bracket, per rung: ``milestone``, ``recorded`` (n_k) and ``promoted`` (or continued)."""
        return [[{"milestone": r.milestone, "recorded": len(r.ranked), "promoted": r.promoted} for r in rungs]
                for rungs in self._rungs]

    # -- events -------------------------------------------------------------------
    def on_trial_add(self, trial):
        self._where[trial.trial_id] = [self._added % len(self.milestones), 0, False]
        self._added += 1
        self._pending.append(trial.trial_id)

    def on_trial_result(self, trial, result):
        where = self._where.get(trial.trial_id)
        if where is None or trial.trial_id in self._finished:
            return Decision.CONTINUE if where is None else Decision.STOP
        bracket, level, waiting = where
        if waiting:
            return Decision.PAUSE
        rung = self._rungs[bracket][level]
        if time_value(result, self.time_attr) < rung.milestone:
            return Decision.CONTINUE
        score = self.score(result)
        key = negate(score)
        self._record(rung, key, trial.trial_id)
        if level == len(self._rungs[bracket]) - 1:
            self._finished.add(trial.trial_id)
            return Decision.STOP
        if self.stop_variant:
            better = rung.ranked.bisect_left((key,))   # strictly better scores only
            if score > -math.inf and better < math.ceil(len(rung.ranked) / self.eta):
                rung.promoted += 1
                where[1] += 1
                return Decision.CONTINUE
            self._finished.add(trial.trial_id)
            return Decision.STOP
        where[2] = True
        if score > -math.inf:
            heapq.heappush(rung.heap, [key, trial.trial_id])
        return Decision.PAUSE

    def on_trial_complete(self, trial, result):
        where = self._where.get(trial.trial_id)
        if where is None or trial.trial_id in self._finished:
            return
        self._finished.add(trial.trial_id)
        bracket, level, waiting = where
        rung = self._rungs[bracket][level]
        value = result.get(self.time_attr)
        if not waiting and isinstance(value, (int, float)) and value >= rung.milestone:
            self._record(rung, negate(self.score(result)), trial.trial_id)   # a real data point

    def on_trial_error(self, trial):
        self._finished.add(trial.trial_id)

    def choose_trial_to_run(self, trials):
        if not self.stop_variant:
            for bracket, level in self._scan:
                trial = self._promotable(self._rungs[bracket][level], trials)
                if trial is not None:
                    self._where[trial.trial_id][1:] = [level + 1, False]
                    return trial
        while self._pending:
            trial = trials.get(self._pending[0])
            if trial is not None and trial.state == TrialState.PENDING:
                return trial
            self._pending.popleft()
        return None

    # -- internals ------------------------------------------------------------------
    def _record(self, rung: _Rung, key: float, trial_id: int) -> None:
        rung.ranked.add((key, trial_id))
        self._level_counts[self._level_index[rung.milestone]] += 1

    def _promotable(self, rung: _Rung, trials):
        """The best paused config of ``rung`` within its top ``floor(n/η)``, if the quota allows one more."""
        quota = len(rung.ranked) // self.eta
        if rung.promoted >= quota:
            return None
        in_flight, found = [], None
        while rung.heap:
            entry = rung.heap[0]
            trial = trials.get(entry[1])
            if entry[1] in self._finished or trial is None:
                heapq.heappop(rung.heap)          # never promotable again
            elif not self.is_runnable(trial):
                in_flight.append(heapq.heappop(rung.heap))   # its pause has not come through yet
            else:
                if rung.ranked.bisect_left((entry[0], entry[1])) < quota:
                    heapq.heappop(rung.heap)
                    rung.promoted += 1
                    found = trial
                break
        for entry in in_flight:
            heapq.heappush(rung.heap, entry)
        return found

    # -- state ------------------------------------------------------------------------
    def state_dict(self):
        rungs = [[{"ranked": [[encode(k), t] for k, t in r.ranked], "heap": r.heap, "promoted": r.promoted}
                  for r in bracket] for bracket in self._rungs]
        return {"rungs": rungs, "where": [[t, *w] for t, w in self._where.items()],
                "finished": sorted(self._finished), "pending": list(self._pending), "added": self._added,
                "level_counts": list(self._level_counts)}

    def load_state_dict(self, state):
        self._reset()
        for rungs, saved in zip(self._rungs, state["rungs"]):
            for rung, data in zip(rungs, saved):
                rung.ranked = SortedKeys((decode(k), t) for k, t in data["ranked"])
                rung.heap = [list(e) for e in data["heap"]]
                rung.promoted = data["promoted"]
        self._where = {row[0]: list(row[1:]) for row in state["where"]}
        self._finished = set(state["finished"])
        self._pending = deque(state["pending"])
        self._added = state["added"]
        self._level_counts = list(state["level_counts"])
