"""The ``mpi`` backend: worker ranks from the MPI launcher, or spawned ones.

Under ``mpiexec``/``srun`` the ranks of COMM_WORLD are the workers and rank 0
coordinates; started alone, the coordinator spawns its workers
(``MPI_Comm_spawn``). Either way the loops of :mod:`hpctune.backends.mpi.coordinator` serve
them, and a stop the coordinator cannot make cleanly ends every rank, so that
an allocation never hangs.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import TYPE_CHECKING, Any

from ...errors import HpctuneError, SpecError, StorageFailed
from .._base import BACKENDS, Backend

if TYPE_CHECKING:  # a worker rank never loads the coordinator's side
    from ...reporting.live.console import Console
    from ...controller.core import Controller
    from ...controller.housekeeping import Housekeeping

__all__ = ["MPIBackend"]


@BACKENDS.register
class MPIBackend(Backend):
    """Worker ranks on MPI: COMM_WORLD's under a launcher, else ``workers`` spawned ones
    (default: the number of cores, at least 2).

    Raises:
        SpecError: mpi4py is not installed.
    """

    name = "mpi"

    def __init__(self, workers: int | None = None, trainable: Any = None):
        # launch.py is imported when used, never with this module: it is the spawned ranks' __main__
        from .launch import import_mpi

        super().__init__(workers or max(2, os.cpu_count() or 1), trainable)
        MPI = import_mpi()
        if MPI is None:
            raise SpecError("backend", "mpi4py is not installed (pip install 'hpctune[mpich]')")
        world = MPI.COMM_WORLD
        self.world = world if world.Get_size() > 1 else None  # None: no launcher, workers are spawned
        if self.world is not None:  # collective over every rank, first thing: workers learn their nodes
            from ..gpus import node_of

            self.node = node_of(world)
            self.nodes = world.allgather(self.node)  # each rank's: who shares the coordinator's node
        else:  # the workers it will spawn take their nodes from HPCTUNE_NODE_OF_RANK: refused now if it is wrong
            from ..gpus import node_names

            node_names(self.workers + 1)

    def _workers_off_node(self) -> bool:
        """Whether a worker rank of the launched world is on another node than the coordinator."""
        return any(node != self.nodes[0] for node in self.nodes[1:])

    @property
    def is_worker(self) -> bool:
        return self.world is not None and self.world.Get_rank() != 0

    def serve_worker(self) -> None:
        from .worker_loop import serve_worker

        serve_worker(self.world, worker_id=self.world.Get_rank(), node=self.node, off_node=self.node != self.nodes[0])

    def release(self) -> None:
        """Let the worker ranks of an ``mpiexec`` world go (they wait for work)."""
        if self.world is not None:
            from .workers import MPIWorkers

            pool = MPIWorkers(self.world, spawned=False, off_node=self._workers_off_node())
            pool.shutdown()
            pool.release()

    def serve(self, controller: Controller, housekeeping: Housekeeping, console: Console, action: str) -> str:
        from .launch import spawn_workers
        from .coordinator import serve_coordinator
        from .workers import MPIWorkers

        try:  # bad input is refused before any worker is spawned or waited for
            watchdog = _watchdog_settings()
            self._check_group_size(controller.spec.resources.ranks_per_trial)
        except SpecError:
            self.release()
            raise
        housekeeping.defer_second_signal = True  # a second Ctrl-C while spawning is acted on by the loop
        if self.world is not None:
            pool = MPIWorkers(self.world, spawned=False, off_node=self._workers_off_node())
        else:
            pool = MPIWorkers(spawn_workers(self.workers), spawned=True)
        how = "spawned" if pool.spawned else _launcher()
        console.message(f"{action} {controller.store.folder}: {len(pool.ids)} worker ranks ({how})")
        try:
            status = serve_coordinator(controller, pool, housekeeping, **watchdog)
        except (SpecError, StorageFailed):  # a clean stop: every worker got SHUTDOWN
            pool.release()
            raise
        except BaseException as exc:
            # never leave an allocation hanging: the journal holds every accepted event, so end every rank now
            if isinstance(exc, HpctuneError):
                print(f"hpctune: error: {exc}; continue it with 'hpctune resume {controller.store.folder}'",
                      file=sys.stderr, flush=True)
            elif not isinstance(exc, KeyboardInterrupt):
                traceback.print_exc()
            pool.end_now()  # exit code 1 under mpiexec and with spawned workers alike
        pool.release()
        return status


    def _check_group_size(self, ranks_per_trial: int) -> None:
        workers = self.world.Get_size() - 1 if self.world is not None else self.workers
        if ranks_per_trial > workers:
            raise SpecError("resources.ranks_per_trial", f"{ranks_per_trial} ranks per trial, but this run has "
                                                         f"{workers} worker ranks")


def _watchdog_settings() -> dict:
    text = os.environ.get("HPCTUNE_WORKER_TIMEOUT")
    if text is None:
        return {}
    try:
        return {"worker_timeout": float(text)}
    except ValueError:
        raise SpecError("HPCTUNE_WORKER_TIMEOUT", f"expected seconds, got {text!r}") from None


def _launcher() -> str:
    """What started this job's ranks, for the start-up line: ``srun`` (Slurm's PMI names the job
    ``<job id>.<step id>``) or ``mpiexec``."""
    name = f"{os.environ.get('SLURM_JOB_ID')}.{os.environ.get('SLURM_STEP_ID')}"
    by_slurm = os.environ.get("PMI_JOBID") == name or os.environ.get("PMIX_NAMESPACE") == f"slurm.pmix.{name}"
    return "srun" if by_slurm else "mpiexec"
