"""Random search, with ``grid`` domains crossed (``num_samples`` repeats the whole grid)."""
from __future__ import annotations

import numpy as np

from ..space import Domain, Grid, GridPoints, sample_config
from ._base import FINISHED, SEARCHERS, Searcher, check_seed


@SEARCHERS.register
class RandomSearcher(Searcher):
    """Samples every domain at random, except ``grid`` domains, which are crossed.

    Trials are ``num_samples`` repetitions of the grid; within one repetition
    the grid points come in a fixed order. Seeded: same space and seed, same configs.

    Args:
        seed: overrides the experiment's seed for this searcher.
    """

    name = "random"

    def __init__(self, *, seed: int | None = None):
        check_seed(seed)
        self._seed_override = seed
        self._count = 0

    def _crossed(self, domain: Domain) -> bool:
        return isinstance(domain, Grid)

    def setup(self, space, metric, mode, num_samples, seed):
        super().setup(space, metric, mode, num_samples, seed)
        seed = self._seed_override if self._seed_override is not None else seed
        self._rng = np.random.default_rng(seed)
        self._points = GridPoints(space, self._crossed)

    def total_trials(self):
        return self.num_samples * self._points.size

    def suggest(self, trial_id):
        if self._count >= self.total_trials():
            return FINISHED
        point = self._points[self._count % self._points.size]
        self._count += 1
        return sample_config(self.space, point, self._rng)

    def state_dict(self):
        return {"count": self._count, "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state):
        self._count = state["count"]
        self._rng.bit_generator.state = state["rng"]
