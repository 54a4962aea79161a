"""Grid search: every finite domain (grid, choice, randint) is crossed."""
from __future__ import annotations

from ..space import Choice, RandInt
from ._base import SEARCHERS
from ._random import RandomSearcher


@SEARCHERS.register
class GridSearcher(RandomSearcher):
    """Crosses ``grid``, ``choice`` and ``randint`` domains; continuous domains are sampled.

    ``num_samples`` repeats the whole grid, each repetition with fresh samples
    of the continuous domains. Seeded like :class:`RandomSearcher`.
    """

    name = "grid"

    def _crossed(self, domain):
        return isinstance(domain, (Choice, RandInt))
