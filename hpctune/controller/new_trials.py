"""The controller's new trials: a config from the searcher becomes a trial, journaled.

Asked at once (the default, and always for searchers that fit no model), a suggestion is taken
where a dispatch needs a trial. Asked in the background (``Controller.suggest_in_background``,
the MPI backend's choice), a dispatch only starts the suggestion; the backend, polling between
messages, sees ``Controller.suggestion_ready`` and calls ``Controller.on_suggestion``, which adds
the trial (:meth:`NewTrials.take_suggestion`) and dispatches again. Either way the journal's
``add`` (or ``search_end``) record marks where the trial joined, and replay adds it there with the
recorded config (:meth:`NewTrials.replay_add`): a resumed experiment has the configs and the order
of an uninterrupted one whatever the searcher's timing was.
"""
from __future__ import annotations

from ..enums import RecordKind, TrialState
from ..schedulers import Scheduler
from ..searchers import FINISHED, Searcher
from ..trial import Trial
from .events import EventLog
from .state import ControllerState
from .suggestions import SuggestionSource

__all__ = ["NewTrials"]


class NewTrials:
    """Turns the searcher's suggestions into trials (``state.next_trial_id``, ``state.searcher_finished``).

    Args:
        state: the controller's state.
        log: its clock and journal.
        source: the searcher's suggestions, at once or from a thread.
        searcher: asked how many trials its search has in all.
        scheduler: told of each new trial and of the search's end.
    """

    def __init__(self, state: ControllerState, log: EventLog, source: SuggestionSource, searcher: Searcher,
                 scheduler: Scheduler):
        self.state = state
        self.log = log
        self.source = source
        self.searcher = searcher
        self.scheduler = scheduler

    def add_trial(self) -> Trial | None:
        """A new trial from the searcher, or None: it has none now, the search is over, or (in the
        background) its suggestion is under way."""
        state = self.state
        if state.searcher_finished or state.replaying:  # replay adds trials where the journal says
            return None
        trial_id = state.next_trial_id
        if self.source.background:
            if not state.hold_requests:
                self.source.request(trial_id)
            return None
        return self._accept(trial_id, self.source.suggest_now(trial_id))

    def take_suggestion(self) -> None:
        """Add the trial that the suggestion computed in the background gives (if it gives one)."""
        trial_id, answer = self.source.take()
        self.state.hold_requests = answer is None  # the searcher has nothing now: ask again after the next event
        self._accept(trial_id, answer)

    def _accept(self, trial_id: int, config) -> Trial | None:
        if config is FINISHED:
            self._search_ended()
            self.log.record(RecordKind.SEARCH_END)
            return None
        if config is None:
            return None
        trial = self._new_trial(trial_id, config)
        total = self.searcher.total_trials()
        if total is not None and self.state.next_trial_id >= total:
            # the last trial of a search of known size: it has ended now, not when a free rank would ask
            # again (PBT would pause trials at their first interval for members that never come)
            self._search_ended()
            self.log.record(RecordKind.SEARCH_END)
        return trial

    def _search_ended(self) -> None:
        self.state.searcher_finished = True
        self.scheduler.on_no_more_trials()

    def _new_trial(self, trial_id: int, config: dict) -> Trial:
        state = self.state
        state.next_trial_id = trial_id + 1
        trial = Trial(trial_id=trial_id, config=config)
        state.trials[trial_id] = trial
        state.counts[TrialState.PENDING] += 1
        self.log.record(RecordKind.ADD, trial=trial_id, config=config)
        self.scheduler.on_trial_add(trial)
        return trial

    # -- replay -------------------------------------------------------------------------
    def replay_add(self, trial_id: int, config: dict) -> None:
        """An ``add`` record: the trial joins here with the config it got (the searcher is brought
        to where suggesting it left it)."""
        self.source.replay(trial_id, config)
        self._new_trial(trial_id, config)

    def replay_search_end(self) -> None:
        """A ``search_end`` record: the searcher had no more trials here."""
        self._search_ended()
