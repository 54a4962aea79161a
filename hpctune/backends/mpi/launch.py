"""Finding or making worker ranks: under an MPI launcher, spawned, or none at all."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import sys
import threading
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["import_mpi", "spawn_workers", "spawned_worker_main"]


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


def spawn_workers(count: int):
    """Start ``count`` worker ranks with ``MPI_Comm_spawn``; returns the intercommunicator.

    Raises:
        RuntimeError: MPI cannot spawn here (no mpiexec of this MPI on PATH, say).
    """
    MPI = import_mpi()
    if MPI is None:
        raise RuntimeError("mpi4py is not installed (pip install 'hpctune[mpich]')")
    # SIGINT/SIGTERM stay blocked until the process manager is in a session of its own (the
    # blocked mask is inherited): Ctrl-C reaches the coordinator alone, which pauses the trials
    # and stops cleanly instead of being torn down.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    # MPI_Comm_spawn waits for every rank to connect, with no time limit: a rank that cannot start
    # (a broken environment on the nodes) or a process manager that died would leave it spinning
    # forever; the journal has everything, so end this process with one line instead
    limit = float(os.environ.get("HPCTUNE_SPAWN_TIMEOUT", SPAWN_TIMEOUT_S))
    timer = threading.Timer(limit, _spawn_timed_out, args=(count, limit))
    timer.daemon = True
    timer.start()
    try:
        with _process_manager_in_own_session():
            return MPI.COMM_SELF.Spawn(sys.executable, args=["-m", "hpctune.backends.mpi.launch"], maxprocs=count)
    except MPI.Exception as exc:
        raise RuntimeError(f"MPI could not spawn {count} worker ranks: {exc}") from None
    finally:
        timer.cancel()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


SPAWN_TIMEOUT_S = 120.0
"""Seconds the spawned worker ranks may take to start (``HPCTUNE_SPAWN_TIMEOUT``)."""


def _spawn_timed_out(count: int, limit: float) -> None:
    print(f"hpctune: error: the {count} spawned worker ranks did not start within {limit:.0f} s (can "
          f"'{sys.executable} -m hpctune.backends.mpi.launch' import hpctune and mpi4py?); nothing was run",
          file=sys.stderr, flush=True)
    os._exit(1)


_NEW_SESSION = """import os, sys
try:
    os.setsid()
except OSError:
    pass
os.execv(sys.argv[1], sys.argv[1:])
"""


@contextmanager
def _process_manager_in_own_session() -> Iterator[None]:
    """While spawning, ``mpiexec`` on PATH starts the real one in a new session, stdin on /dev/null.

    On the first spawn MPICH forks and runs ``mpiexec`` (its process manager, hydra) as a child
    of this process, in this process's process group. When a spawned rank dies by a signal, or
    the job ends abnormally, hydra's proxy SIGKILLs that mpiexec's whole process group: this
    process, and whatever shares its group (the shell running a batch script, a ``| tee``).
    In a session of its own, only mpiexec goes; it never reads the terminal either.
    """
    real = shutil.which("mpiexec")
    if real is None:  # MPICH will say that it needs one
        yield
        return
    with tempfile.TemporaryDirectory(prefix="hpctune-spawn-") as folder:
        shim = os.path.join(folder, "mpiexec")
        with open(shim, "w") as f:
            f.write(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -c {shlex.quote(_NEW_SESSION)} "
                    f"{shlex.quote(real)} \"$@\" </dev/null\n")
        os.chmod(shim, 0o755)
        path = os.environ.get("PATH", "")
        os.environ["PATH"] = folder + os.pathsep + path
        try:
            yield
        finally:
            os.environ["PATH"] = path


def spawned_worker_main() -> None:
    """Entry of a spawned worker rank: serve the parent coordinator, then disconnect."""
    from ..gpus import node_names
    from .worker_loop import serve_worker

    MPI = import_mpi()
    parent = MPI.Comm.Get_parent()
    try:
        worker_id = parent.Get_rank() + 1
        # HPCTUNE_NODE_OF_RANK names the coordinator and the workers, as under mpiexec (checked by the
        # coordinator before it spawned these); unset, the spawned ranks find their nodes themselves
        names = node_names(parent.Get_size() + parent.Get_remote_size())
        serve_worker(parent, worker_id=worker_id, node=names[worker_id] if names is not None else None)
    finally:
        parent.Disconnect()


if __name__ == "__main__":
    spawned_worker_main()
