"""The search-space DSL: domains, their YAML form, sampling and grid expansion.

A space is a (possibly nested) mapping whose leaves are either constants or
:class:`Domain` objects. In YAML a domain is a one-key mapping such as
``{loguniform: [1e-4, 1.0]}``; in Python it is ``hpctune.loguniform(1e-4, 1.0)``.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .errors import SpecError

__all__ = [
    "Domain", "uniform", "loguniform", "quniform", "qloguniform", "randint",
    "choice", "grid", "sample_from", "parse_space", "space_to_json",
    "flatten", "unflatten", "GridPoints", "sample_config",
]


class Domain:
    """A distribution (or grid) one hyperparameter is drawn from."""

    kind: str = ""

    def sample(self, rng: np.random.Generator, config: dict) -> Any:
        raise NotImplementedError

    def to_json(self) -> Any:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return f"{self.kind}({self.to_json()[self.kind]!r})"


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise SpecError(where, f"must be finite, got {value!r}")
    return value


def _bounds(where: str, low: Any, high: Any, log: bool) -> tuple[float, float]:
    low, high = _number(where, low), _number(where, high)
    if log and low <= 0:
        raise SpecError(where, "low must be > 0")
    if low >= high:
        raise SpecError(where, f"low must be < high (got {low!r} >= {high!r})")
    return low, high


class _Continuous(Domain):
    log = False

    def __init__(self, low: float, high: float, q: float | None = None, *, where: str = ""):
        where = where or self.kind
        self.low, self.high = _bounds(where, low, high, self.log)
        self.q = None
        if q is not None:
            q = _number(where, q)
            if q <= 0:
                raise SpecError(where, "q must be > 0")
            self.q = q

    def sample(self, rng, config):
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = float(rng.uniform(self.low, self.high))
        if self.q is not None:
            value = round(value / self.q) * self.q
            value = min(max(value, self.low), self.high)
            if isinstance(self.q, int) and isinstance(self.low, int):
                value = int(value)
        return value

    def to_json(self):
        args = [self.low, self.high] + ([self.q] if self.q is not None else [])
        return {self.kind: args}


class Uniform(_Continuous):
    kind = "uniform"


class LogUniform(_Continuous):
    kind = "loguniform"
    log = True


class QUniform(_Continuous):
    kind = "quniform"


class QLogUniform(_Continuous):
    kind = "qloguniform"
    log = True


class RandInt(Domain):
    """Integers in ``[low, high)``: the upper bound is excluded, as in numpy."""

    kind = "randint"

    def __init__(self, low: int, high: int, *, where: str = ""):
        where = where or self.kind
        for value in (low, high):
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(where, f"expected an integer, got {value!r}")
        if low >= high:
            raise SpecError(where, f"low must be < high (got {low} >= {high}; high is excluded)")
        self.low, self.high = low, high

    def sample(self, rng, config):
        return int(rng.integers(self.low, self.high))

    def size(self) -> int:
        return self.high - self.low

    def value_at(self, index: int) -> int:
        return self.low + index

    def to_json(self):
        return {self.kind: [self.low, self.high]}


class Choice(Domain):
    """One of a list of values, uniformly."""

    kind = "choice"

    def __init__(self, values: list, *, where: str = ""):
        where = where or self.kind
        if not isinstance(values, (list, tuple)) or not values:
            raise SpecError(where, "expected a non-empty list of values")
        for i, value in enumerate(values):
            inner = _domain_inside(value)
            if inner is not None:
                raise SpecError(f"{where}[{i}]", f"holds a domain ({inner}); a {self.kind}'s values are constants, "
                                                 "a domain inside one would never be sampled")
        self.choices = list(values)

    def sample(self, rng, config):
        return self.choices[int(rng.integers(len(self.choices)))]

    def size(self) -> int:
        return len(self.choices)

    def value_at(self, index: int) -> Any:
        return self.choices[index]

    def to_json(self):
        return {self.kind: self.choices}


def _domain_inside(value: Any, path: str = "") -> str | None:
    """Where a domain sits inside a value (``beta: uniform``), or None: a Domain, or a one-key mapping
    naming one (``{uniform: [0, 1]}``), at any depth of mappings and lists."""
    if isinstance(value, Domain):
        return f"{path}{value.kind}"
    if isinstance(value, Mapping):
        if len(value) == 1 and next(iter(value)) in DOMAIN_NAMES:
            return f"{path}{next(iter(value))}"
        found = (_domain_inside(inner, f"{path}{key}: ") for key, inner in value.items())
    elif isinstance(value, (list, tuple)):
        found = (_domain_inside(inner, path) for inner in value)
    else:
        return None
    return next((where for where in found if where is not None), None)


class Grid(Choice):
    """Every value is tried: grids are crossed with each other."""

    kind = "grid"


class SampleFrom(Domain):
    """A value computed from the config sampled so far: ``fn(config) -> value``."""

    kind = "sample_from"

    def __init__(self, fn: Callable[[dict], Any], *, where: str = ""):
        if not callable(fn):
            raise SpecError(where or self.kind, f"expected a function of the config, got {fn!r}")
        self.fn = fn

    def sample(self, rng, config):
        return self.fn(config)

    def to_json(self):
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return {self.kind: f"{getattr(self.fn, '__module__', '?')}:{name}"}


def uniform(low: float, high: float) -> Domain:
    """Floats uniformly in ``[low, high]``."""
    return Uniform(low, high)


def loguniform(low: float, high: float) -> Domain:
    """Floats whose logarithm is uniform in ``[log low, log high]``; ``low > 0``."""
    return LogUniform(low, high)


def quniform(low: float, high: float, q: float) -> Domain:
    """Uniform in ``[low, high]``, rounded to a multiple of ``q``."""
    return QUniform(low, high, q)


def qloguniform(low: float, high: float, q: float) -> Domain:
    """Log-uniform in ``[low, high]``, rounded to a multiple of ``q``."""
    return QLogUniform(low, high, q)


def randint(low: int, high: int) -> Domain:
    """Integers in ``[low, high)`` (upper bound excluded)."""
    return RandInt(low, high)


def choice(values: list) -> Domain:
    """One of ``values``, uniformly at random."""
    return Choice(values)


def grid(values: list) -> Domain:
    """All of ``values``: grids are crossed, and ``num_samples`` repeats the whole grid."""
    return Grid(values)


def sample_from(fn: Callable[[dict], Any]) -> Domain:
    """A value computed by ``fn(config)`` from the config sampled so far."""
    return SampleFrom(fn)


_RANGE_DOMAINS = {"uniform": (Uniform, 2), "loguniform": (LogUniform, 2),
                  "quniform": (QUniform, 3), "qloguniform": (QLogUniform, 3)}
_LIST_DOMAINS = {"choice": Choice, "grid": Grid}
DOMAIN_NAMES = sorted([*_RANGE_DOMAINS, *_LIST_DOMAINS, "randint"])


def _parse_domain(where: str, kind: str, args: Any) -> Domain:
    where = f"{where}.{kind}"
    if kind in _LIST_DOMAINS:
        return _LIST_DOMAINS[kind](args, where=where)
    if not isinstance(args, (list, tuple)):
        raise SpecError(where, f"expected a list [low, high{', q' if kind.startswith('q') else ''}], got {args!r}")
    if kind == "randint":
        if len(args) != 2:
            raise SpecError(where, f"expected [low, high], got {len(args)} values")
        return RandInt(*args, where=where)
    cls, n = _RANGE_DOMAINS[kind]
    if len(args) != n:
        shape = "[low, high]" if n == 2 else "[low, high, q]"
        raise SpecError(where, f"expected {shape}, got {len(args)} values")
    return cls(*args, where=where)


def parse_space(raw: Any, where: str = "space") -> dict:
    """Turn a YAML or Python space into a nested dict of constants and Domains.

    Raises:
        SpecError: naming the first malformed entry, e.g. ``space.lr.loguniform``.
    """
    if not isinstance(raw, Mapping):
        raise SpecError(where, f"expected a mapping of hyperparameter names, got {type(raw).__name__}")
    space: dict = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key or "/" in key:
            raise SpecError(f"{where}.{key}", "names must be non-empty strings without '/'")
        space[key] = _parse_value(f"{where}.{key}", value)
    return space


def _parse_value(where: str, value: Any) -> Any:
    if isinstance(value, Domain):
        return value
    if callable(value):
        return SampleFrom(value, where=where)
    if isinstance(value, Mapping):
        if len(value) == 1:
            (kind, args), = value.items()
            if kind in DOMAIN_NAMES:
                return _parse_domain(where, kind, args)
            if kind == CONSTANT:  # a mapping taken as it is, never read as domains
                return args
            if kind == "sample_from":
                raise SpecError(f"{where}.sample_from", "sample_from needs a Python function; use hpctune.sample_from in Python")
            _refuse_near_domain(where, kind, args)
        return parse_space(value, where)
    return value


CONSTANT = "constant"
"""``{name: {constant: VALUE}}``: VALUE as it is, even a mapping that looks like a domain."""


def _refuse_near_domain(where: str, kind: Any, args: Any) -> None:
    """A one-key mapping that is almost a domain (a typo such as ``loguniforn``, or any name with a
    ``[low, high]`` pair) is refused rather than taken as a nested constant."""
    import difflib

    close = difflib.get_close_matches(str(kind), [*DOMAIN_NAMES, CONSTANT], n=1, cutoff=0.75)
    pair = (isinstance(args, (list, tuple)) and len(args) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in args))
    if not close and not pair:
        return
    hint = f"did you mean '{close[0]}'?" if close else f"domains are {', '.join(DOMAIN_NAMES)}"
    raise SpecError(where, f"'{kind}' is not a domain ({hint}); to mean a constant mapping, write "
                           f"{{{CONSTANT}: {{{kind}: ...}}}}")


def flatten(tree: Mapping, prefix: str = "") -> dict:
    """Nested mapping -> flat ``{"a/b": value}``."""
    flat: dict = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not isinstance(value, Domain):
            flat.update(flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def unflatten(flat: Mapping) -> dict:
    """Flat ``{"a/b": value}`` -> nested mapping."""
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = name.split("/")
        for part in parents:
            node = node.setdefault(sys.intern(part), {})
        node[sys.intern(leaf)] = value  # one copy of each name for all the configs a coordinator holds
    return tree


def space_to_json(space: Mapping) -> dict:
    """A JSON-able form of a space, used to store it and to refuse a changed space on resume."""
    return {name: value.to_json() if isinstance(value, Domain) else value
            for name, value in flatten(space).items()}


class GridPoints:
    """The cross product of the domains for which ``crossed(domain)`` is true, never materialised.

    Point ``i`` is decoded from ``i`` in mixed radix, the last-declared name
    being the fastest digit: the order of ``itertools.product`` over the
    domains' values, so a grid of 10**10 points costs no more than one of 10.
    Only finite domains (grid, choice, randint) may be crossed.

    Args:
        space: a parsed space (see :func:`parse_space`).
        crossed: which domains to cross; the others are left out of the points.
    """

    def __init__(self, space: Mapping, crossed: Callable[[Domain], bool]):
        flat = flatten(space)
        self._domains = [(name, value) for name, value in flat.items()
                         if isinstance(value, Domain) and crossed(value)]
        # a plain int, not len(): len() must fit in a C ssize_t and a product of randint ranges need not
        self.size = math.prod(domain.size() for _, domain in self._domains)

    def __getitem__(self, index: int) -> dict:
        """The flat ``{name: value}`` assignment of point ``index`` (0 <= index < size)."""
        if not 0 <= index < self.size:
            raise IndexError(f"grid point {index} out of range (the grid has {self.size})")
        point = {}
        for name, domain in reversed(self._domains):
            index, digit = divmod(index, domain.size())
            point[name] = domain.value_at(digit)
        return {name: point[name] for name, _ in self._domains}


def sample_config(space: Mapping, fixed: Mapping, rng: np.random.Generator) -> dict:
    """One nested config: ``fixed`` flat values first, the other domains sampled.

    Names are filled in declaration order; a ``sample_from`` function sees the
    config (nested) sampled so far.
    """
    flat: dict = {}
    for name, value in flatten(space).items():
        if name in fixed:
            flat[name] = fixed[name]
        elif isinstance(value, SampleFrom):
            flat[name] = value.sample(rng, unflatten(flat))
        elif isinstance(value, Domain):
            flat[name] = value.sample(rng, flat)
        else:
            flat[name] = value
    return unflatten(flat)
