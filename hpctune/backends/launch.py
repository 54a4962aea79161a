"""Finding or making worker ranks: under an MPI launcher, spawned, or none at all."""
from __future__ import annotations

import os
import signal
import sys

__all__ = ["import_mpi", "world_size", "spawn_workers", "spawned_worker_main"]


def import_mpi():
    """``mpi4py.MPI``, or None if mpi4py (or its MPI library) is not installed.

    The folder of this Python's executable goes first on PATH before MPI starts:
    a process not started by mpiexec can spawn ranks only if the ``mpiexec`` of
    its MPI (the ``mpich`` wheel's, in a virtual environment) is found there.
    """
    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + path
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


def world_size() -> int:
    """Ranks in COMM_WORLD: more than 1 means we were started by mpiexec/srun."""
    MPI = import_mpi()
    return 1 if MPI is None else MPI.COMM_WORLD.Get_size()


def spawn_workers(count: int):
    """Start ``count`` worker ranks with ``MPI_Comm_spawn``; returns the intercommunicator.

    Raises:
        RuntimeError: MPI cannot spawn here (no mpiexec of this MPI on PATH, say).
    """
    MPI = import_mpi()
    if MPI is None:
        raise RuntimeError("mpi4py is not installed (pip install 'hpctune[mpich]')")
    # The process manager that MPI starts for the spawned ranks shares our terminal: with
    # SIGINT/SIGTERM blocked while it starts (a blocked mask is inherited), Ctrl-C reaches the
    # coordinator alone, which pauses the trials and stops cleanly instead of being torn down.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    try:
        return MPI.COMM_SELF.Spawn(sys.executable, args=["-m", "hpctune.backends.launch"], maxprocs=count)
    except MPI.Exception as exc:
        raise RuntimeError(f"MPI could not spawn {count} worker ranks: {exc}") from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def spawned_worker_main() -> None:
    """Entry of a spawned worker rank: serve the parent coordinator, then disconnect."""
    from .mpi import serve_worker

    MPI = import_mpi()
    parent = MPI.Comm.Get_parent()
    try:
        serve_worker(parent, worker_id=parent.Get_rank() + 1)
    finally:
        parent.Disconnect()


if __name__ == "__main__":
    spawned_worker_main()
