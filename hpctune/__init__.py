"""hpctune: hyperparameter tuning on MPI ranks and Slurm allocations.

Training side: :func:`report`, :func:`get_checkpoint`, :func:`get_config`,
:class:`Trainable`. Driving side: :func:`run`, :class:`Analysis`, and the
search-space domains.
"""
from __future__ import annotations

from ._version import __version__
from .api import ExperimentInterrupted, run
from .errors import ExperimentError, HpctuneError, SpecError, StorageFailed
from .session import Trainable, get_checkpoint, get_config, get_trial_dir, get_trial_id, report
from .space import choice, grid, loguniform, qloguniform, quniform, randint, sample_from, uniform

__all__ = [
    "__version__", "run", "Analysis", "report", "get_checkpoint", "get_config", "get_trial_id",
    "get_trial_dir", "Trainable", "uniform", "loguniform", "quniform", "qloguniform", "randint",
    "choice", "grid", "sample_from", "SpecError", "HpctuneError", "ExperimentError", "ExperimentInterrupted",
    "StorageFailed",
]


def __getattr__(name: str):
    # Analysis needs pandas, which costs ~150 ms to import: coordinators and workers never load it
    if name == "Analysis":
        from .analysis import Analysis

        return Analysis
    raise AttributeError(f"module 'hpctune' has no attribute {name!r}")
