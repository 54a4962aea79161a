"""The experiment core: trials, scheduler, searcher and store, driven by events; no MPI, no ranks.

:class:`Controller` decides *what* runs (which trial, from which checkpoint, with which config)
and journals every event; a backend decides *where* and feeds it events. Besides the controller
(:mod:`.core`) and its parts (:mod:`.resume`, :mod:`.payloads`, :mod:`.checkpoints`,
:mod:`.controls`, :mod:`.new_trials`, :mod:`.suggestions`, :mod:`.walltime`), this package holds
what every backend's coordinator does around it (:mod:`.housekeeping`) and what a resumed
experiment may change (:mod:`.spec_changes`).
"""
from __future__ import annotations

from .core import Controller, ControlMessage, Launch, build_algorithms

__all__ = ["Controller", "ControlMessage", "Launch", "build_algorithms"]
