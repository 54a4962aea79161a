"""The Policy interface and the registry policies are built from by name; what the built-in
policies share (a config with one value replaced, what a space entry's values are)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError
from ..registry import Configurable, Registry
from ..space import Choice, Domain, LogUniform, QLogUniform, QUniform, RandInt, Uniform, flatten, unflatten
from ..trial import metric_value

__all__ = ["Policy", "POLICIES", "build_policy"]

POLICIES = Registry("policy")


class Policy(Configurable):
    """Base class. The controller calls :meth:`set_space` and :meth:`setup` once, then
    :meth:`on_result` for each result a running trial reports that the scheduler let go on, and
    :meth:`on_trial_end` when a trial ends for good."""

    kind = "policy"
    name = "base"
    keys: tuple[str, ...] = ()
    """The hyperparameters (``a/b`` for nested ones) the policy may change: result rows carry their
    values in force, as ``config/<name>``."""

    def set_space(self, space: dict) -> None:
        """Refuse a policy whose hyperparameters are not in the space.

        Raises:
            SpecError: naming ``policy.key`` (or the option that names them).
        """
        names = flatten(space)
        for key in self.keys:
            if key not in names:
                raise SpecError(self._key_option, f"{key!r} is not a hyperparameter of the space "
                                                  f"(it has: {', '.join(names) or 'none'})")
            self.check_domain(key, names[key])

    _key_option = "key"

    def check_domain(self, key: str, entry: Any) -> None:
        """Refuse ``key`` if what the space gives it (``entry``: a :class:`~hpctune.space.Domain` or a
        constant) is nothing this policy can change meaningfully; the default takes anything.

        Raises:
            SpecError: naming ``key`` (the option), what the space gives it and what the policy needs.
        """

    def setup(self, metric: str, mode: str) -> None:
        self.metric, self.mode = metric, mode

    def score(self, result: dict) -> float:
        """The result's metric, larger is better (NaN, inf, missing: the worst)."""
        return metric_value(result, self.metric, self.mode)

    def on_result(self, trial_id: int, result: dict, config: dict) -> dict | None:
        """The trial's new config (all of it), or None to leave it as it is."""
        return None

    def on_trial_end(self, trial_id: int) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def _replaced(config: dict, key: str, value: Any) -> dict:
    flat = flatten(config)
    flat[key] = value
    return unflatten(flat)


@dataclass(frozen=True)
class _Values:
    """What a space entry's values are: all numbers (no bools), all integers, and the least."""

    numbers: bool
    integers: bool
    low: float


def _values(entry: Any) -> _Values | None:
    """The values a domain or constant gives its hyperparameter; None where they cannot be known
    before it runs (``sample_from``)."""
    if isinstance(entry, RandInt):
        return _Values(True, True, entry.low)
    if isinstance(entry, Choice):  # and Grid
        values = entry.choices
    elif isinstance(entry, (QUniform, QLogUniform)):
        # integers only when bounds and step all are (what sample() and the Optuna searchers draw)
        whole = all(_is_number(v) and isinstance(v, int) for v in (entry.low, entry.high, entry.q))
        return _Values(True, whole, entry.low)
    elif isinstance(entry, (Uniform, LogUniform)):
        return _Values(True, False, entry.low)
    elif isinstance(entry, Domain):
        return None
    else:
        values = [entry]
    numbers = all(_is_number(v) for v in values)
    return _Values(numbers, numbers and all(isinstance(v, int) for v in values),
                   min(values) if numbers else math.nan)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _shown(entry: Any) -> str:
    """``loguniform [0.001, 0.1]``, ``choice ['sgd', 'adam']``, ``the constant 'adam'``."""
    if isinstance(entry, Domain):
        return f"{entry.kind} {entry.to_json()[entry.kind]!r}" if entry.kind != "sample_from" else "sample_from"
    return f"the constant {entry!r}"


def _positive(name: str, value, integer: bool = False, allow_zero: bool = False) -> None:
    kinds = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or (
            value < 0 if allow_zero else value <= 0):
        what = "an integer" if integer else "a number"
        raise SpecError(name, f"expected {what} {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def build_policy(raw: Any) -> Policy:
    """A new policy from a name or a description ``{"type": NAME, **options}``.

    Raises:
        SpecError: unknown type or option, or a bad option value (``policy.factor: ...``).
    """
    return POLICIES.build(raw)
