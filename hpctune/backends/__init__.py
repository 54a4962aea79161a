"""Backends drive the Controller, registered by name: ``mpi`` (coordinator + worker ranks),
``local`` (in-process) and ``sim`` (virtual workers on a virtual clock).

This package imports neither MPI nor the coordinator's side at import time: mpi4py is
loaded only when the MPI backend runs, the controller and the store only on the coordinator.
"""
from __future__ import annotations

import sys
from typing import Any

from ..errors import SpecError
from ._base import BACKENDS, Backend
from .local import LocalBackend
from .mpi.backend import MPIBackend
from .sim.backend import SimBackend

__all__ = ["Backend", "BACKENDS", "BACKEND_NAMES", "LocalBackend", "MPIBackend", "SimBackend", "make_backend"]

BACKEND_NAMES = ("auto", "mpi", "local", "sim")
"""What ``backend`` may be: ``auto`` is ``mpi`` where mpi4py imports, else ``local`` (never ``sim``)."""


def make_backend(name: str, workers: int | None = None, trainable: Any = None, verbose: int = 1,
                 surrogate: Any = None, coordinator_s_per_message: float = 0.0) -> Backend:
    """The backend registered as ``name``, or the one ``auto`` picks (saying so if it is ``local``).

    Args:
        workers, trainable: see :class:`Backend`.
        surrogate, coordinator_s_per_message: the ``sim`` backend's (see :class:`SimBackend`); refused
            for the others (the second unless 0).

    Raises:
        SpecError: an unknown name, ``workers`` not a positive integer, ``mpi`` without mpi4py, or a
            bad ``coordinator_s_per_message``.
    """
    from .mpi.launch import import_mpi  # not at import time: launch is the spawned ranks' __main__

    if name not in BACKEND_NAMES:
        listing = ", ".join(repr(known) for known in BACKEND_NAMES[:-1])
        raise SpecError("backend", f"must be {listing} or {BACKEND_NAMES[-1]!r}, got {name!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SpecError("workers", f"must be a positive integer, got {workers!r}")
    if surrogate is not None and name != "sim":
        raise SpecError("surrogate", f"only the sim backend runs a surrogate (backend is {name!r})")
    if name != "sim" and coordinator_s_per_message != 0:
        raise SpecError("coordinator_s_per_message", f"only the sim backend models the coordinator's time per "
                                                     f"message (backend is {name!r})")
    if name == "sim":
        return SimBackend(workers=workers, trainable=trainable, surrogate=surrogate,
                          coordinator_s_per_message=coordinator_s_per_message)
    if name == "auto":
        name = "local" if import_mpi() is None else "mpi"
        if name == "local" and verbose:
            print("[hpctune] mpi4py is not available: running trials in this process, one at a time",
                  file=sys.stderr)
    return BACKENDS.get(name)(workers=workers, trainable=trainable)
