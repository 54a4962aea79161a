"""hpctune's search space as Optuna distributions, and back.

=====================  ==========================================================================
hpctune                Optuna
=====================  ==========================================================================
``uniform``            ``FloatDistribution(low, high)``
``loguniform``         ``FloatDistribution(low, high, log=True)``
``quniform``           ``IntDistribution(low, high, step=q)`` for integers, else
                       ``FloatDistribution(low, high, step=q)`` (steps counted from ``low``)
``qloguniform``        ``IntDistribution(low, high, log=True)`` for integers with ``q = 1``, else
                       ``FloatDistribution(low, high, log=True)``, rounded to ``q`` afterwards
``randint``            ``IntDistribution(low, high - 1)`` (hpctune's ``high`` is excluded)
``choice``             ``CategoricalDistribution`` of the choices' positions (any value may be a
                       choice: lists, mappings, ``None``)
``grid``               not given to Optuna: crossed by the searcher itself
``sample_from``        not given to Optuna: computed from the config afterwards
constants              not given to Optuna: copied into every config
=====================  ==========================================================================

Nested names are flattened with ``/`` (``optimizer/lr``), as everywhere in hpctune.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from ..space import Choice, Domain, Grid, LogUniform, QLogUniform, QUniform, RandInt, SampleFrom, Uniform, flatten

__all__ = ["OptunaSpace", "value_at"]


class OptunaSpace:
    """The distributions of a parsed space's sampled domains, and the two ways between an Optuna
    trial's params and hpctune's config values.

    Raises:
        TypeError: a domain this mapping does not know (a new domain type needs a line here).
    """

    def __init__(self, space: Mapping):
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        self.domains: dict[str, Domain] = {}
        self.distributions: dict = {}
        for name, domain in flatten(space).items():
            if not isinstance(domain, Domain) or isinstance(domain, (Grid, SampleFrom)):
                continue
            if isinstance(domain, Choice):
                distribution = CategoricalDistribution(list(range(len(domain.choices))))
            elif isinstance(domain, RandInt):
                distribution = IntDistribution(domain.low, domain.high - 1)
            elif isinstance(domain, QUniform):
                distribution = (IntDistribution(domain.low, domain.high, step=domain.q) if _integers(domain)
                                else FloatDistribution(domain.low, domain.high, step=domain.q))
            elif isinstance(domain, QLogUniform):
                distribution = (IntDistribution(domain.low, domain.high, log=True)
                                if _integers(domain) and domain.q == 1
                                else FloatDistribution(domain.low, domain.high, log=True))
            elif isinstance(domain, LogUniform):
                distribution = FloatDistribution(domain.low, domain.high, log=True)
            elif isinstance(domain, Uniform):
                distribution = FloatDistribution(domain.low, domain.high)
            else:
                raise TypeError(f"{name}: no Optuna distribution for {type(domain).__name__}")
            self.domains[name] = domain
            self.distributions[name] = distribution

    def values_of(self, params: Mapping) -> dict:
        """An Optuna trial's params -> flat config values."""
        values = {}
        for name, domain in self.domains.items():
            value = params[name]
            if isinstance(domain, Choice):
                value = domain.choices[value]
            elif isinstance(domain, QLogUniform) and not (_integers(domain) and domain.q == 1):
                value = min(max(round(value / domain.q) * domain.q, domain.low), domain.high)
                value = int(value) if _integers(domain) else value
            values[name] = value
        return values

    def params_of(self, config: Mapping) -> dict:
        """A config's values -> Optuna params (the way back, for configs recorded in the journal)."""
        params = {}
        for name, domain in self.domains.items():
            value = value_at(config, name)
            if isinstance(domain, Choice):
                value = _position(domain.choices, value)
            params[name] = value
        return params


def value_at(config: Mapping, name: str):
    """``config``'s value of the flattened ``name`` (``a/b``): the path walked, so that a value that is
    itself a mapping (a ``choice`` of mappings) comes back whole."""
    value = config
    for key in name.split("/"):
        value = value[key]
    return value


def _integers(domain) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in (domain.low, domain.high, domain.q))


def _position(choices: list, value) -> int:
    for index, choice in enumerate(choices):
        if choice == value and type(choice) is type(value):
            return index
    for index, choice in enumerate(choices):  # 1 == 1.0 once through JSON
        if choice == value or (isinstance(choice, float) and isinstance(value, float) and math.isclose(choice, value)):
            return index
    raise ValueError(f"{value!r} is not one of the choices {choices!r}")
