"""Schedulers: decide when trials continue, pause or stop. Registered by name."""
from __future__ import annotations

from typing import Any

from ._asha import AsyncSuccessiveHalving
from ._base import SCHEDULERS, Scheduler, SchedulerDecision, metric_value
from ._fifo import FIFOScheduler
from ._hyperband import HyperBand
from ._median import MedianStopping
from ._pbt import PopulationBasedTraining
from ._sha import SuccessiveHalving

__all__ = ["Scheduler", "SchedulerDecision", "FIFOScheduler", "SuccessiveHalving", "AsyncSuccessiveHalving",
           "HyperBand", "MedianStopping", "PopulationBasedTraining", "SCHEDULERS", "build_scheduler",
           "metric_value"]


def build_scheduler(raw: Any) -> Scheduler:
    """A new scheduler from a name or a description ``{"type": NAME, **options}``.

    Raises:
        SpecError: unknown type or option, or a bad option value (``scheduler.max_t: ...``).
    """
    return SCHEDULERS.build(raw)
