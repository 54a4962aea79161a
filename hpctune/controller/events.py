"""The controller's clock and journal, shared by its parts: the time of the event being handled,
and its records (none while ``restore`` replays the journal: those are already in it)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..enums import RecordKind
from ..store.base import Store
from .state import ControllerState

__all__ = ["EventLog"]


class EventLog:
    """Args:
        state: the controller's state (its ``now`` and ``replaying``).
        store: where records go.
        clock: wall-clock time source, for events that come without a time.
    """

    def __init__(self, state: ControllerState, store: Store, clock: Callable[[], float]):
        self.state = state
        self.store = store
        self.clock = clock

    def event_at(self, t: float | None) -> None:
        """An input event happens at ``t`` (now, on the clock, if None); the searcher may have a new answer."""
        self.state.now = self.clock() if t is None else t
        self.state.hold_requests = False

    def record(self, kind: RecordKind, **fields: Any) -> None:
        """Journal a record at the event's time (not while replaying)."""
        if not self.state.replaying:
            self.store.record(kind, t=self.state.now, **fields)
