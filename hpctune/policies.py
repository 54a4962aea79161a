"""Live hyperparameter policies: change a running trial's hyperparameters from its metrics.

After "Taming Hyper-parameters in Deep Learning Systems" (Mai et al., 2019, KungFu): a policy
watches every result of a running trial and may answer with a new config, which the trial sees at
its next step without being restarted (the function API through ``hpctune.get_config()``, the
class API through ``Trainable.reset_config``). A policy composes with any scheduler (``policy:`` in
the spec): the scheduler decides whether the trial goes on, the policy how. Every change is a
``config`` row of the experiment's lineage table, and each result row carries the values in force
for it (``config/<name>`` columns for the hyperparameters the policy controls).

Built in:

- ``plateau_lr``: lower a hyperparameter (the learning rate) by ``factor`` when the metric has not
  improved by ``min_delta`` for ``patience`` results (Keras/PyTorch's ReduceLROnPlateau, per trial).
- ``schedule``: replay a recorded schedule of configs (``hpctune replay``).
- ``grow_batch``: double the batch size while the gradient noise scale the trainable reports is
  above it (McCandlish et al., 2018, "An Empirical Model of Large-Batch Training": a batch below
  the noise scale wastes steps, one above it wastes examples).

Writing one: subclass :class:`Policy` with a ``name`` of its own, keyword options, and
:meth:`Policy.on_result`; keep its state in :meth:`Policy.state_dict` (a resumed experiment replays
the results through it and must get the same answers).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import SpecError
from .registry import Configurable, Registry
from .space import Choice, Domain, LogUniform, QLogUniform, QUniform, RandInt, Uniform, flatten, unflatten
from .trial import metric_value

__all__ = ["Policy", "PlateauLR", "GrowBatch", "Schedule", "POLICIES", "build_policy"]

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


@POLICIES.register
class Schedule(Policy):
    """Replay a schedule of configs: ``stretches`` is ``[[from_iteration, config], ...]``, the first
    from 0; the iterations after ``from_iteration`` (up to the next stretch's) train with ``config``
    (all of it). ``hpctune replay DIR TRIAL`` builds one from a trial's lineage
    (:meth:`hpctune.Analysis.schedule`), to train a PBT trial's model again from scratch.
    """

    name = "schedule"

    def __init__(self, *, stretches: list):
        if (not isinstance(stretches, (list, tuple)) or not stretches
                or not all(isinstance(s, (list, tuple)) and len(s) == 2 and isinstance(s[1], dict)
                           and isinstance(s[0], int) and not isinstance(s[0], bool) for s in stretches)):
            raise SpecError("stretches", "expected a list of [from_iteration, config] pairs")
        starts = [s[0] for s in stretches]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise SpecError("stretches", f"from_iteration must start at 0 and increase, got {starts}")
        self.stretches = [[int(start), dict(config)] for start, config in stretches]
        flats = [flatten(config) for _, config in self.stretches]
        names = dict.fromkeys(name for flat in flats for name in flat)
        self.keys = tuple(name for name in names if len({repr(flat.get(name)) for flat in flats}) > 1)

    def config_after(self, iteration: int) -> dict:
        """The config of the iteration after ``iteration``."""
        chosen = self.stretches[0][1]
        for start, config in self.stretches:
            if start <= iteration:
                chosen = config
        return chosen

    def on_result(self, trial_id, result, config):
        wanted = self.config_after(int(result["training_iteration"]))
        return None if wanted == config else wanted


def build_policy(raw: Any) -> Policy:
    """A new policy from a name or a description ``{"type": NAME, **options}``.

    Raises:
        SpecError: unknown type or option, or a bad option value (``policy.factor: ...``).
    """
    return POLICIES.build(raw)
