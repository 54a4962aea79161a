"""PBT's default explore step for one hyperparameter: drawn again from its domain, or perturbed
within it (:meth:`hpctune.schedulers.PopulationBasedTraining.explore` applies it to each mutable one)."""
from __future__ import annotations

import numpy as np

from ..space import Choice, Domain, RandInt, SampleFrom, _Continuous

__all__ = ["explored_value"]


def explored_value(value, domain: Domain, rng: np.random.Generator, config: dict, resample_probability: float,
                   perturbation_factors: list[float]):
    """``value`` drawn again from ``domain`` with ``resample_probability`` (always for ``sample_from``);
    else a ``choice``/``grid`` value moves to a neighbour in its list, and a number is multiplied by
    one of ``perturbation_factors`` and kept within the domain's bounds (rounded to its ``q``, an
    integer for ``randint``). ``config``: the whole config, for a domain that depends on it."""
    if isinstance(domain, SampleFrom) or rng.random() < resample_probability:
        return domain.sample(rng, config)
    if isinstance(domain, Choice):  # a neighbour in the list (grid included)
        if value not in domain.choices:
            return domain.sample(rng, config)
        index = domain.choices.index(value) + (1 if rng.random() < 0.5 else -1)
        return domain.choices[min(max(index, 0), len(domain.choices) - 1)]
    factor = perturbation_factors[int(rng.integers(len(perturbation_factors)))]
    if isinstance(domain, RandInt):
        return int(min(max(round(value * factor), domain.low), domain.high - 1))
    if isinstance(domain, _Continuous):
        moved = min(max(value * factor, domain.low), domain.high)
        if domain.q is not None:
            moved = min(max(round(moved / domain.q) * domain.q, domain.low), domain.high)
            if isinstance(domain.q, int) and isinstance(domain.low, int):
                moved = int(moved)
        return moved
    return value
