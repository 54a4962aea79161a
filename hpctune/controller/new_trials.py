"""The controller's new trials: a config from the searcher becomes a trial, journaled.

Asked at once (the default, and always for searchers that fit no model), a suggestion is taken
where a dispatch needs a trial. Asked in the background (:meth:`NewTrials.suggest_in_background`,
the MPI backend's choice), a dispatch only starts the suggestion; the backend, polling between
messages, sees :attr:`NewTrials.suggestion_ready` and calls :meth:`NewTrials.on_suggestion`,
which adds the trial and dispatches again. Either way the journal's ``add`` (or ``search_end``)
record marks where the trial joined, and replay adds it there with the recorded config
(:meth:`NewTrials._replay_add`): a resumed experiment has the configs and the order of an
uninterrupted one whatever the searcher's timing was. Mixed into
:class:`hpctune.controller.core.Controller`, whose attributes it reads and sets.
"""
from __future__ import annotations

from ..enums import RecordKind, TrialState
from ..searchers import FINISHED
from ..trial import Trial

__all__ = ["NewTrials"]


class NewTrials:
    """:class:`~hpctune.controller.core.Controller`'s half that turns suggestions into trials."""

    def suggest_in_background(self) -> None:
        """From now on, compute a model-based searcher's suggestions on a thread, off the path of
        results (the backend then polls :attr:`suggestion_ready`)."""
        self._source.in_background()

    @property
    def suggesting(self) -> bool:
        """A suggestion was started in the background and not taken yet (under way or ready)."""
        return self._source.asking

    @property
    def suggestion_ready(self) -> bool:
        """A suggestion computed in the background waits for :meth:`on_suggestion`."""
        return self._source.ready

    def on_suggestion(self, t: float | None = None) -> None:
        """Add the trial that the suggestion computed in the background gives, then dispatch."""
        self._event_time(t)
        trial_id, answer = self._source.take()
        self._hold_requests = answer is None  # the searcher has nothing now: ask again after the next event
        self._accept(trial_id, answer)
        self._dispatch()

    def _add_trial(self) -> Trial | None:
        if self._searcher_finished or self._replaying:  # replay adds trials where the journal says
            return None
        trial_id = self._next_trial_id
        if self._source.background:
            if not self._hold_requests:
                self._source.request(trial_id)
            return None
        return self._accept(trial_id, self._source.suggest_now(trial_id))

    def _accept(self, trial_id: int, config) -> Trial | None:
        if config is FINISHED:
            self._search_ended()
            self._record(RecordKind.SEARCH_END)
            return None
        if config is None:
            return None
        trial = self._new_trial(trial_id, config)
        total = self.searcher.total_trials()
        if total is not None and self._next_trial_id >= total:
            # the last trial of a search of known size: it has ended now, not when a free rank would ask
            # again (PBT would pause trials at their first interval for members that never come)
            self._search_ended()
            self._record(RecordKind.SEARCH_END)
        return trial

    def _search_ended(self) -> None:
        self._searcher_finished = True
        self.scheduler.on_no_more_trials()

    def _new_trial(self, trial_id: int, config: dict) -> Trial:
        self._next_trial_id = trial_id + 1
        trial = Trial(trial_id=trial_id, config=config)
        self.trials[trial_id] = trial
        self.counts[TrialState.PENDING] += 1
        self._record(RecordKind.ADD, trial=trial_id, config=config)
        self.scheduler.on_trial_add(trial)
        return trial

    # -- replay -------------------------------------------------------------------------
    def _replay_add(self, trial_id: int, config: dict, t: float | None) -> None:
        """An ``add`` record: the trial joins here with the config it got (the searcher is brought
        to where suggesting it left it), then the dispatch that followed runs again."""
        self._event_time(t)
        self._source.replay(trial_id, config)
        self._new_trial(trial_id, config)
        self._dispatch()

    def _replay_search_end(self, t: float | None) -> None:
        self._event_time(t)
        self._search_ended()
        self._dispatch()
