"""The experiment core: trials, scheduler, searcher and store, driven by events; no MPI, no ranks.

:class:`Controller` decides *what* runs (which trial, from which checkpoint, with which config)
and journals every event; a backend decides *where* and feeds it events. Its state is declared
once (:mod:`.state`, with :mod:`.state_fields` saying how each field is saved and reset), and its
parts share it: :mod:`.checkpoints`, :mod:`.lifecycle`, :mod:`.controls`, :mod:`.payloads`,
:mod:`.new_trials` (with :mod:`.suggestions`), :mod:`.dispatch`, :mod:`.resume`, :mod:`.walltime`,
over its clock and journal (:mod:`.events`); what it hands the backend is in :mod:`.messages`, its
algorithms are built in :mod:`.algorithms`. This package also holds what every backend's coordinator
does around it (:mod:`.housekeeping`) and what a resumed experiment may change (:mod:`.spec_changes`).
"""
from __future__ import annotations

from .core import Controller, build_algorithms
from .messages import ControlMessage, Launch

__all__ = ["Controller", "ControlMessage", "Launch", "build_algorithms"]
