"""Synchronous successive halving (SHA), and the synchronous base HyperBand shares.

All configs start in the base rung with ``grace_period`` resource. A trial that
reaches its rung's milestone is paused; once every trial of a rung has reported
there (or failed) and no trial can join it any more, the top ``1/η`` of the rung
(``floor(n/η)``, at least one) resume from their checkpoints with ``η`` times the
resource; the others stay paused and end "not promoted". A trial reaching
``max_t`` is complete and stops.

Cost: a result is one ``bisect.insort`` into its rung's sorted scores (O(log n)
comparisons); a completed rung is walked once to pick its survivors, which is
amortised O(1) per recorded result. Promoted trials wait in a deque: a free
worker pops finished ones off its head (each once) and skips the few whose
pause is still in flight (at most one per worker), so the pick is amortised
O(1). No call scans all trials.
"""
from __future__ import annotations

import math
from collections import deque

from ..enums import Decision, TrialState
from ._base import SCHEDULERS, Scheduler
from ._rungs import Bracket, check_number, check_time_attr, time_value, rung_milestones, format_level

__all__ = ["SuccessiveHalving"]

class SynchronousHalving(Scheduler):
    """Brackets of synchronous successive halving; subclasses say how brackets are made.

    Per trial it keeps ``[bracket, rung, waiting]``: the rung the trial runs
    towards and whether it already reported there (paused, awaiting promotion).
    """

    def _init_halving(self, eta: int, time_attr: str, levels: list) -> None:
        self.eta = eta
        self.time_attr = time_attr
        self._levels = sorted(set(levels))
        self._level_index = {level: i for i, level in enumerate(self._levels)}
        self._level_counts = [0] * len(self._levels)
        self._brackets: list[Bracket] = []
        self._where: dict[int, list] = {}
        self._finished: set[int] = set()
        self._pending: deque[int] = deque()
        self._promote: deque[int] = deque()   # promoted, not resumed yet; finished ones dropped lazily

    def _new_bracket(self) -> Bracket:
        raise NotImplementedError

    def rung_levels(self) -> list:
        """The rung milestones (values of ``time_attr``), ascending."""
        return list(self._levels)

    def describe_progress(self) -> str:
        return "rungs " + " ".join(f"{format_level(v)}:{n}" for v, n in zip(self._levels, self._level_counts))

    # -- events -------------------------------------------------------------------
    def on_trial_add(self, trial):
        if not self._brackets or self._brackets[-1].closed:
            self._brackets.append(self._new_bracket())
        index = len(self._brackets) - 1
        self._brackets[index].admit()
        self._where[trial.trial_id] = [index, 0, False]
        self._pending.append(trial.trial_id)

    def on_trial_result(self, trial, result):
        where = self._where.get(trial.trial_id)
        if where is None or trial.trial_id in self._finished:
            return Decision.CONTINUE if where is None else Decision.STOP
        index, level, waiting = where
        if waiting:
            return Decision.PAUSE
        bracket = self._brackets[index]
        if time_value(result, self.time_attr) < bracket.milestones[level]:
            return Decision.CONTINUE
        self._record(index, level, trial.trial_id, self.score(result))
        where[2] = True
        top = level == len(bracket.milestones) - 1
        if top:
            self._finished.add(trial.trial_id)
        self._advance(index)
        return Decision.STOP if top else Decision.PAUSE

    def on_trial_complete(self, trial, result):
        reached = isinstance(result.get(self.time_attr), (int, float))
        self._end(trial.trial_id, result if reached else None)

    def on_trial_error(self, trial):
        self._end(trial.trial_id, None)

    def on_no_more_trials(self):
        if self._brackets and not self._brackets[-1].closed:
            self._brackets[-1].closed = True
            self._advance(len(self._brackets) - 1)

    def choose_trial_to_run(self, trials):
        promote, finished = self._promote, self._finished
        in_flight, found = [], None
        while promote:
            trial_id = promote.popleft()
            if trial_id in finished:
                continue                      # never runnable again: dropped
            trial = trials.get(trial_id)
            if self.is_runnable(trial):
                found = trial
                break
            # a promoted trial may still be running (its pause not yet through): it stays queued, in order
            in_flight.append(trial_id)
        promote.extendleft(reversed(in_flight))
        if found is not None:
            return found
        while self._pending:
            trial = trials.get(self._pending[0])
            if trial is not None and trial.state == TrialState.PENDING:
                return trial
            self._pending.popleft()
        return None

    # -- internals ------------------------------------------------------------------
    def _record(self, index: int, level: int, trial_id: int, score: float) -> None:
        bracket = self._brackets[index]
        bracket.record(level, trial_id, score)
        self._level_counts[self._level_index[bracket.milestones[level]]] += 1

    def _end(self, trial_id: int, result: dict | None) -> None:
        """A trial ended by itself (completed or failed): it counts as done in its rung."""
        where = self._where.get(trial_id)
        if where is None or trial_id in self._finished:
            return
        self._finished.add(trial_id)
        index, level, waiting = where
        if not waiting:
            milestone = self._brackets[index].milestones[level]
            reached = result is not None and result[self.time_attr] >= milestone
            self._record(index, level, trial_id, self.score(result) if reached else -math.inf)
            where[2] = True
        self._advance(index)

    def _advance(self, index: int) -> None:
        for trial_id in self._brackets[index].advance(self._finished):
            where = self._where[trial_id]
            where[1] += 1
            where[2] = False
            self._promote.append(trial_id)

    # -- state ------------------------------------------------------------------------
    def state_dict(self):
        return {"brackets": [b.state_dict() for b in self._brackets],
                "where": [[t, *w] for t, w in self._where.items()], "finished": sorted(self._finished),
                "pending": list(self._pending), "promote": list(self._promote),
                "level_counts": list(self._level_counts)}

    def load_state_dict(self, state):
        self._brackets = [Bracket.from_state(b, self.eta) for b in state["brackets"]]
        self._where = {row[0]: list(row[1:]) for row in state["where"]}
        self._finished = set(state["finished"])
        self._pending = deque(state["pending"])
        self._promote = deque(state["promote"])
        self._level_counts = list(state["level_counts"])


@SCHEDULERS.register
class SuccessiveHalving(SynchronousHalving):
    """Synchronous successive halving: one bracket whose base rung takes every trial.

    The base rung closes when the searcher has no more configs, so use a
    finite search (``num_samples`` or a grid). Workers idle at each rung
    boundary until the rung is complete: prefer ``asha`` on many workers.

    Args:
        grace_period: resource (``time_attr`` value) of the base rung.
        max_t: resource of the last rung; a trial reaching it stops as complete.
        reduction_factor: η; the top ``1/η`` of each rung are promoted.
        time_attr: the reported, monotone value that measures resource.
    """

    name = "sha"

    def __init__(self, *, grace_period: float = 1, max_t: float = 81, reduction_factor: int = 3,
                 time_attr: str = "training_iteration"):
        check_number("grace_period", grace_period, 1)
        check_number("max_t", max_t, grace_period)
        check_number("reduction_factor", reduction_factor, 2, integer=True)
        check_time_attr(time_attr)
        self.milestones = rung_milestones(grace_period, reduction_factor, max_t)
        self._init_halving(reduction_factor, time_attr, self.milestones)

    def _new_bracket(self) -> Bracket:
        return Bracket(self.milestones, self.eta)
