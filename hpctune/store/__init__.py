"""Storage: the experiment folder (snapshots, part files, journal) and checkpoint files."""
from __future__ import annotations

from .checkpoint import load_checkpoint, save_checkpoint
from .experiment import (EXPERIMENT_FILE, ExperimentDamaged, ExperimentStore, ExperimentView, is_experiment,
                         load_experiment)

__all__ = ["ExperimentStore", "ExperimentView", "ExperimentDamaged", "load_experiment", "is_experiment",
           "EXPERIMENT_FILE", "save_checkpoint", "load_checkpoint"]
