"""``grow_batch``: double the batch size while the gradient noise scale is above it (McCandlish et al., 2018)."""
from __future__ import annotations

import math

from ..errors import SpecError
from ..space import flatten
from ._base import POLICIES, Policy, _positive, _replaced, _shown, _values

__all__ = ['GrowBatch']


@POLICIES.register
class GrowBatch(Policy):
    """Multiply ``key`` (the batch size) by ``factor`` while the reported gradient noise scale is
    above ``ratio`` times it, up to ``max_value``; at most once every ``every`` results.

    Args:
        key: the batch size hyperparameter (an integer).
        noise: the reported value holding the gradient noise scale (B_noise, in examples).
        factor: an integer >= 2.
        ratio: grow while ``noise > ratio * batch``.
        max_value: the largest batch it sets.
        every: results between two changes.
    """

    name = "grow_batch"

    def __init__(self, *, key: str = "batch", noise: str = "grad_noise_scale", factor: int = 2,
                 ratio: float = 1.0, max_value: int = 4096, every: int = 1):
        if not isinstance(key, str) or not key:
            raise SpecError("key", f"expected a hyperparameter name, got {key!r}")
        if not isinstance(noise, str) or not noise:
            raise SpecError("noise", f"expected the name of a reported value, got {noise!r}")
        _positive("factor", factor, integer=True)
        if factor < 2:
            raise SpecError("factor", f"must be >= 2, got {factor}")
        _positive("ratio", ratio)
        _positive("max_value", max_value, integer=True)
        _positive("every", every, integer=True)
        self.key, self.noise, self.factor, self.ratio = key, noise, factor, ratio
        self.max_value, self.every = max_value, every
        self.keys = (key,)
        self._since: dict[int, int] = {}  # trial -> results since its last change

    def check_domain(self, key, entry):
        """A batch size: integers >= 1 only (a float such as a learning rate would be rounded down)."""
        values = _values(entry)
        if values is None or not values.integers or values.low < 1:
            raise SpecError("key", f"{key!r} is {_shown(entry)}, not a batch size: grow_batch needs integers >= 1 "
                                   "(randint, quniform or qloguniform with integer bounds and step, a choice or "
                                   "grid of integers, or an integer)")

    def on_result(self, trial_id, result, config):
        since = self._since.get(trial_id, self.every - 1) + 1
        self._since[trial_id] = since
        noise = result.get(self.noise)
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not math.isfinite(noise):
            return None
        batch = flatten(config)[self.key]
        if since < self.every or noise <= self.ratio * batch or batch >= self.max_value:
            return None
        self._since[trial_id] = 0
        return _replaced(config, self.key, int(min(batch * self.factor, self.max_value)))

    def on_trial_end(self, trial_id):
        self._since.pop(trial_id, None)

    def state_dict(self):
        return {"since": [[t, n] for t, n in self._since.items()]}

    def load_state_dict(self, state):
        self._since = {t: n for t, n in state["since"]}
