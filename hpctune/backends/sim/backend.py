"""The ``sim`` backend: a simulation (:class:`~hpctune.backends.sim.cluster.VirtualCluster`) into a folder.

``hpctune run SPEC --backend sim --surrogate MODULE:FUNCTION --workers N
[--coordinator-s-per-message S]`` and ``hpctune.run(..., backend="sim", surrogate=...,
coordinator_s_per_message=S)`` make it; the simulation's settings are kept in the stored spec
(``simulation``), its outcome is shown in the run's closing lines.
"""
from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING

from ...errors import SpecError
from .._base import BACKENDS, Backend
from .cluster import (
    SimOutcome,
    VirtualClock,
    VirtualCluster,
    check_workers,
    iteration_limit,
)
from .coordinator_queue import check_s_per_message

if TYPE_CHECKING:
    from ...controller.core import Controller
    from ...controller.housekeeping import Housekeeping
    from ...reporting.live.console import Console
    from ...spec import ExperimentSpec
    from .surrogates import Surrogate

__all__ = ["SimBackend", "coordinator_line", "launcher_ranks"]


@BACKENDS.register
class SimBackend(Backend):
    """Virtual workers and a virtual clock (see :mod:`hpctune.backends.sim.cluster`).

    Args:
        workers: virtual worker ranks (default: this machine's cores, at least 2, as for ``mpi``).
        surrogate: a :class:`~hpctune.backends.sim.surrogates.Surrogate`, or its text for
            :func:`~hpctune.backends.sim.surrogates.load_surrogate` (``module:function`` or an experiment folder),
            loaded once the spec is known.
        coordinator_s_per_message: the coordinator's virtual seconds per message (default 0: every
            answer is instant; see :mod:`hpctune.backends.sim.coordinator_queue`).

    Raises:
        SpecError: under an MPI launcher with more than one rank, or ``coordinator_s_per_message``
            is no number >= 0.
    """

    name = "sim"
    simulated = True

    def __init__(self, workers: int | None = None, trainable=None, surrogate: Surrogate | str | None = None,
                 coordinator_s_per_message: float = 0.0):
        launched = launcher_ranks()
        if launched > 1:
            raise SpecError("backend", f"sim runs in one process, not on MPI ranks (this launcher started "
                                       f"{launched}): run it without mpiexec/srun, with --workers for the virtual ones")
        super().__init__(workers, trainable)
        self.surrogate = surrogate
        self.coordinator_s_per_message = check_s_per_message(coordinator_s_per_message)
        self.clock: VirtualClock = VirtualClock()
        self.outcome: SimOutcome | None = None

    @property
    def num_workers(self) -> int:
        return self.workers or max(os.cpu_count() or 2, 2)

    def load_surrogate(self, spec: ExperimentSpec) -> Surrogate:
        """The surrogate, loaded for ``spec`` if it was given as text (once).

        Raises:
            SpecError: none was given, or it cannot be loaded.
        """
        from .surrogates import load_surrogate

        if self.surrogate is None:
            raise SpecError("surrogate", "the sim backend needs a surrogate: --surrogate module:function or "
                                         "--surrogate runs/PILOT (an experiment whose curves and times to replay)")
        if isinstance(self.surrogate, str):
            self.surrogate = load_surrogate(self.surrogate, spec.metric, spec.space)
        return self.surrogate

    def store_options(self, spec: ExperimentSpec) -> dict:
        """The simulated store on the virtual clock; the surrogate is loaded and checked here, before
        anything is written."""
        from ...controller.core import build_algorithms
        from .simulated_store import SimulatedStore

        surrogate = self.load_surrogate(spec)
        iteration_limit(spec, surrogate, build_algorithms(spec)[0])
        check_workers(spec, self.num_workers)
        simulation = {"surrogate": surrogate.describe(), "workers": self.num_workers}
        if self.coordinator_s_per_message > 0:  # absent: 0, as in a simulation from before the option
            simulation["coordinator_s_per_message"] = self.coordinator_s_per_message
        return {"store_class": SimulatedStore, "clock": self.clock, "simulation": simulation}

    def serve(self, controller: Controller, housekeeping: Housekeeping, console: Console, action: str) -> str:
        surrogate = self.load_surrogate(controller.spec)
        console.message(f"{action} {controller.store.folder}: a simulation on {self.num_workers} virtual workers, "
                        f"trials from {surrogate.describe()}")
        cluster = VirtualCluster(controller, surrogate, self.num_workers, self.clock,
                                 coordinator_s_per_message=self.coordinator_s_per_message)
        try:
            self.outcome = cluster.run(housekeeping)
        except SpecError:
            raise  # bad input: hpctune.api closes the store and removes the new folder
        except BaseException:
            # A simulation is never resumed, so a folder it leaves unfinished could be neither resumed
            # nor run again under its name: it goes (the simulation runs again in seconds).
            controller.store.close()
            shutil.rmtree(controller.store.folder, ignore_errors=True)
            console.message(f"the simulation did not end: {controller.store.folder} removed (run it again)")
            raise
        outcome = self.outcome
        console.message(f"simulated {_duration(outcome.makespan_s)} of {self.num_workers} workers "
                        f"({outcome.utilization:.0%} busy) in {outcome.events} events")
        if outcome.coordinator_s_per_message > 0:
            console.message(coordinator_line(outcome))
        return outcome.status


def coordinator_line(outcome: SimOutcome) -> str:
    """The closing line on the simulated coordinator: its load, and how long messages queued."""
    return (f"coordinator ({outcome.coordinator_s_per_message:g} s a message): {outcome.coordinator_busy_fraction:.0%} "
            f"busy with {outcome.messages} messages; a message waited {outcome.wait_max_s:.3g} s at most in its "
            f"queue, {outcome.wait_mean_s:.3g} s on average; workers waited for answers "
            f"{outcome.waiting_rank_s / (outcome.workers * outcome.makespan_s or 1):.0%} of their time")


def launcher_ranks() -> int:
    """How many ranks an MPI launcher (MPICH's or Open MPI's mpiexec, Slurm's srun) started, from
    its environment (1 when there is none)."""
    for variable in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS"):
        text = os.environ.get(variable, "")
        if text.isdigit():
            return int(text)
    return 1


def _duration(seconds: float) -> str:
    """``3h 25m 10s``-style virtual time."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return " ".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"
