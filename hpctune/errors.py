"""Exceptions that hpctune raises for its users."""
from __future__ import annotations


class HpctuneError(Exception):
    """Base class of hpctune's own errors."""


class SpecError(HpctuneError, ValueError):
    """Bad input: a spec field, a search-space entry or a command-line value.

    Args:
        where: dotted path of the offending field, e.g. ``space.lr.loguniform``.
        what: what is wrong with it, one line.
    """

    def __init__(self, where: str, what: str):
        self.where = where
        self.what = what
        super().__init__(f"{where}: {what}" if where else what)


class ExperimentError(HpctuneError):
    """The experiment could not finish (CLI exit code 1)."""
