"""Storage: the experiment folder (snapshots, part files, journal) and checkpoint files.

Names load on first use, so that a trial's process, which needs only
:mod:`.checkpoint`, does not import the coordinator's store.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_LAZY = {"load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint", "EXPERIMENT_FILE": "head",
         "LAUNCHER_FILES": "head",
         "ExperimentStore": "experiment",  # the coordinator's writer; readers need only .view
         **dict.fromkeys(["ExperimentDamaged", "ExperimentView", "is_experiment", "load_experiment"], "view")}

__all__ = ["ExperimentStore", "ExperimentView", "ExperimentDamaged", "load_experiment", "is_experiment",
           "EXPERIMENT_FILE", "LAUNCHER_FILES", "save_checkpoint", "load_checkpoint"]

if TYPE_CHECKING:
    from .checkpoint import load_checkpoint, save_checkpoint
    from .experiment import ExperimentStore
    from .head import EXPERIMENT_FILE, LAUNCHER_FILES
    from .view import ExperimentDamaged, ExperimentView, is_experiment, load_experiment


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpctune.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
