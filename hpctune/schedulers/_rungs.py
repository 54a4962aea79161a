"""Rung helpers shared by the successive-halving schedulers (sha, asha, hyperband) and median.

Option checks, rung milestones, sort keys that keep NaN/inf last and survive
strict JSON, and :class:`Bracket`, one synchronous successive-halving run.
"""
from __future__ import annotations

import math

from ..errors import SpecError
from ._sorted import SortedKeys

__all__ = ["Bracket", "check_number", "check_time_attr", "time_value", "rung_milestones", "negate",
           "encode", "decode", "format_level", "WORST"]

WORST = math.inf  # a rung stores negated scores: smaller sorts first, the worst score is +inf


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
    return -score if score > -math.inf else WORST


def encode(key: float):
    """A sort key for JSON (strict JSON has no Infinity): the worst key is ``None``."""
    return None if key == WORST else key


def decode(key) -> float:
    return WORST if key is None else key


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
        self.ranked = [SortedKeys() for _ in self.milestones]   # (negated score, trial_id), best first
        self.current = 0        # lowest rung not complete yet
        self.closed = False     # whether rung ``current`` can still get members

    def admit(self) -> None:
        self.members[0] += 1
        if self.capacity is not None and self.members[0] >= self.capacity:
            self.closed = True

    def record(self, level: int, trial_id: int, score: float) -> None:
        self.ranked[level].add((negate(score), trial_id))
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
                if len(chosen) == quota or key == WORST:
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
        bracket.ranked = [SortedKeys((decode(k), t) for k, t in rung) for rung in state["ranked"]]
        return bracket
