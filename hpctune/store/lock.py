"""One coordinator per experiment: an exclusive ``flock`` on ``.lock`` in the experiment folder.

The lock goes with the coordinator's process, whatever ends it. Readers take a shared
lock for a moment to tell whether an experiment that says ``running`` still has its coordinator.
"""
from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from ..errors import SpecError

__all__ = ["LOCK_FILE", "lock_experiment", "coordinator_running"]

LOCK_FILE = ".lock"
_LOCK_TRIES = 20


def lock_experiment(folder: Path) -> int:
    """One coordinator per experiment: an exclusive lock on ``.lock``, freed by any exit of its process.

    Tried for a moment: a reader's probe (:func:`coordinator_running`) holds it for microseconds.
    """
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    for _ in range(_LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            time.sleep(0.01)
    os.close(fd)
    raise SpecError(str(folder), "is in use by a running hpctune coordinator")


def coordinator_running(folder: Path) -> bool:
    """Whether a coordinator holds the experiment now (a moment's shared lock tells; nothing is kept)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: cannot tell, believe the record
        return True
    finally:
        os.close(fd)
