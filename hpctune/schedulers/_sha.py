"""Synchronous successive halving (SHA), and the rung helpers the other halving schedulers share.

All configs start in the base rung with ``grace_period`` resource. A trial that
reaches its rung's milestone is paused; once every trial of a rung has reported
there (or failed) and no trial can join it any more, the top ``1/η`` of the rung
(``floor(n/η)``, at least one) resume from their checkpoints with ``η`` times the
resource; the others stay paused and end "not promoted". A trial reaching
``max_t`` is complete and stops.

Cost: a result is one ``bisect.insort`` into its rung's sorted scores (O(log n)
comparisons); a completed rung is walked once to pick its survivors, which is
amortised O(1) per recorded result. No call scans all trials.
"""
from __future__ import annotations

import math
from bisect import insort
from collections import deque

from ..enums import Decision, TrialState
from ..errors import SpecError
from ._base import SCHEDULERS, Scheduler

__all__ = ["SuccessiveHalving"]

_WORST = math.inf  # a rung stores negated scores: smaller sorts first, the worst score is +inf


def check_number(name: str, value, low: float, integer: bool = False) -> None:
    """Raise ``SpecError(name, ...)`` unless ``value`` is a finite number (an int if ``integer``) >= ``low``."""
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise SpecError(name, f"expected {'an integer' if integer else 'a number'}, got {value!r}")
    if value < low:
        raise SpecError(name, f"must be >= {low}, got {value}")


def check_time_attr(value) -> None:
    if not isinstance(value, str) or not value:
        raise SpecError("time_attr", f"expected the name of a reported value, got {value!r}")


def time_value(result: dict, time_attr: str) -> float:
    """The result's ``time_attr`` value.

    Raises:
        SpecError: the trainable does not report it (a typo would silently disable the scheduler).
    """
    value = result.get(time_attr)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise SpecError("time_attr", f"{time_attr!r} was not reported as a number (got {value!r})")
    return value


def rung_milestones(first: float, eta: int, max_t: float) -> list:
    """``first, first·η, first·η², ...`` below ``max_t``, then ``max_t`` itself (the last rung)."""
    levels, level = [], first
    while level < max_t:
        levels.append(level)
        level *= eta
    return levels + [max_t]


def negate(score: float) -> float:
    """A rung's sort key: negated score (best first); NaN/inf/missing scores are +inf, last."""
    return -score if score > -math.inf else _WORST


def encode(key: float):
    """A sort key for JSON (strict JSON has no Infinity): the worst key is ``None``."""
    return None if key == _WORST else key


def decode(key) -> float:
    return _WORST if key is None else key


def format_level(level) -> str:
    return f"{level:g}" if isinstance(level, float) else str(level)


class Bracket:
    """One synchronous successive-halving run over fixed rung milestones.

    ``capacity`` is how many configs the base rung takes (None: until it is
    closed because no more trials come).
    """

    def __init__(self, milestones: list, eta: int, capacity: int | None = None):
        self.milestones = list(milestones)
        self.eta = eta
        self.capacity = capacity
        self.members = [0] * len(self.milestones)     # trials admitted to each rung
        self.done = [0] * len(self.milestones)        # of those, recorded or failed
        self.ranked: list[list] = [[] for _ in self.milestones]   # sorted [negated score, trial_id]
        self.current = 0        # lowest rung not complete yet
        self.closed = False     # whether rung ``current`` can still get members

    def admit(self) -> None:
        self.members[0] += 1
        if self.capacity is not None and self.members[0] >= self.capacity:
            self.closed = True

    def record(self, level: int, trial_id: int, score: float) -> None:
        insort(self.ranked[level], [negate(score), trial_id])
        self.done[level] += 1

    def advance(self, finished: set) -> list[int]:
        """Complete every rung that can be completed; the trials promoted, best first."""
        promoted: list[int] = []
        top = len(self.milestones) - 1
        while self.closed and self.current <= top and self.done[self.current] >= self.members[self.current]:
            level = self.current
            self.current += 1
            if level == top:
                break
            quota = max(1, self.members[level] // self.eta)
            chosen = []
            for key, trial_id in self.ranked[level]:   # once per rung: amortised O(1) per result
                if len(chosen) == quota or key == _WORST:
                    break
                if trial_id not in finished:
                    chosen.append(trial_id)
            self.members[level + 1] = len(chosen)
            promoted.extend(chosen)
        return promoted

    def state_dict(self) -> dict:
        return {"milestones": self.milestones, "capacity": self.capacity, "members": self.members,
                "done": self.done, "current": self.current, "closed": self.closed,
                "ranked": [[[encode(k), t] for k, t in rung] for rung in self.ranked]}

    @classmethod
    def from_state(cls, state: dict, eta: int) -> "Bracket":
        bracket = cls(state["milestones"], eta, state["capacity"])
        bracket.members, bracket.done = list(state["members"]), list(state["done"])
        bracket.current, bracket.closed = state["current"], state["closed"]
        bracket.ranked = [[[decode(k), t] for k, t in rung] for rung in state["ranked"]]
        return bracket


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
        self._promote: list[int] = []

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
        for i, trial_id in enumerate(self._promote):
            trial = trials.get(trial_id)
            if trial_id not in self._finished and self.is_runnable(trial):
                del self._promote[i]
                return trial
        # a promoted trial may still be running (its pause not yet through): it stays queued
        self._promote = [t for t in self._promote if t not in self._finished]
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
        self._promote = list(state["promote"])
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
