"""The experiment core: trials, scheduler, searcher and store, driven by events.

No MPI, no sleeping, no ranks: the controller decides *what* runs,
the backend decides *where*. A backend feeds it plain-data events
(:meth:`Controller.on_workers_joined`, :meth:`~Controller.on_result`,
:meth:`~Controller.on_segment_end`), places each :class:`Launch` that
:meth:`~Controller.take_launches` hands over on ranks of its own choosing
(reporting them with :meth:`~Controller.placed`), and sends out what the
events return. The controller only counts free ranks; which rank, node or GPU
a trial gets is the backend's business. Every input event is journaled
before its effects leave the coordinator, and replaying the journal through a
controller restored from the last snapshot rebuilds the exact state
(scheduler and searcher included), which is how ``resume`` continues where a
crash stopped. Its one thread besides the caller's computes a model-based searcher's
suggestions when the backend asks for that (:mod:`hpctune.controller.suggestions`).
"""
from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ..enums import Decision, RecordKind, SegmentEnd, TrialState
from ..errors import SpecError
from ..policies import Policy, build_policy
from ..schedulers import Scheduler, SchedulerDecision, build_scheduler, metric_value
from ..searchers import Searcher, build_searcher
from ..spec import ExperimentSpec, Resources
from ..store import ExperimentStore
from ..space import flatten
from ..trial import RESULT_FIELDS, Trial, TrialTask
from .walltime import IterationTimes, segment_fits
from .payloads import DecisionPayloads
from .checkpoints import TrialCheckpoints
from .resume import ResumableState
from .controls import ControlMessage, RunningControls
from .new_trials import NewTrials
from .suggestions import SuggestionSource

__all__ = ["Controller", "Launch", "ControlMessage", "build_algorithms"]


def build_algorithms(spec: ExperimentSpec) -> tuple[Scheduler, Searcher]:
    """The scheduler and the searcher ``spec`` describes, new (not set up).

    The spec checks their shape only; ``hpctune.run`` and the CLI call this before anything
    is written to storage, so that an unknown type or option is refused there.

    Raises:
        SpecError: an unknown type or option, or a bad option value, naming it (``scheduler.max_t: ...``).
    """
    scheduler = build_scheduler(spec.scheduler)
    scheduler.set_space(spec.space)
    searcher = build_searcher(spec.searcher)
    searcher.set_space(spec.space)
    build_policy_of(spec)  # checked here too, before anything is written
    return scheduler, searcher


def build_policy_of(spec: ExperimentSpec) -> Policy | None:
    """The live policy ``spec`` describes (new, not set up), or None.

    Raises:
        SpecError: an unknown type or option, or a hyperparameter the space does not have (``policy.key: ...``).
    """
    if spec.policy is None:
        return None
    policy = build_policy(spec.policy)
    try:
        policy.set_space(spec.space)
    except SpecError as exc:
        raise SpecError(f"policy.{exc.where}", exc.what) from None
    return policy


@dataclass
class Launch:
    """Run ``task`` on ranks the backend picks: ``resources`` says how many, and how many GPUs each."""

    task: TrialTask
    resources: Resources

    @property
    def trial_id(self) -> int:
        return self.task.trial_id


