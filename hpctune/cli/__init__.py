"""The ``hpctune`` command (:func:`main`): run, resume, submit, replay, status, analyze, plot, plan."""
from __future__ import annotations

from .commands import main

__all__ = ["main"]
