"""hpctune: hyperparameter tuning on MPI ranks and Slurm allocations.

Training side: :func:`report`, :func:`get_checkpoint`, :func:`get_config`,
:func:`checkpoint_requested`, :func:`get_comm` (a multi-rank trial's communicator), :class:`Trainable`. Driving side: :func:`run`, :class:`Analysis`, and the
search-space domains.

Each name is imported on first use (PEP 562): a trial's process that only calls
``hpctune.report`` never loads the spec, YAML or pandas machinery, so trials
start sooner.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__
from .errors import ExperimentError, HpctuneError, SpecError, StorageFailed

_LAZY = {
    "run": "api", "ExperimentInterrupted": "errors", "Analysis": "reporting.analysis",
    **dict.fromkeys(["Trainable", "checkpoint_requested", "get_checkpoint", "get_config", "get_trial_dir",
                     "get_trial_id", "get_comm", "report"], "session"),
    **dict.fromkeys(["choice", "grid", "loguniform", "qloguniform", "quniform", "randint", "sample_from",
                     "uniform"], "space"),
}

__all__ = [
    "__version__", "run", "Analysis", "report", "get_checkpoint", "get_config", "checkpoint_requested", "get_trial_id",
    "get_trial_dir", "get_comm", "Trainable", "uniform", "loguniform", "quniform", "qloguniform", "randint",
    "choice", "grid", "sample_from", "SpecError", "HpctuneError", "ExperimentError", "ExperimentInterrupted",
    "StorageFailed",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time each name loads on first use
    from .reporting.analysis import Analysis
    from .api import run
    from .errors import ExperimentInterrupted
    from .session import (Trainable, checkpoint_requested, get_checkpoint, get_comm, get_config, get_trial_dir,
                          get_trial_id, report)
    from .space import choice, grid, loguniform, qloguniform, quniform, randint, sample_from, uniform


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpctune' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
