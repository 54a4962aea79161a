"""Where the controller's new configs come from: its searcher, asked at once or on a thread.

A searcher that fits a model (``Searcher.fits_model``: TPE, GP, CMA-ES) can take from
milliseconds to seconds per suggestion, growing with the trials it has seen. Asked inline, that
time would sit between a result and its decision, and a worker's GPU would idle through it.
With :meth:`SuggestionSource.in_background`, each suggestion is computed on a thread of its own
while the coordinator goes on answering results; the results and ends it hears meanwhile are
queued and told to the searcher, in order, before its next suggestion (or before its state is
read for a snapshot). The backend polls :attr:`SuggestionSource.ready` and hands the answer to
the controller (``Controller.on_suggestion``), which journals it like any other.

Searchers that do not fit a model (random, grid) are always asked at once: their answer takes
microseconds, and a thread would only add a hop.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from ..searchers import Searcher

__all__ = ["SuggestionSource", "PendingAnswer"]


class PendingAnswer:
    """A config the searcher suggested for ``trial_id`` that no trial has yet (kept in snapshots)."""

    __slots__ = ("trial_id", "config")

    def __init__(self, trial_id: int, config: dict):
        self.trial_id = trial_id
        self.config = config


class SuggestionSource:
    """The controller's only way to its searcher: suggestions, results told, and its state.

    Args:
        searcher: the experiment's searcher, set up.
    """

    def __init__(self, searcher: Searcher):
        self.searcher = searcher
        self.background = False
        self.pending: PendingAnswer | None = None  # suggested before a snapshot, given to no trial yet
        self._lock = threading.Lock()         # held while the searcher is used
        self._told: deque = deque()           # (method, args) heard while a suggestion was computed
        self._asking: int | None = None       # the trial id a suggestion is computed for
        self._answer: object = None           # a config, None (nothing now) or FINISHED
        self._error: BaseException | None = None
        self._done = threading.Event()

    def in_background(self) -> None:
        """Compute suggestions on a thread from now on, if the searcher fits a model."""
        self.background = bool(getattr(self.searcher, "fits_model", False))

    # -- suggestions ---------------------------------------------------------------------
    def suggest_now(self, trial_id: int):
        """The searcher's answer for ``trial_id``, computed here (a config, ``None`` or ``FINISHED``)."""
        if self.pending is not None and self.pending.trial_id == trial_id:
            config, self.pending = self.pending.config, None
            return config
        self._sync()
        return self.searcher.suggest(trial_id)

    def request(self, trial_id: int) -> None:
        """Start computing ``trial_id``'s suggestion on a thread (nothing if one is under way)."""
        if self._asking is not None:
            return
        self._asking = trial_id
        if self.pending is not None and self.pending.trial_id == trial_id:
            self._answer, self.pending = self.pending.config, None
            self._done.set()
            return
        self._done.clear()
        threading.Thread(target=self._compute, args=(trial_id,), name="hpctune-suggest", daemon=True).start()

    @property
    def asking(self) -> bool:
        """A suggestion was requested and not yet taken (under way, or ready)."""
        return self._asking is not None

    @property
    def ready(self) -> bool:
        """A suggestion requested with :meth:`request` is computed (take it with :meth:`take`)."""
        return self._asking is not None and self._done.is_set()

    def take(self) -> tuple[int, object]:
        """The trial id and answer of the computed suggestion (re-raises what the searcher raised)."""
        if not self.ready:
            raise RuntimeError("no suggestion is ready")
        trial_id, answer, error = self._asking, self._answer, self._error
        self._asking, self._answer, self._error = None, None, None
        if error is not None:
            raise error
        assert trial_id is not None  # ready
        return trial_id, answer

    def replay(self, trial_id: int, config: dict) -> None:
        """Replaying the journal: ``trial_id`` was added with ``config`` (the searcher's own, recorded)."""
        if self.pending is not None and self.pending.trial_id == trial_id:
            self.pending = None  # the snapshot's searcher state already holds it
            return
        self._sync()
        self.searcher.replay_suggestion(trial_id, config)

    def _compute(self, trial_id: int) -> None:
        try:
            with self._lock:
                self._tell_queued()
                self._answer = self.searcher.suggest(trial_id)
        except BaseException as error:  # handed to the coordinator's thread by take()
            self._error = error
        finally:
            self._done.set()

    # -- what the searcher hears ---------------------------------------------------------
    def on_trial_result(self, trial_id: int, result: dict) -> None:
        self._tell("on_trial_result", trial_id, result)

    def on_trial_complete(self, trial_id: int, result: dict | None, error: bool = False) -> None:
        self._tell("on_trial_complete", trial_id, result, error)

    def _tell(self, method: str, *args) -> None:
        if self.background:
            self._told.append((method, args))  # told before the next suggestion, on its thread
        else:
            getattr(self.searcher, method)(*args)

    def _tell_queued(self) -> None:
        while self._told:
            method, args = self._told.popleft()
            getattr(self.searcher, method)(*args)

    def _sync(self) -> None:
        """Wait for a suggestion under way, then tell the searcher everything queued."""
        if self._told or self._asking is not None:
            with self._lock:
                self._tell_queued()

    # -- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """The searcher's state and a suggestion it made that no trial has yet (waits for one under way)."""
        self._sync()
        pending, asking = self.pending, self._asking
        if asking is not None and self._done.is_set() and self._error is None and isinstance(self._answer, dict):
            pending = PendingAnswer(asking, self._answer)  # ready, and a config
        state = {"searcher": self.searcher.state_dict()}
        if pending is not None:
            state["pending_suggestion"] = {"trial": pending.trial_id, "config": pending.config}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.searcher.load_state_dict(state["searcher"])
        pending = state.get("pending_suggestion")
        self.pending = PendingAnswer(pending["trial"], pending["config"]) if pending else None
