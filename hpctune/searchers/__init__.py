"""Searchers: decide the config of each new trial. Registered by name."""
from __future__ import annotations

from typing import Any

from ._base import FINISHED, SEARCHERS, Searcher
from ._grid import GridSearcher
from ._random import RandomSearcher

__all__ = ["Searcher", "RandomSearcher", "GridSearcher", "FINISHED", "SEARCHERS", "build_searcher"]


def build_searcher(raw: Any) -> tuple[Searcher, dict]:
    """A searcher from a name, ``{type: NAME, **options}`` or an instance."""
    return SEARCHERS.build(raw, Searcher)
