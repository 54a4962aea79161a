"""The lines hpctune adds to the batch script submitit writes for ``hpctune submit``
(:mod:`hpctune.slurm.submit`), in the order the script runs them:

1. :data:`RANKS_OF_THIS_ALLOCATION`: the ranks' step sized by the nodes this allocation got;
2. :data:`CLEAR_STALE_SEGMENTS`: MPICH's shared memory a killed earlier allocation left, removed;
3. :func:`guard_nodes`: a guard on each node but the first (:mod:`hpctune.slurm.node_loss`);
4. :func:`ranks_step_start`: when the ranks' step starts, and where its coordinator records it;
5. the ranks' step itself (submitit's ``srun``, with :data:`KILL_ON_BAD_EXIT` and ``--mpi`` from
   :func:`mpi_plugin`), then :func:`relaunch_on_node_loss`: the step again where a node was lost
   or it failed to start.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import submitit

from .allocation import JOBS_FILE

__all__ = ["mpi_plugin", "CLEAR_STALE_SEGMENTS", "RANKS_OF_THIS_ALLOCATION", "ranks_step_start", "KILL_ON_BAD_EXIT",
           "ranks_step", "guard_nodes", "relaunch_on_node_loss"]


def mpi_plugin() -> str | None:
    """``srun --mpi`` for the MPI mpi4py uses: pmi2 for MPICH and Intel MPI (the ``mpich`` wheel
    included), pmix for Open MPI, else the cluster's default (None)."""
    probe = ("import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI; "
             "print(MPI.Get_library_version())")
    try:
        version = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    if "Open MPI" in version:
        return "pmix"
    if "MPICH" in version or "Intel(R) MPI" in version:
        return "pmi2"
    return None


CLEAR_STALE_SEGMENTS = ("srun --nodes=$SLURM_JOB_NUM_NODES --ntasks=$SLURM_JOB_NUM_NODES --ntasks-per-node=1 "
                        f"--mpi=none {shlex.quote(sys.executable)} -m hpctune.slurm.job clear-mpich-shm")
"""A step before the ranks': on each node, remove MPICH's shared memory that a killed earlier
allocation of this job left (it would hang the ranks' ``MPI_Init``; :func:`hpctune.slurm.job.stale_mpich_segments`)."""


RANKS_OF_THIS_ALLOCATION = ("export SLURM_NTASKS=$((SLURM_JOB_NUM_NODES * SLURM_NTASKS_PER_NODE)) "
                            "SLURM_NPROCS=$((SLURM_JOB_NUM_NODES * SLURM_NTASKS_PER_NODE))")
"""A job requeued onto fewer nodes keeps its first allocation's task count in the batch script's
environment: the ranks' step takes as many ranks a node as before on the nodes it got."""


def ranks_step_start(folder: Path) -> str:
    """The batch script's last line before the ranks' step: when it started, and the experiment's
    ``slurm.json`` (its coordinator records each allocation there), for the line after it: a step
    that ended before its coordinator started is started again (:func:`hpctune.slurm.node_loss.relaunch`)."""
    return f"export HPCTUNE_RANKS_STARTED=$(date +%s) HPCTUNE_RANKS_RECORD={shlex.quote(str(folder / JOBS_FILE))}"


KILL_ON_BAD_EXIT = "--kill-on-bad-exit=1"
"""The ranks' step ends as soon as one rank fails (one failed in ``MPI_Init``, say) instead of
leaving the others waiting on it until the time limit."""


def ranks_step(logs: Path, srun_args: list[str]) -> list[str]:
    """The batch script's step of the ranks, as submitit writes it."""
    return ["srun", "--unbuffered", "--output", str(submitit.core.utils.JobPaths(folder=logs).stdout), *srun_args,
            sys.executable, "-u", "-m", "submitit.core._submit", str(logs)]


def guard_nodes(logs: Path) -> str:
    """A guard on each node but the batch script's, which requeues the job if that node is lost
    (:mod:`hpctune.slurm.node_loss`)."""
    return (f"{shlex.quote(sys.executable)} -m hpctune.slurm.node_loss start-guards "
            f"{shlex.quote(str(logs / '%j_guard_%N.out'))}")


def relaunch_on_node_loss(logs: Path, srun_args: list[str]) -> str:
    """The batch script's line after the ranks' step (whose exit status is ``$?``): the same step,
    started again on the nodes left while a node of the allocation is lost (:mod:`hpctune.slurm.node_loss`)."""
    return (f"{shlex.quote(sys.executable)} -m hpctune.slurm.node_loss relaunch $? -- "
            f"{shlex.join(ranks_step(logs, srun_args))}")
