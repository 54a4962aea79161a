"""The controller's resume half: its state loaded from a snapshot, the journal replayed after it,
a new allocation started, and each trial that runs again sent back to an intact checkpoint.

:meth:`Resume.restore` (``Controller.restore``) loads the snapshot, feeds the journal's records
after it through the controller's own event handlers (journaling nothing: ``state.replaying``),
then lets go of the old allocation's workers: what the state declares per allocation
(:mod:`hpctune.controller.state`) starts afresh.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ..enums import RecordKind, SegmentEnd, TrialState
from ..policies import Policy
from ..schedulers import Scheduler
from ..searchers import Searcher
from ..store.base import Store
from ..trial import Trial
from .checkpoints import TrialCheckpoints
from .dispatch import Dispatcher
from .events import EventLog
from .lifecycle import TrialLifecycle
from .new_trials import NewTrials
from .state import ControllerState
from .state_fields import load_state_dict, reset_for_allocation
from .suggestions import SuggestionSource

__all__ = ["Resume", "EventHandlers"]


class EventHandlers(Protocol):
    """The controller's handlers of the input events its journal records, which replay feeds again."""

    def on_workers_joined(self, count: int = 1, t: float | None = None) -> None: ...

    def on_result(self, trial_id: int, row: dict, checkpoint: str | None = None, t: float | None = None) -> object: ...

    def on_segment_end(self, trial_id: int, how: SegmentEnd, error: str | None = None,
                       checkpoint: str | None = None, t: float | None = None) -> None: ...

    def request_stop(self, t: float | None = None, why: str | None = None, checkpoint_first: bool = False) -> None: ...

    def pause_now(self, trial_id: int, t: float | None = None) -> None: ...

    def set_config(self, trial_id: int, config: dict, t: float | None = None) -> None: ...

    def set_deadline(self, end: float, window: float | None = None, t: float | None = None) -> None: ...

    def placed(self, trial_id: int, ranks: list[int], t: float | None = None) -> None: ...


