"""The options of an Optuna sampler, checked when the searcher is built (before anything is written).

A spec's searcher options go to the sampler's constructor, which takes most of them without a
look and fails only when the sampler first uses one, many trials into a run. So each option is
checked here against the type its constructor declares (Optuna's annotations: ``int``,
``float | None``, ``dict[str, Any]``, ...; a spec is JSON, so an option whose type is a Python
object, such as a callable or another sampler, can only be left out) and against the range in
:data:`RANGES` (what an annotation cannot say: ``n_startup_trials >= 0``). A sampler that needs a
package Optuna imports only when it first samples (PyTorch for ``GPSampler``) is refused here too.
"""
from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError

__all__ = ["RANGES", "NEEDS", "check_sampler_options", "check_sampler_needs", "annotation_kinds"]


@dataclass(frozen=True)
class _Range:
    low: float
    high: float = math.inf
    open_low: bool = False  # low itself excluded

    def holds(self, value: float) -> bool:
        return (value > self.low if self.open_low else value >= self.low) and value <= self.high

    def __str__(self) -> str:
        if self.high < math.inf:
            return f"in [{self.low}, {self.high}]"
        return f"> {self.low}" if self.open_low else f">= {self.low}"


RANGES: dict[str, _Range] = {
    "n_startup_trials": _Range(0),
    "n_ei_candidates": _Range(1),
    "prior_weight": _Range(0),
    "sigma0": _Range(0, open_low=True),
    "popsize": _Range(2),
    "population_size": _Range(2),
    "mutation_prob": _Range(0, 1),
    "crossover_prob": _Range(0, 1),
    "swapping_prob": _Range(0, 1),
    "dividing_parameter": _Range(1),
}
"""Option name -> the values it may take, for every sampler with an option of that name."""

CHOICES: dict[str, tuple] = {"qmc_type": ("sobol", "halton")}
"""Option name -> the strings it may be."""

NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "GPSampler": (("torch", "pip install torch"), ("scipy.optimize", "pip install 'hpctune[optuna]'")),
    "CmaEsSampler": (("cmaes", "pip install 'hpctune[optuna]'"),),
    "QMCSampler": (("scipy.stats.qmc", "pip install 'hpctune[optuna]'"),),
}
"""Sampler -> (module, how to install it): what Optuna imports only when the sampler first samples."""

_ALIASES = {"GridValueType": "str | float | int | bool | None"}  # Optuna's names for unions of plain types
_LISTS = {"list", "List", "Sequence", "tuple", "Tuple"}
_MAPPINGS = {"dict", "Dict", "Mapping"}
_PLAIN = {"None": "null", "bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
          "Any": "any value"}


