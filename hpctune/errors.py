"""Exceptions that hpctune raises for its users."""
from __future__ import annotations

import os


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REQUEUED = 0, 1, 2, 3
"""The ``hpctune`` command's exit codes: finished; the experiment could not finish (or stopped before
its end); bad input (:class:`SpecError`, one line); the Slurm allocation ended and the job is queued again."""


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


class StorageFailed(ExperimentError):
    """The experiment folder could not be written (a full disk, a quota): the experiment stopped
    with everything accepted kept; ``hpctune resume`` continues it once there is space.

    Args:
        folder: the experiment folder.
        reason: e.g. ``no space left on device``.
    """

    def __init__(self, folder, reason: str):
        self.folder = folder
        self.reason = reason
        super().__init__(f"{folder}: {reason}")


def describe_os_error(exc: OSError) -> str:
    """'no space left on device' for ENOSPC, likewise for any errno; the message otherwise."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)