class Resume:
    """Args:
        state: the controller's state.
        log: its clock and journal.
        store: checks each checkpoint a trial may go on from (and whether it opens).
        scheduler, source, policy: their own state is in the snapshot (the searcher's through ``source``).
        searcher: how many trials its search has in all (a grown experiment's search goes on).
        checkpoints, lifecycle: a trial whose checkpoints are lost goes back to an older one, or ends.
        new_trials, dispatcher: a replayed ``add`` (or ``search_end``) record, and the dispatch after it.
    """

    def __init__(self, state: ControllerState, log: EventLog, store: Store, scheduler: Scheduler,
                 searcher: Searcher, source: SuggestionSource, policy: Policy | None,
                 checkpoints: TrialCheckpoints, lifecycle: TrialLifecycle, new_trials: NewTrials,
                 dispatcher: Dispatcher):
        self.state = state
        self.log = log
        self.store = store
        self.scheduler = scheduler
        self.searcher = searcher
        self.source = source
        self.policy = policy
        self.checkpoints = checkpoints
        self.lifecycle = lifecycle
        self.new_trials = new_trials
        self.dispatcher = dispatcher

    def restore(self, handlers: EventHandlers, snapshot: Mapping[str, Any] | None, trials: list[Trial],
                records: list[dict]) -> None:
        """See ``Controller.restore``: ``handlers`` are the controller's."""
        self.load(snapshot, trials)
        self.state.replaying = True
        try:
            for record in records:
                self._replay(handlers, record)
        finally:
            self.state.replaying = False
        self.start_allocation()

    def _replay(self, handlers: EventHandlers, record: dict) -> None:
        """Feed one journal record through the handler that wrote it."""
        kind, t = RecordKind.from_key(record["k"]), record.get("t")
        if kind is RecordKind.READY:
            handlers.on_workers_joined(record["n"], t=t)
        elif kind is RecordKind.RESULT:
            handlers.on_result(record["trial"], record["row"], record.get("ckpt"), t=t)
        elif kind is RecordKind.END:
            handlers.on_segment_end(record["trial"], SegmentEnd[record["how"]], record.get("error"),
                                    record.get("ckpt"), t=t)
        elif kind is RecordKind.INTERRUPT:
            handlers.request_stop(t=t, why=record.get("why"), checkpoint_first=bool(record.get("ckpt_first")))
        elif kind is RecordKind.PAUSE:
            handlers.pause_now(record["trial"], t=t)
        elif kind is RecordKind.CONFIG:
            handlers.set_config(record["trial"], record["config"], t=t)
        elif kind is RecordKind.DEADLINE:
            handlers.set_deadline(record["end"], record.get("window"), t=t)
        elif kind is RecordKind.LAUNCH:
            handlers.placed(record["trial"], record.get("ranks") or [record["rank"]], t=t)
        elif kind is RecordKind.ADD:  # the trial joins where it did, with the config it got
            self.log.event_at(t)
            self.new_trials.replay_add(record["trial"], record["config"])
            self.dispatcher.dispatch()
        elif kind is RecordKind.SEARCH_END:
            self.log.event_at(t)
            self.new_trials.replay_search_end()
            self.dispatcher.dispatch()

    def load(self, snapshot: Mapping[str, Any] | None, trials: list[Trial]) -> None:
        """The snapshot's trials and state (``Controller.state_dict``: none before the first snapshot)."""
        for trial in trials:
            self.state.trials[trial.trial_id] = trial
            self.state.counts[trial.state] += 1
        if snapshot is None:
            return
        load_state_dict(self.state, snapshot)
        self.scheduler.load_state_dict(snapshot["scheduler"])
        self.source.load_state_dict(snapshot)
        if self.policy is not None and "policy" in snapshot:
            self.policy.load_state_dict(snapshot["policy"])

    def start_allocation(self) -> None:
        """After the replay: the old allocation's workers are gone. Trials that were running go on from
        their last checkpoint, first in line; each checkpoint a trial may go on from is checked to be in
        its folder.

        Raises:
            SpecError: a stored checkpoint path points outside the experiment folder.
        """
        state = self.state
        total = self.searcher.total_trials()
        if state.searcher_finished and total is not None and state.next_trial_id < total:
            # grown (resume --num-samples, or num_samples raised in the spec): the search goes on where it
            # was, whether its end was in the snapshot or in the journal after it
            state.searcher_finished = False
        lost = list(state.running)
        for tid in lost:
            trial = state.trials[tid]
            if not trial.state.is_finished:  # it restarts from its last checkpoint, first in line
                self.lifecycle.set_state(trial, TrialState.PAUSED if trial.checkpoint else TrialState.PENDING,
                                         "worker lost")
        state.requeue = dict.fromkeys([*lost, *state.requeue])
        state.spending.cut(state.now)  # what ran on is known up to the last event the journal holds
        for trial in state.trials.values():  # never open or delete what an edited state points elsewhere
            for path in self.checkpoints.kept_checkpoints(trial):
                self.store.checkpoint_path(path, trial.trial_id)
        reset_for_allocation(state)  # what the state declares of the old allocation only

    # -- after a resume ---------------------------------------------------------------------
    def check_checkpoints(self) -> None:
        """See ``Controller.check_checkpoints``."""
        for trial in self.state.trials.values():
            if not trial.state.is_finished:
                self._go_back_to_an_intact_checkpoint(trial)

    def _go_back_to_an_intact_checkpoint(self, trial: Trial) -> None:
        tid, state = trial.trial_id, self.state
        while trial.checkpoint is not None:
            problem = self.store.checkpoint_problem(trial.checkpoint, tid)
            if problem is None:
                return
            lost = trial.checkpoint
            older = [entry for entry in trial.checkpoint_history
                     if entry[0] != lost and entry[1] is not None and entry[1] <= trial.checkpoint_iteration]
            intact = next((entry for entry in reversed(older)
                           if self.store.checkpoint_problem(entry[0], tid) is None), None)
            if intact is not None:
                ref, iteration, time_s = intact
                # a damaged file stays where it is (the trial writes that name again when it gets there)
                trial.checkpoint_history = trial.checkpoint_history[:trial.checkpoint_history.index(intact) + 1]
                trial.checkpoint, trial.checkpoint_iteration, trial.checkpoint_time_s = ref, iteration, time_s
                state.notices.append(f"warning: trial {tid}: its checkpoint {lost} {problem}; it goes on from "
                                     f"{ref} (iteration {iteration})")
                return
            if self.checkpoints.is_tentative(tid):  # its own checkpoints, kept aside, are checked in the next round
                donor = state.tentative[tid]["donor"]
                self.checkpoints.undo_exploit(trial)
                then = (f"it goes on from its own {trial.checkpoint} (iteration {trial.checkpoint_iteration})"
                        if trial.checkpoint else "it starts again from scratch")
                state.notices.append(f"warning: trial {tid}: its copy {lost} of trial {donor}'s checkpoint "
                                     f"{problem}; the exploit is undone and {then}")
                continue
            line = f"trial {tid}: its checkpoint {lost} {problem} and no older checkpoint of it is intact"
            state.notices.append(f"warning: {line}: it ends as ERROR")
            self.lifecycle.end_in_error(trial, line, "checkpoint lost")
            return
