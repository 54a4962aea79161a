"""A trial's state changes as the controller makes them: journaled, counted, and told to whoever
must hear of a trial's end (the scheduler, the searcher, the live policy); among them what a
trial does when its segment ends (ends, runs again first, or waits)."""
from __future__ import annotations

from ..enums import RecordKind, SegmentEnd, TrialState
from ..policies import Policy
from ..schedulers import Scheduler
from ..spec import ExperimentSpec
from ..trial import Trial
from .checkpoints import TrialCheckpoints
from .controls import RunningControls
from .events import EventLog
from .state import ControllerState
from .suggestions import SuggestionSource

__all__ = ["TrialLifecycle"]


class TrialLifecycle:
    """Moves trials between states (``state.counts`` follows), ends them and retries failed ones.

    Args:
        state: the controller's state.
        log: its clock and journal.
        spec: ``max_failures``: how often a trial may fail and run again.
        checkpoints: a finished trial's tentative exploit is undone there.
        controls: a segment that found the disk full stops the experiment.
        scheduler, source, policy: told of each trial's end (the searcher through ``source``).
    """

    def __init__(self, state: ControllerState, log: EventLog, spec: ExperimentSpec, checkpoints: TrialCheckpoints,
                 controls: RunningControls, scheduler: Scheduler, source: SuggestionSource, policy: Policy | None):
        self.state = state
        self.log = log
        self.spec = spec
        self.checkpoints = checkpoints
        self.controls = controls
        self.scheduler = scheduler
        self.source = source
        self.policy = policy

    def set_state(self, trial: Trial, state: TrialState, why: str = "", record: bool = True) -> None:
        """``trial`` is now in ``state`` (``why``: its ``end_reason``); journaled unless ``record`` is False."""
        if state.is_finished and self.checkpoints.is_tentative(trial.trial_id):
            self.checkpoints.undo_exploit(trial)  # a finished trial is never exploited: its model is its own
        counts = self.state.counts
        counts[trial.state] -= 1
        counts[state] += 1
        trial.state = state
        if why:
            trial.end_reason = why
        if record:
            self.log.record(RecordKind.STATE, trial=trial.trial_id, state=state.name, why=why,
                            failures=trial.num_failures)

    def finish(self, trial: Trial, why: str, complete: bool) -> None:
        """``trial`` ends TERMINATED; ``complete``: it ran to its end (the scheduler hears of it)."""
        self.state.requeue.pop(trial.trial_id, None)
        if self.policy is not None:
            self.policy.on_trial_end(trial.trial_id)
        self.set_state(trial, TrialState.TERMINATED, why)
        if complete:
            self.scheduler.on_trial_complete(trial, trial.last_result)
        self.source.on_trial_complete(trial.trial_id, trial.last_result, error=False)

    def failed(self, trial: Trial, error: str) -> None:
        """``trial``'s segment raised ``error``: it runs again first, or ends ERROR after ``max_failures``."""
        trial.num_failures += 1
        trial.error = error
        if trial.num_failures <= self.spec.max_failures:
            self.set_state(trial, TrialState.PENDING, f"retry {trial.num_failures} of {self.spec.max_failures}")
            self.state.requeue[trial.trial_id] = None
            return
        self.end_in_error(trial, error)

    def end_in_error(self, trial: Trial, error: str, why: str = "error") -> None:
        """``trial`` is over with ``error``; the scheduler, the searcher and the policy are told."""
        trial.error = error
        self.state.requeue.pop(trial.trial_id, None)
        self.set_state(trial, TrialState.ERROR, why)
        if self.policy is not None:
            self.policy.on_trial_end(trial.trial_id)
        self.scheduler.on_trial_error(trial)
        self.source.on_trial_complete(trial.trial_id, trial.last_result or None, error=True)

    def segment_ended(self, trial: Trial, how: SegmentEnd, error: str | None, donor: int | None) -> None:
        """What ``trial`` does now that its segment ended ``how`` (its ranks are free already);
        ``donor``: the trial whose checkpoint it was to go on from (an exploit), if any."""
        state, tid = self.state, trial.trial_id
        if how == SegmentEnd.STORAGE_FULL:
            self._storage_full(trial, error or "no space left on device")
        elif how == SegmentEnd.ERROR:
            self.failed(trial, error or "unknown error")
        elif trial.state.is_finished:
            pass  # already stopped by a criterion or the scheduler
        elif how == SegmentEnd.COMPLETED and tid in state.tentative:
            # its copy of a donor's checkpoint had nothing left to train: the exploit is undone, and its
            # own model, which never said it was done, goes on from its own checkpoint, first in line
            copied_from = state.tentative[tid]["donor"]
            self.checkpoints.undo_exploit(trial)
            self.set_state(trial, TrialState.PAUSED, f"trial {copied_from}'s checkpoint had nothing left to train: "
                                                     "goes on from its own")
            state.requeue[tid] = None
        elif how == SegmentEnd.COMPLETED:
            self.finish(trial, "completed", complete=True)
        elif donor is not None and tid in state.exploit_waits:
            state.interrupted.discard(tid)
            self.set_state(trial, TrialState.PAUSED, f"paused with trial {donor}'s checkpoint")
        elif donor is not None:
            state.interrupted.discard(tid)
            self.set_state(trial, TrialState.PAUSED, f"goes on from trial {donor}'s checkpoint")
            state.requeue[tid] = None  # at once, first in line
        elif tid in state.interrupted or how == SegmentEnd.INTERRUPTED:
            state.interrupted.discard(tid)
            asked = tid in state.pause_requested and not state.interrupting
            self.set_state(trial, TrialState.PAUSED, "paused on request" if asked else "interrupted")
            state.requeue[tid] = None
        elif how == SegmentEnd.PAUSED:
            self.set_state(trial, TrialState.PAUSED, "paused by scheduler")
        state.pause_requested.discard(tid)
        state.checkpoint_grace.pop(tid, None)
        state.exploit_waits.discard(tid)

    def _storage_full(self, trial: Trial, reason: str) -> None:
        """A trial's checkpoint could not be written for want of space: it keeps its last good
        checkpoint and runs again first when the experiment resumes (no failure is counted)."""
        self.state.interrupted.discard(trial.trial_id)
        if not trial.state.is_finished:
            self.set_state(trial, TrialState.PAUSED if trial.checkpoint else TrialState.PENDING, "storage full")
            self.state.requeue[trial.trial_id] = None
        self.controls.on_storage_full(reason)
