"""Simulate an experiment in memory: :func:`simulate` (``hpctune plan`` calls it for every
allocation size and seed). ``hpctune run --backend sim`` runs the same simulation into an
experiment folder instead (:mod:`hpctune.backends.sim.backend`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .cluster import SimOutcome, VirtualClock, VirtualCluster
from ...controller.core import Controller
from ...spec import ExperimentSpec
from .memory_store import MemoryStore
from .surrogates import Surrogate

__all__ = ["simulate", "Simulation"]


@dataclass
class Simulation:
    """One simulated run: what was measured, the controller at the end (its trials, scheduler
    and searcher), the store (its records, if kept) and the log of results (if kept)."""

    outcome: SimOutcome
    controller: Controller
    store: MemoryStore
    log: list[tuple] | None


def simulate(spec: ExperimentSpec, surrogate: Surrogate, workers: int, *, seed: int | None = None,
             keep_records: bool = False, log: bool = False, coordinator_s_per_message: float = 0.0) -> Simulation:
    """Run ``spec`` on ``workers`` virtual workers in memory (nothing is written).

    Args:
        seed: the searcher's and scheduler's seed instead of the spec's.
        keep_records: keep every record the controller makes (``simulation.store.records``).
        log: keep one ``(time, trial, iteration, decision)`` per result (``simulation.log``).
        coordinator_s_per_message: virtual seconds the coordinator takes per message, handled one at a
            time in arrival order (default 0: instant answers; see :mod:`hpctune.backends.sim.cluster`).

    Raises:
        SpecError: a bad ``coordinator_s_per_message``, nothing ends a simulated trial, a trial needs more ranks than ``workers``, or the
            surrogate returned something that is not ``(metrics, seconds)`` (one that raises, or
            reports a metric that is no number, fails its trial instead).
    """
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    clock = VirtualClock()
    store = MemoryStore(spec.experiment_dir, spec.to_json(), keep_records=keep_records)
    controller = Controller(spec, store, clock=clock)
    cluster = VirtualCluster(controller, surrogate, workers, clock, log=log,
                             coordinator_s_per_message=coordinator_s_per_message)
    return Simulation(cluster.run(), controller, store, cluster.log)
