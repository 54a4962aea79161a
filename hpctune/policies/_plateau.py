"""``plateau_lr``: lower a hyperparameter (the learning rate) when the metric stops improving."""
from __future__ import annotations

import math

from ..errors import SpecError
from ..space import flatten
from ._base import POLICIES, Policy, _positive, _replaced, _shown, _values

__all__ = ['PlateauLR']


@POLICIES.register
class PlateauLR(Policy):
    """Multiply ``key`` by ``factor`` when the metric has not improved by ``min_delta`` for
    ``patience`` results; not below ``min_value``; then wait ``cooldown`` results.

    Args:
        key: the hyperparameter to lower (default ``lr``).
        factor: in (0, 1).
        patience: results without improvement before a change.
        min_delta: how much better (in the metric's units) counts as an improvement.
        min_value: the lowest value it sets.
        cooldown: results after a change before counting again.
    """

    name = "plateau_lr"

    def __init__(self, *, key: str = "lr", factor: float = 0.5, patience: int = 3, min_delta: float = 0.0,
                 min_value: float = 0.0, cooldown: int = 0):
        if not isinstance(key, str) or not key:
            raise SpecError("key", f"expected a hyperparameter name, got {key!r}")
        _positive("factor", factor)
        if factor >= 1:
            raise SpecError("factor", f"must be in (0, 1), got {factor}")
        _positive("patience", patience, integer=True)
        _positive("min_delta", min_delta, allow_zero=True)
        _positive("min_value", min_value, allow_zero=True)
        _positive("cooldown", cooldown, integer=True, allow_zero=True)
        self.key, self.factor, self.patience = key, factor, patience
        self.min_delta, self.min_value, self.cooldown = min_delta, min_value, cooldown
        self.keys = (key,)
        self._trials: dict[int, list] = {}  # trial -> [best score, results since it, cooldown left]

    def check_domain(self, key, entry):
        """The values it lowers by multiplying must be numbers >= 0, not integers only (halving 3
        layers gives 1.5, a value the hyperparameter never takes)."""
        values = _values(entry)
        if values is None or not values.numbers or values.low < 0 or values.integers:
            raise SpecError("key", f"{key!r} is {_shown(entry)}: plateau_lr multiplies it by {self.factor}, so it "
                                   "needs numbers >= 0, not integers only (uniform, loguniform, a choice of numbers, "
                                   "or a number such as 0.1)")

    def on_result(self, trial_id, result, config):
        best, waited, cooling = self._trials.get(trial_id, [-math.inf, 0, 0])
        score = self.score(result)
        if score > best + self.min_delta or best == -math.inf:
            best, waited = max(score, best), 0
        elif cooling > 0:
            cooling -= 1
        else:
            waited += 1
        change = None
        if waited >= self.patience:
            value = flatten(config)[self.key]
            lowered = max(value * self.factor, self.min_value)
            if lowered < value:
                change = _replaced(config, self.key, lowered)
            waited, cooling = 0, self.cooldown
        self._trials[trial_id] = [best, waited, cooling]
        return change

    def on_trial_end(self, trial_id):
        self._trials.pop(trial_id, None)

    def state_dict(self):
        return {"trials": [[t, None if b == -math.inf else b, w, c] for t, (b, w, c) in self._trials.items()]}

    def load_state_dict(self, state):
        self._trials = {t: [-math.inf if b is None else b, w, c] for t, b, w, c in state["trials"]}
