"""Exceptions that hpctune raises for its users."""
from __future__ import annotations

import os
from pathlib import Path


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


class ExperimentInterrupted(ExperimentError):
    """The experiment stopped before its end (signal, time limit); ``hpctune resume`` continues it."""

    def __init__(self, folder: Path, why: str | None = None):
        self.folder = folder
        because = f" ({why})" if why else ""
        super().__init__(f"experiment interrupted{because}; continue it with 'hpctune resume {folder}'")


class SimulationInterrupted(ExperimentInterrupted):
    """A simulation stopped before its end (a signal): its folder keeps what was simulated, and is never resumed."""

    def __init__(self, folder: Path):
        self.folder = folder
        ExperimentError.__init__(self, f"simulation interrupted; {folder} keeps what was simulated until then "
                                       "(a simulation is never resumed: run it again under another name)")


class ExperimentRequeued(ExperimentInterrupted):
    """The allocation ended: the running trials paused at a checkpoint, and the Slurm job was
    requeued; its next allocation continues the experiment."""

    announced = False
    """True once the message went to stderr (before ``scontrol requeue``): the CLI does not repeat it."""

    def __init__(self, folder: Path, job_id: str, allocation: int):
        self.folder = folder
        ExperimentError.__init__(self, f"this allocation ends: Slurm job {job_id} requeued (restart {allocation}); "
                                       f"its next allocation continues {folder}")


def exit_status(exc: BaseException) -> tuple[int, str | None]:
    """The ``hpctune`` command's exit code for ``exc`` and the line it prints on stderr (None: nothing,
    as for a requeue already announced): ``hpctune: error: <where>: <what>`` for bad input (2).

    Raises:
        TypeError: ``exc`` is none of hpctune's errors nor a KeyboardInterrupt (a bug: let it show).
    """
    if isinstance(exc, SpecError):
        return EXIT_BAD_INPUT, f"hpctune: error: {exc}"
    if isinstance(exc, ExperimentRequeued):
        return EXIT_REQUEUED, None if exc.announced else f"hpctune: {exc}"
    if isinstance(exc, ExperimentInterrupted):
        return EXIT_FAILED, f"hpctune: {exc}"
    if isinstance(exc, HpctuneError):
        return EXIT_FAILED, f"hpctune: error: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_FAILED, "hpctune: interrupted"
    raise TypeError(f"not an hpctune error: {exc!r}")