class Controller(ResumableState, DecisionPayloads, TrialCheckpoints, NewTrials, RunningControls):
    """Owns the trials table and applies the scheduler's and searcher's decisions (its resume half
    in :mod:`hpctune.controller.resume`, decision payloads in :mod:`hpctune.controller.payloads`,
    each trial's checkpoints and tentative exploits in :mod:`hpctune.controller.checkpoints`,
    new trials in :mod:`hpctune.controller.new_trials`, controls of running trials and the
    allocation's deadline in :mod:`hpctune.controller.controls`).

    Args:
        spec: the validated experiment spec (its scheduler and searcher are built here).
        store: where every event is journaled.
        clock: wall-clock time source (injected for tests and the simulator).
        python_path: folders workers add to ``sys.path`` to import the trainable.
    """

    def __init__(self, spec: ExperimentSpec, store: ExperimentStore, clock: Callable[[], float] = time.time,
                 python_path: list[str] | None = None):
        self.spec = spec
        self.store = store
        self.clock = clock
        self.python_path = python_path or [os.getcwd()]
        self.scheduler, self.searcher = build_algorithms(spec)
        self.scheduler.setup(spec.metric, spec.mode, spec.seed)
        self.policy = build_policy_of(spec)
        if self.policy is not None:
            self.policy.setup(spec.metric, spec.mode)
        self._in_force = tuple(f"config/{key}" for key in self.policy.keys) if self.policy else ()
        self.searcher.setup(spec.space, spec.metric, spec.mode, spec.num_samples, spec.seed)
        levels = self.scheduler.rung_levels()
        if levels:  # a multi-fidelity scheduler: the searcher may learn from every rung, knowing its budget
            self.searcher.set_fidelity(self.scheduler.time_attr, levels)
        self._source = SuggestionSource(self.searcher)  # every later word to the searcher goes through it
        self._hold_requests = False                  # the searcher had nothing: ask after the next event
        self.trials: dict[int, Trial] = {}
        self.counts: Counter = Counter()
        self.best: tuple[float, int] | None = None   # (score, trial_id), larger score is better
        self._next_trial_id = 0
        self._searcher_finished = False
        self._metric_seen = False
        self._free_ranks = 0                         # ranks that can take work now
        self._running: dict[int, None] = {}          # ordered set: trials running, in launch order
        self.placements: dict[int, tuple[list[int], float]] = {}  # running trial -> (its ranks, since when)
        self._requeue: dict[int, None] = {}          # ordered set: retried / interrupted trials
        self._interrupting = False
        self._interrupted: set[int] = set()          # paused because the experiment is stopping
        self._pause_requested: set[int] = set()      # to pause at their next result (pause_now)
        self._checkpoint_grace: dict[int, int] = {}  # asked to checkpoint before pausing: results it may send without
        self._exploiting: dict[int, int] = {}  # trial -> donor: paused to go on from a copy of the donor's checkpoint
        self._tentative: dict[int, dict] = {}  # trial -> its own state, while no result has followed its exploit
        self._exploit_waits: set[int] = set()  # of those, the ones the scheduler runs again when it chooses
        self._deadline: float | None = None          # walltime-aware scheduling (set_deadline)
        self._window: float | None = None
        self._times = IterationTimes()
        self.stopped_for_deadline = False
        self._controls: list[ControlMessage] = []
        self._launches: list[Launch] = []
        self._notices: list[str] = []                # lines for the console
        self.storage_full: str | None = None         # why the experiment stops for want of space, if it does
        self._obsolete_checkpoints: list[tuple[int, str]] = []  # (trial id, checkpoint)
        self._replaying = False
        self._now = clock()
        self._started_at = self._now                 # the time budget counts from here

    # -- input events ---------------------------------------------------------------
    def on_workers_joined(self, count: int = 1, t: float | None = None) -> None:
        """``count`` more ranks can take work (workers that made first contact)."""
        self._event_time(t)
        self._record(RecordKind.READY, n=count)
        self._free_ranks += count
        self._dispatch()

    def on_result(self, trial_id: int, row: dict, checkpoint: str | None = None,
                  t: float | None = None) -> Decision:
        """A result reported by a running trial; returns what the trial does next.

        A result whose ``training_iteration`` was already accepted (a trial
        resumed from an older checkpoint after a crash) is dropped: each
        iteration is recorded and shown to the scheduler once.

        Raises:
            SpecError: the experiment's metric was never reported (bad input).
        """
        self._event_time(t)
        trial = self.trials[trial_id]
        row = _interned(row)
        iteration = row["training_iteration"]
        if iteration <= trial.iteration or trial.state.is_finished:
            return Decision.STOP if trial.state.is_finished else Decision.CONTINUE
        if not self._metric_seen:
            if self.spec.metric not in row:
                reported = ", ".join(k for k in row if k not in RESULT_FIELDS) or "nothing"
                raise SpecError("metric", f"{self.spec.metric!r} was never reported by the trainable "
                                          f"(it reported: {reported})")
            self._metric_seen = True
            for key in self.spec.stop:
                if key not in row and not self._replaying:
                    reported = ", ".join(k for k in row if k not in RESULT_FIELDS)
                    self._notices.append(f"warning: stop.{key}: the first result has no {key!r} (it reported: "
                                         f"{reported}); this criterion stops only trials that report it")
        if self._in_force:  # the values the policy controls, as in force for this result
            flat = flatten(trial.config)
            for column, key in zip(self._in_force, self.policy.keys):
                row[column] = flat.get(key)
        self._record(RecordKind.RESULT, trial=trial_id, row=row, ckpt=checkpoint)
        self._times.result(trial_id, row, self._now)
        trial.iteration = iteration
        trial.last_result = row
        trial.time_total_s = row.get("time_total_s", trial.time_total_s)
        if checkpoint:
            self._set_checkpoint(trial, checkpoint, iteration, trial.time_total_s)
        if trial_id in self._tentative:  # its exploit trained this result: final now (after the checkpoint
            self._commit_exploit(trial)  # is taken: it may bear the name of one of the trial's own)
        score = metric_value(row, self.spec.metric, self.spec.mode)
        if score > trial.best_score:
            trial.best_score, trial.best_iteration = score, iteration
        if self.spec.metric in row and (self.best is None or score > self.best[0]):
            self.best = (score, trial_id)

        if self.spec.stop_criterion_met(row):
            self._source.on_trial_result(trial_id, row)
            self._finish(trial, "stop criterion", complete=True)
            return self._log_decision(trial, Decision.STOP)
        decision = self.scheduler.on_trial_result(trial, row)  # it sees every result, stopping or not
        self._source.on_trial_result(trial_id, row)
        if isinstance(decision, SchedulerDecision):
            decision = self._carry_out(trial, decision)
        action = _action(decision)
        if action == Decision.STOP:
            self._finish(trial, "stopped by scheduler", complete=False)
        elif (self._interrupting or trial_id in self._pause_requested) and action == Decision.CONTINUE:
            if not checkpoint and self._checkpoint_grace.get(trial_id, 0) > 0:
                # sent before the trial heard "checkpoint now": its next result carries the checkpoint
                self._checkpoint_grace[trial_id] -= 1
            else:
                decision = Decision.PAUSE  # pause at this checkpoint; resumed first (when the experiment resumes)
                self._interrupted.add(trial_id)
                self._checkpoint_grace.pop(trial_id, None)
        elif self._budget_spent() and action == Decision.CONTINUE:
            decision = Decision.PAUSE  # the time budget is spent: end at this checkpoint
        elif action == Decision.CONTINUE and self._deadline is not None:
            decision = self._before_deadline(trial, checkpoint, decision)
        if self.policy is not None and _action(decision) == Decision.CONTINUE:
            changed = self.policy.on_result(trial_id, row, trial.config)
            if changed is not None and changed != trial.config:
                self.set_config(trial_id, changed)  # the trial has it when this report returns
        decision = self._log_decision(trial, _action(decision), iteration)
        if self._free_ranks >= self._ranks_per_trial:  # a result can make work for idle ranks (a PBT round ends)
            self._dispatch()
        return decision

    def on_segment_end(self, trial_id: int, how: SegmentEnd, error: str | None = None,
                       checkpoint: str | None = None, t: float | None = None) -> None:
        """A worker finished running ``trial_id`` (returned, paused, stopped, failed or died)."""
        self._event_time(t)
        how = SegmentEnd(how)
        self._record(RecordKind.END, trial=trial_id, how=how.name, error=error, ckpt=checkpoint)
        trial = self.trials[trial_id]
        self._times.ended(trial_id)
        self.placements.pop(trial_id, None)
        if trial_id in self._running:
            del self._running[trial_id]
            self._free_ranks += self._ranks_per_trial
        donor = self._exploiting.pop(trial_id, None)
        if checkpoint and donor is None:  # an exploiting trial goes on from its copy of the donor's
            self._set_checkpoint(trial, checkpoint, trial.iteration, trial.time_total_s)
        if how == SegmentEnd.STORAGE_FULL:
            self._on_storage_full(trial, error or "no space left on device")
        elif how == SegmentEnd.ERROR:
            self._on_error(trial, error or "unknown error")
        elif trial.state.is_finished:
            pass  # already stopped by a criterion or the scheduler
        elif how == SegmentEnd.COMPLETED and trial_id in self._tentative:
            # its copy of a donor's checkpoint had nothing left to train: the exploit is undone, and its
            # own model, which never said it was done, goes on from its own checkpoint, first in line
            copied_from = self._tentative[trial_id]["donor"]
            self._undo_exploit(trial)
            self._set_state(trial, TrialState.PAUSED, f"trial {copied_from}'s checkpoint had nothing left to train: "
                                                      "goes on from its own")
            self._requeue[trial_id] = None
        elif how == SegmentEnd.COMPLETED:
            self._finish(trial, "completed", complete=True)
        elif donor is not None and trial_id in self._exploit_waits:
            self._interrupted.discard(trial_id)
            self._set_state(trial, TrialState.PAUSED, f"paused with trial {donor}'s checkpoint")
        elif donor is not None:
            self._interrupted.discard(trial_id)
            self._set_state(trial, TrialState.PAUSED, f"goes on from trial {donor}'s checkpoint")
            self._requeue[trial_id] = None  # at once, first in line
        elif trial_id in self._interrupted or how == SegmentEnd.INTERRUPTED:
            self._interrupted.discard(trial_id)
            asked = trial_id in self._pause_requested and not self._interrupting
            self._set_state(trial, TrialState.PAUSED, "paused on request" if asked else "interrupted")
            self._requeue[trial_id] = None
        elif how == SegmentEnd.PAUSED:
            self._set_state(trial, TrialState.PAUSED, "paused by scheduler")
        self._pause_requested.discard(trial_id)
        self._checkpoint_grace.pop(trial_id, None)
        self._exploit_waits.discard(trial_id)
        self._dispatch()

    # -- outputs ----------------------------------------------------------------------
    def take_launches(self) -> list[Launch]:
        """Segments to start now, each on ``launch.resources.ranks_per_trial`` free ranks (the
        backend has that many idle); the list is emptied. Report each placement with :meth:`placed`."""
        launches, self._launches = self._launches, []
        return launches

    def placed(self, trial_id: int, ranks: list[int], t: float | None = None) -> None:
        """The backend started ``trial_id``'s segment on ``ranks`` (the first one leads it): journaled
        for the experiment's history (the ``segments`` table); it changes no decision."""
        self._event_time(t)
        self._times.launched(trial_id, self._now)
        self.placements[trial_id] = (ranks, self._now)
        self._record(RecordKind.LAUNCH, trial=trial_id, rank=ranks[0], ckpt=self.trials[trial_id].checkpoint,
                     **({"ranks": ranks} if len(ranks) > 1 else {}))

    def take_obsolete_checkpoints(self) -> list[tuple[int, str]]:
        """``(trial id, checkpoint)`` that no trial can resume from any more: hand each to the store's
        :meth:`~hpctune.store.base.Store.retire_checkpoint` once the journal is flushed (it deletes it
        when the records that made it obsolete are durable)."""
        paths, self._obsolete_checkpoints = self._obsolete_checkpoints, []
        return paths

    @property
    def started_at(self) -> float:
        """When this run started, on the controller's clock (the time budget counts from here)."""
        return self._started_at

    @property
    def free_ranks(self) -> int:
        """Worker ranks idle now (the busy ones run :attr:`running`)."""
        return self._free_ranks

    @property
    def num_running(self) -> int:
        return len(self._running)

    @property
    def running(self) -> list[int]:
        """The trials running now, in launch order."""
        return list(self._running)

    @property
    def is_finished(self) -> bool:
        """Nothing runs and nothing more can be started on the free ranks (enough of them joined
        for a trial: a multi-rank trial waits until its ranks are there; a suggestion under way
        in the background may give one)."""
        return (not self._running and self._free_ranks >= self._ranks_per_trial and not self._launches
                and not self.suggesting)

    @property
    def interrupting(self) -> bool:
        return self._interrupting

    def take_notices(self) -> list[str]:
        """Warnings for the console (each given once); the list is emptied."""
        notices, self._notices = self._notices, []
        return notices

    def finalize(self) -> str:
        """Close the experiment: ``finished`` or ``interrupted``; unfinished trials end when finished."""
        if self._interrupting or self._requeue:
            status = "interrupted"
        else:
            status = "finished"
            for trial in self.trials.values():
                if not trial.state.is_finished:
                    why = "not promoted" if trial.state == TrialState.PAUSED else "never started"
                    why = "time budget spent" if self._budget_spent() else why
                    self._set_state(trial, TrialState.TERMINATED, why)
        self._record(RecordKind.STATUS, status=status)
        return status

    # -- internals ------------------------------------------------------------------------
    def _event_time(self, t: float | None) -> None:
        self._now = self.clock() if t is None else t
        self._hold_requests = False

    def _record(self, kind: RecordKind, **fields) -> None:
        if not self._replaying:
            self.store.record(kind, t=self._now, **fields)

    def _log_decision(self, trial: Trial, decision, iteration: int | None = None):
        """Journal a PAUSE or STOP answered to the result of ``iteration`` (default: the trial's last)."""
        action = _action(decision)
        if action != Decision.CONTINUE:
            self._record(RecordKind.DECISION, trial=trial.trial_id, it=trial.iteration if iteration is None else iteration,
                         d=Decision(action).name)
        return decision

    def _set_state(self, trial: Trial, state: TrialState, why: str = "", record: bool = True) -> None:
        if state.is_finished and trial.trial_id in self._tentative:
            self._undo_exploit(trial)  # a finished trial is never exploited: its model is its own
        self.counts[trial.state] -= 1
        self.counts[state] += 1
        trial.state = state
        if why:
            trial.end_reason = why
        if record:
            self._record(RecordKind.STATE, trial=trial.trial_id, state=state.name, why=why, failures=trial.num_failures)

    def _finish(self, trial: Trial, why: str, complete: bool) -> None:
        self._requeue.pop(trial.trial_id, None)
        if self.policy is not None:
            self.policy.on_trial_end(trial.trial_id)
        self._set_state(trial, TrialState.TERMINATED, why)
        if complete:
            self.scheduler.on_trial_complete(trial, trial.last_result)
        self._source.on_trial_complete(trial.trial_id, trial.last_result, error=False)

    def _on_error(self, trial: Trial, error: str) -> None:
        trial.num_failures += 1
        trial.error = error
        if trial.num_failures <= self.spec.max_failures:
            self._set_state(trial, TrialState.PENDING, f"retry {trial.num_failures} of {self.spec.max_failures}")
            self._requeue[trial.trial_id] = None
            return
        self._end_in_error(trial, error)

    def _on_storage_full(self, trial: Trial, reason: str) -> None:
        """A trial's checkpoint could not be written for want of space: it keeps its last good
        checkpoint and runs again first when the experiment resumes (no failure is counted)."""
        self._interrupted.discard(trial.trial_id)
        if not trial.state.is_finished:
            self._set_state(trial, TrialState.PAUSED if trial.checkpoint else TrialState.PENDING, "storage full")
            self._requeue[trial.trial_id] = None
        self.on_storage_full(reason)

    def _next_trial(self) -> Trial | None:
        while self._requeue:
            trial_id = next(iter(self._requeue))
            del self._requeue[trial_id]
            trial = self.trials[trial_id]
            if trial.state in (TrialState.PENDING, TrialState.PAUSED):
                return trial
        trial = self.scheduler.choose_trial_to_run(self.trials)
        if trial is None:
            was_finished = self._searcher_finished
            if self._add_trial() is not None or self._searcher_finished != was_finished:
                # a new trial, or the search just ended (a synchronous scheduler may have closed a rung)
                trial = self.scheduler.choose_trial_to_run(self.trials)
        return trial

    def _budget_spent(self) -> bool:
        budget = self.spec.time_budget_s
        return budget is not None and self._now - self._started_at >= budget

    @property
    def _ranks_per_trial(self) -> int:
        return self.spec.resources.ranks_per_trial

    def _dispatch(self) -> None:
        if self._interrupting or self._budget_spent():
            return
        if self._deadline is not None and not segment_fits(self._deadline, self._now, self._times.start_up(),
                                                             self._times.iteration(), self._window):
            if not self._running and not self.is_finished_searching:
                self.stopped_for_deadline = True  # this allocation can do no more: the next one goes on
                if not self._replaying:
                    self._notices.append("this allocation ends before another segment could reach a checkpoint: "
                                         "stopping now; the next allocation continues")
                self.request_stop(why="time limit")
            return
        while self._free_ranks >= self._ranks_per_trial:
            trial = self._next_trial()
            if trial is None:
                return
            self._launch(trial)

    @property
    def is_finished_searching(self) -> bool:
        """No trial is left to run or to add."""
        return self._searcher_finished and not self._requeue and all(
            trial.state.is_finished or trial.state == TrialState.RUNNING for trial in self.trials.values())

    def _launch(self, trial: Trial) -> None:
        self._requeue.pop(trial.trial_id, None)
        start = self.scheduler.starting_point(trial)
        if start is not None:
            self._start_from(trial, start)
        self._set_state(trial, TrialState.RUNNING, record=False)  # the LAUNCH record says it
        self._free_ranks -= self._ranks_per_trial
        self._running[trial.trial_id] = None
        if self._replaying:
            return
        checkpoint = trial.checkpoint and str(self.store.checkpoint_path(trial.checkpoint, trial.trial_id))
        task = TrialTask(
            trial_id=trial.trial_id, trainable=self.spec.trainable, config=trial.config,
            experiment_dir=str(self.store.root), trial_dir=self.store.trial_dir(trial.trial_id),
            checkpoint=checkpoint, metric=self.spec.metric,
            start_iteration=trial.checkpoint_iteration if trial.checkpoint else 0,
            time_total_s=trial.checkpoint_time_s if trial.checkpoint else 0.0,
            python_path=self.python_path,
        )
        self._launches.append(Launch(task, self.spec.resources))


def _interned(row: dict) -> dict:
    """``row`` with its names (and string values, such as the hostname) interned: a row arrives
    unpickled with its own copy of every name, and each trial keeps its last row."""
    return {sys.intern(k): (sys.intern(v) if type(v) is str and len(v) < 64 else v) for k, v in row.items()}


def _action(decision: Decision | SchedulerDecision) -> Decision:
    return Decision(decision.action if isinstance(decision, SchedulerDecision) else decision)
