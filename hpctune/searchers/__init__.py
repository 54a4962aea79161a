"""Searchers: decide the config of each new trial. Registered by name."""
from __future__ import annotations

from typing import Any

from ._base import FINISHED, SEARCHERS, Searcher
from ._grid import GridSearcher
from ._random import RandomSearcher
from ._optuna import CmaEsSearcher, GPSearcher, OptunaSearcher, QMCSearcher, TPESearcher

__all__ = ["Searcher", "RandomSearcher", "GridSearcher", "OptunaSearcher", "TPESearcher", "GPSearcher",
           "CmaEsSearcher", "QMCSearcher", "FINISHED", "SEARCHERS", "build_searcher"]


def build_searcher(raw: Any) -> Searcher:
    """A new searcher from a name or a description ``{"type": NAME, **options}``.

    Raises:
        SpecError: unknown type or option, or a bad option value, naming it (``searcher.<option>``).
    """
    return SEARCHERS.build(raw)