def check_sampler_options(sampler_class: type, options: Mapping, own: list[str]) -> None:
    """Refuse an option ``sampler_class`` does not take, or a value its type or range rules out.

    Args:
        own: the searcher's own options (listed as known in the message for an unknown one).

    Raises:
        SpecError: naming the option (``n_startup_trials: expected an integer >= 0, got 'many'``).
    """
    params = {name: p for name, p in inspect.signature(sampler_class.__init__).parameters.items()
              if name not in ("self", "seed") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    for option, value in options.items():
        if option not in params:
            raise SpecError(option, f"unknown option of {sampler_class.__name__} "
                                    f"(known: {', '.join([*own, *params])})")
        annotation = params[option].annotation
        if annotation is inspect.Parameter.empty:
            continue
        text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        _check_value(option, value, text, sampler_class.__name__)


def check_sampler_needs(sampler_class: type, where: str) -> None:
    """Refuse a sampler whose packages cannot be imported (naming the package and how to install it),
    instead of failing when it first samples, trials into the run.

    Raises:
        SpecError: naming ``where`` (``type``, or ``sampler`` for ``type: optuna``).
    """
    for module, install in NEEDS.get(sampler_class.__name__, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            package = module.split(".")[0]
            raise SpecError(where, f"{sampler_class.__name__} needs {package}, which cannot be imported: "
                                   f"{install}") from None


def annotation_kinds(text: str) -> list[str]:
    """The plain kinds an annotation's alternatives stand for, those of a list's items and a mapping's
    values included (``list[int] | None`` -> ``['list', 'int', 'None']``); ``object`` for a Python
    object no spec can hold (a callable, a sampler)."""
    kinds = []
    for alternative in _alternatives(text):
        head, args = _parts(alternative)
        if head in _LISTS or head in _MAPPINGS:
            kinds.append("list" if head in _LISTS else "mapping")
            kinds += [kind for arg in args[-1:] for kind in annotation_kinds(arg)]  # items, or a mapping's values
        else:
            kinds.append(head if head in _PLAIN else "object")
    return kinds


def _check_value(where: str, value: Any, text: str, sampler: str) -> None:
    if not _accepts(value, text, where, sampler):
        _refuse(where, value, text, sampler, RANGES.get(where), CHOICES.get(where))
    if value is None or isinstance(value, bool):
        return
    limits = RANGES.get(where)
    if limits is not None and isinstance(value, (int, float)) and not limits.holds(value):
        raise SpecError(where, f"expected {_wanted(text, limits, None)}, got {value!r}")
    choices = CHOICES.get(where)
    if choices is not None and value not in choices:
        raise SpecError(where, f"expected {_wanted(text, None, choices)}, got {value!r}")


def _refuse(where: str, value: Any, text: str, sampler: str, limits: _Range | None = None,
            choices: tuple | None = None) -> None:
    wanted = _wanted(text, limits, choices)
    if not wanted or wanted == "null":
        raise SpecError(where, f"{sampler} takes a Python object here ({text}), which a spec cannot hold: leave it out")
    raise SpecError(where, f"expected {wanted}, got {value!r}")


def _accepts(value: Any, text: str, where: str, sampler: str) -> bool:
    """Whether ``value`` is one of the annotation's alternatives; an item of a list or mapping that is
    not raises naming it (``reference_points[1]``)."""
    for alternative in _alternatives(text):
        head, args = _parts(alternative)
        if head == "None" and value is None or head == "Any":
            return True
        if head == "bool" and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if (head == "int" and isinstance(value, int)
                or head == "float" and isinstance(value, (int, float)) and math.isfinite(value)
                or head == "str" and isinstance(value, str)):
            return True
        if head in _LISTS and isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if args and not _accepts(item, args[0], f"{where}[{index}]", sampler):
                    _refuse(f"{where}[{index}]", item, args[0], sampler)
            return True
        if head in _MAPPINGS and isinstance(value, Mapping):
            for key, item in value.items():
                if len(args) == 2 and not _accepts(item, args[1], f"{where}.{key}", sampler):
                    _refuse(f"{where}.{key}", item, args[1], sampler)
            return True
    return False


def _wanted(text: str, limits: _Range | None = None, choices: tuple | None = None) -> str:
    """What the annotation takes, in words (``an integer >= 0 or null``); objects left out."""
    words = []
    heads = [_parts(alternative)[0] for alternative in _alternatives(text)]
    for head in heads:
        if head == "int" and "float" in heads:  # a number says it
            continue
        if head == "str" and choices:
            words.append("one of " + " or ".join(map(repr, choices)))
        elif head == "bool":
            words += ["true", "false"]
        elif head in _PLAIN:
            words.append(_PLAIN[head] + (f" {limits}" if limits is not None and head in ("int", "float") else ""))
        elif head in _LISTS:
            words.append("a list")
        elif head in _MAPPINGS:
            words.append("a mapping")
    if "null" in words:  # last, whatever Optuna's order
        words = [w for w in words if w != "null"] + ["null"]
    if words == ["true", "false"]:
        return "true or false"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _alternatives(text: str) -> list[str]:
    """``a | b[c | d]`` -> ``['a', 'b[c | d]']`` (also ``Optional[a]`` and ``Union[a, b]``)."""
    text = _ALIASES.get(text.strip(), text.strip())
    head, args = _parts(text)
    if head == "Optional":
        return [*_alternatives(args[0]), "None"]
    if head == "Union":
        return [alt for arg in args for alt in _alternatives(arg)]
    parts = _split(text, "|")
    if len(parts) == 1:
        return [parts[0]]
    return [alt for part in parts for alt in _alternatives(part)]


def _parts(text: str) -> tuple[str, list[str]]:
    """``dict[str, Any]`` -> ``('dict', ['str', 'Any'])``; ``np.ndarray`` -> ``('np.ndarray', [])``."""
    text = text.strip()
    if not text.endswith("]") or "[" not in text:
        return text, []
    head, inner = text.split("[", 1)
    return head.strip(), _split(inner[:-1], ",")


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == separator and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts
