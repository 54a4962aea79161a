"""What may change in an experiment's spec when it is resumed, and the one-line refusal of the rest.

Every allocation of ``hpctune submit`` and of the batch templates runs ``hpctune run SPEC --resume``,
so a spec file edited between allocations reaches a running experiment. What it may change is what
cannot alter a decision already taken or the meaning of a result already recorded:

- ``num_samples``: raised, it grows the experiment (the search goes on where it was; see
  docs/schedulers.md for what that means per scheduler); lowered, it is refused (an experiment never
  shrinks), and so is growing under a scheduler that cannot take trials late
  (:meth:`hpctune.schedulers.Scheduler.why_no_growth`);
- ``time_budget_s``, ``budget``, ``max_failures``, ``checkpoint_keep`` and ``tensorboard``: they act from
  now on (a larger time budget or budget grows a finished experiment);
- ``name`` and ``storage``: where the folder is, not what the experiment is.

Any other field (the trainable, metric, mode, space, stop criteria, every scheduler, searcher and
policy option, resources, seed) is refused in one line naming it with its old and new value. A
scheduler's, searcher's or policy's options are compared with their defaults filled in, so spelling
out a default is no change.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..registry import registry_of

__all__ = ["MAY_CHANGE", "check_resumable", "grows"]

MAY_CHANGE = ("num_samples", "time_budget_s", "budget", "max_failures", "checkpoint_keep", "tensorboard", "name",
              "storage")
"""Spec fields a resumed experiment may take from its new spec (``num_samples`` only upwards)."""

_ALLOWED_TEXT = ("only num_samples (to grow it), time_budget_s, budget, max_failures, checkpoint_keep and tensorboard "
                 "may change")
_PLUG_INS = ("scheduler", "searcher", "policy")


def check_resumable(stored: Mapping, spec_json: Mapping, folder: Path) -> None:
    """Refuse ``spec_json`` (the spec now asked for) for the experiment stored in ``folder``
    (``stored``, its spec) if it changes what a resumed experiment must keep.

    Raises:
        SpecError: naming the first changed field (``scheduler.max_t``), its stored and its new value.
    """
    old_all, new_all = _plain(stored), _plain(spec_json)
    for key in new_all:
        if key in MAY_CHANGE or key == "simulation":
            continue
        old, new = old_all.get(key, _stored_default(key)), new_all[key]
        if key in _PLUG_INS and isinstance(old, Mapping) and isinstance(new, Mapping):
            old, new = _with_defaults(key, old), _with_defaults(key, new)
        difference = _first_difference(old, new, key)
        if difference is not None:
            where, before, after = difference
            raise SpecError(where, f"changed from {_show(before)} to {_show(after)} since {folder} started; a "
                                   f"resumed experiment keeps it ({_ALLOWED_TEXT})")
    if new_all["num_samples"] < old_all["num_samples"]:
        raise SpecError("num_samples", f"{new_all['num_samples']} is below the experiment's num_samples "
                                       f"({old_all['num_samples']}) in {folder}: an experiment grows, never shrinks")
    if new_all["num_samples"] > old_all["num_samples"]:
        refuse_growth(new_all["scheduler"], "num_samples")


def refuse_growth(scheduler: Mapping, where: str) -> None:
    """Refuse more trials for an experiment whose scheduler cannot take them once it has started.

    Raises:
        SpecError: at ``where``, saying why that scheduler cannot grow.
    """
    from ..schedulers import build_scheduler

    why = build_scheduler(dict(scheduler)).why_no_growth()
    if why is not None:
        raise SpecError(where, f"an experiment under scheduler {scheduler['type']!r} cannot grow: {why}; "
                               "start a new experiment instead")


def grows(stored: Mapping, spec_json: Mapping) -> bool:
    """Whether ``spec_json`` gives a finished experiment more to do: more samples, more time, or a
    larger budget."""
    return spec_json["num_samples"] > stored["num_samples"] or any(
        _raised(stored.get(key), spec_json.get(key)) for key in ("time_budget_s", "budget"))


def _raised(stored: float | None, new: float | None) -> bool:
    """A limit that was set is now higher, or gone."""
    return stored is not None and (new is None or new > stored)


def _stored_default(key: str) -> Any:
    """What an experiment stored before ``key`` was a spec field ran with: the field's default."""
    import dataclasses

    from ..spec import ExperimentSpec

    for spec_field in dataclasses.fields(ExperimentSpec):
        if spec_field.name == key:
            if spec_field.default_factory is not dataclasses.MISSING:
                value = spec_field.default_factory()
                return _plain(vars(value) if dataclasses.is_dataclass(value) else value)
            if spec_field.default is not dataclasses.MISSING:
                return _plain(spec_field.default)
    return _UNSET


class _Unset:
    def __repr__(self) -> str:
        return "(not set)"


_UNSET = _Unset()


def _plain(value: Any) -> Any:
    """JSON's view of ``value``: tuples as lists, numpy scalars as numbers (as the stored spec has them)."""
    from ..store.journal import to_jsonable

    return json.loads(json.dumps(value, default=to_jsonable))


def _with_defaults(kind: str, description: Mapping) -> Any:
    registry = registry_of(kind)
    return description if registry is None else _plain(registry.with_defaults(description))


def _first_difference(old: Any, new: Any, where: str) -> tuple[str, Any, Any] | None:
    """``(path, old, new)`` of the first place two JSON values differ, or None."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in [*old, *(k for k in new if k not in old)]:
            found = _first_difference(old.get(key, _UNSET), new.get(key, _UNSET), f"{where}.{key}")
            if found is not None:
                return found
        return None
    if old == new and (isinstance(old, bool) == isinstance(new, bool)):  # 1 == 1.0, but true is no 1
        return None
    return where, old, new


def _show(value: Any) -> str:
    return repr(value) if value is _UNSET else json.dumps(value)
