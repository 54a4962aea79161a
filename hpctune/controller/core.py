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
from collections.abc import Callable, Mapping
from typing import Any

from ..enums import Decision, RecordKind, SegmentEnd, TrialState
from ..errors import SpecError
from ..schedulers import SchedulerDecision, metric_value
from ..spec import ExperimentSpec
from ..store.base import Store
from ..space import flatten
from ..trial import RESULT_FIELDS, Trial
from .algorithms import build_algorithms, build_policy_of
from .budget import units_of
from .checkpoints import TrialCheckpoints
from .controls import RunningControls
from .dispatch import Dispatcher
from .events import EventLog
from .lifecycle import TrialLifecycle
from .messages import ControlMessage, Launch
from .new_trials import NewTrials
from .payloads import DecisionPayloads
from .resume import Resume
from .state import ControllerState
from .state_fields import state_dict
from .suggestions import SuggestionSource

__all__ = ["Controller", "Launch", "ControlMessage", "build_algorithms"]


class Controller:
    """Owns the trials table and applies the scheduler's and searcher's decisions.

    Its state is one declared object (:attr:`state`, :class:`~hpctune.controller.state.ControllerState`:
    what a snapshot keeps, what a new allocation starts afresh), which its parts share, each given
    what else it needs: :class:`~hpctune.controller.checkpoints.TrialCheckpoints` (each trial's
    checkpoints and tentative exploits), :class:`~hpctune.controller.lifecycle.TrialLifecycle`
    (trial state changes, ends, retries), :class:`~hpctune.controller.controls.RunningControls`
    (controls of running trials, the deadline, stopping),
    :class:`~hpctune.controller.payloads.DecisionPayloads` (what a scheduler's decision carries),
    :class:`~hpctune.controller.new_trials.NewTrials` (suggestions become trials),
    :class:`~hpctune.controller.dispatch.Dispatcher` (free ranks get work) and
    :class:`~hpctune.controller.resume.Resume` (restore); the journal and the event's time are
    their :class:`~hpctune.controller.events.EventLog`. The controller handles the input events
    and hands out what they produce.

    Args:
        spec: the validated experiment spec (its scheduler and searcher are built here).
        store: where every event is journaled.
        clock: wall-clock time source (injected for tests and the simulator).
        python_path: folders workers add to ``sys.path`` to import the trainable.
    """

    def __init__(self, spec: ExperimentSpec, store: Store, clock: Callable[[], float] = time.time,
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
        self._in_force = tuple(zip((f"config/{key}" for key in self.policy.keys), self.policy.keys)
                               if self.policy else ())
        self.searcher.setup(spec.space, spec.metric, spec.mode, spec.num_samples, spec.seed)
        levels = self.scheduler.rung_levels()
        if levels:  # a multi-fidelity scheduler: the searcher may learn from every rung, knowing its budget
            self.searcher.set_fidelity(getattr(self.scheduler, "time_attr"), levels)  # such a scheduler has one
        self._source = SuggestionSource(self.searcher)  # every later word to the searcher goes through it
        self.state = ControllerState()
        """The controller's state (read it; the controller's methods change it)."""
        self.state.now = self.state.started_at = clock()  # the time budget counts from here
        state, log = self.state, EventLog(self.state, store, clock)
        self._log = log
        self._checkpoints = TrialCheckpoints(state, log, store, spec)
        self._controls = RunningControls(state, log)
        self._lifecycle = TrialLifecycle(state, log, spec, self._checkpoints, self._controls, self.scheduler,
                                         self._source, self.policy)
        self._payloads = DecisionPayloads(state, log, store, self._checkpoints, self._controls)
        self._new_trials = NewTrials(state, log, self._source, self.searcher, self.scheduler)
        self._dispatcher = Dispatcher(state, spec, store, self.scheduler, self._new_trials, self._payloads,
                                      self._lifecycle, self._controls, self.python_path)
        self._resume = Resume(state, log, store, self.scheduler, self.searcher, self._source, self.policy,
                              self._checkpoints, self._lifecycle, self._new_trials, self._dispatcher)

    # -- input events ---------------------------------------------------------------
    def on_workers_joined(self, count: int = 1, t: float | None = None) -> None:
        """``count`` more ranks can take work (workers that made first contact)."""
        self._log.event_at(t)
        self._log.record(RecordKind.READY, n=count)
        self.state.free_ranks += count
        self._dispatcher.dispatch()

    def on_result(self, trial_id: int, row: dict, checkpoint: str | None = None,
                  t: float | None = None) -> Decision:
        """A result reported by a running trial; returns what the trial does next.

        A result whose ``training_iteration`` was already accepted (a trial
        resumed from an older checkpoint after a crash) is dropped: each
        iteration is recorded and shown to the scheduler once.

        Raises:
            SpecError: the experiment's metric was never reported (bad input).
        """
        state, spec = self.state, self.spec
        self._log.event_at(t)
        trial = state.trials[trial_id]
        row = _interned(row)
        iteration = row["training_iteration"]
        if iteration <= trial.iteration or trial.state.is_finished:
            return Decision.STOP if trial.state.is_finished else Decision.CONTINUE
        if not state.metric_seen:
            self._check_first_result(row)
        if self._in_force:  # the values the policy controls, as in force for this result
            flat = flatten(trial.config)
            for column, key in self._in_force:
                row[column] = flat.get(key)
        self._log.record(RecordKind.RESULT, trial=trial_id, row=row, ckpt=checkpoint)
        state.times.result(trial_id, row, state.now)
        trial.iteration = iteration
        trial.last_result = row
        trial.time_total_s = row.get("time_total_s", trial.time_total_s)
        if checkpoint:
            self._checkpoints.set_checkpoint(trial, checkpoint, iteration, trial.time_total_s)
        if trial_id in state.tentative:  # its exploit trained this result: final now (after the checkpoint
            self._checkpoints.commit_exploit(trial)  # is taken: it may bear the name of one of the trial's own)
        score = metric_value(row, spec.metric, spec.mode)
        if score > trial.best_score:
            trial.best_score, trial.best_iteration = score, iteration
        if spec.metric in row and (state.best is None or score > state.best[0]):
            state.best = (score, trial_id)

        if spec.stop_criterion_met(row):
            self._source.on_trial_result(trial_id, row)
            self._lifecycle.finish(trial, "stop criterion", complete=True)
            return self._log_decision(trial, Decision.STOP)
        decision: Decision | SchedulerDecision = self.scheduler.on_trial_result(trial, row)  # it sees every result
        self._source.on_trial_result(trial_id, row)
        if isinstance(decision, SchedulerDecision):
            decision = self._payloads.carry_out(trial, decision)
        action = _action(decision)
        if action == Decision.STOP:
            self._lifecycle.finish(trial, "stopped by scheduler", complete=False)
        elif (state.interrupting or trial_id in state.pause_requested) and action == Decision.CONTINUE:
            if not checkpoint and state.checkpoint_grace.get(trial_id, 0) > 0:
                # sent before the trial heard "checkpoint now": its next result carries the checkpoint
                state.checkpoint_grace[trial_id] -= 1
            else:
                decision = Decision.PAUSE  # pause at this checkpoint; resumed first (when the experiment resumes)
                state.interrupted.add(trial_id)
                state.checkpoint_grace.pop(trial_id, None)
        elif self._dispatcher.budget_spent() and action == Decision.CONTINUE:
            decision = Decision.PAUSE  # the time budget is spent: end at this checkpoint
        elif action == Decision.CONTINUE:
            if spec.budget is not None:
                decision = self._controls.within_budget(trial, checkpoint, decision, spec.budget * 3600.0,
                                                        self._dispatcher.unplaced_units())
            if state.deadline is not None and _action(decision) == Decision.CONTINUE:
                decision = self._controls.before_deadline(trial, checkpoint, decision)
        if self.policy is not None and _action(decision) == Decision.CONTINUE:
            changed = self.policy.on_result(trial_id, row, trial.config)
            if changed is not None and changed != trial.config:
                self.set_config(trial_id, changed)  # the trial has it when this report returns
        decision = self._log_decision(trial, _action(decision), iteration)
        if state.free_ranks >= self._dispatcher.ranks_per_trial:  # a result can make work for idle ranks
            self._dispatcher.dispatch()                            # (a PBT round ends)
        return decision

    def on_segment_end(self, trial_id: int, how: SegmentEnd, error: str | None = None,
                       checkpoint: str | None = None, t: float | None = None) -> None:
        """A worker finished running ``trial_id`` (returned, paused, stopped, failed or died)."""
        state = self.state
        self._log.event_at(t)
        how = SegmentEnd(how)
        self._log.record(RecordKind.END, trial=trial_id, how=how.name, error=error, ckpt=checkpoint)
        trial = state.trials[trial_id]
        state.times.ended(trial_id, state.now)
        state.spending.ended(trial_id, state.now)
        state.placements.pop(trial_id, None)
        if trial_id in state.running:
            del state.running[trial_id]
            state.free_ranks += self._dispatcher.ranks_per_trial
        donor = state.exploiting.pop(trial_id, None)
        if checkpoint and donor is None:  # an exploiting trial goes on from its copy of the donor's
            self._checkpoints.set_checkpoint(trial, checkpoint, trial.iteration, trial.time_total_s)
        self._lifecycle.segment_ended(trial, how, error, donor)
        self._dispatcher.dispatch()

    def on_suggestion(self, t: float | None = None) -> None:
        """Add the trial that the suggestion computed in the background gives, then dispatch."""
        self._log.event_at(t)
        self._new_trials.take_suggestion()
        self._dispatcher.dispatch()

    # -- controls (:mod:`hpctune.controller.controls`) ------------------------------------
    def set_deadline(self, end: float, window: float | None = None, t: float | None = None) -> None:
        """Results of this allocation must be in by ``end`` (Unix time; Slurm's end minus a margin).

        From then on, a trial is paused at a result after which its next iteration (its mean
        ``time_this_iter_s`` so far, else the experiment's) would not end in time, and asked to
        checkpoint one result before; a segment is started only if its start-up and one
        iteration fit. When nothing runs and nothing fits, the experiment stops
        (:attr:`stopped_for_deadline`): the next allocation continues it. ``window``: the usable
        seconds of a whole allocation (its time limit less the margin); what does not fit in
        that is never held back, since no allocation could run it.
        """
        self._controls.set_deadline(end, window, t)

    def checkpoint_now(self, trial_ids: list[int] | None = None) -> list[int]:
        """Ask running trials (all of them by default) to checkpoint at their next report (a time
        limit is near, a node will be drained); returns the trials asked. Nothing is journaled:
        the checkpoints they report are."""
        return self._controls.checkpoint_now(trial_ids)

    def pause_now(self, trial_id: int, t: float | None = None) -> None:
        """Pause running trial ``trial_id`` at its next result (it is told now, so it checkpoints
        with that result); it runs again first, on the next free rank, from that checkpoint."""
        self._controls.pause_now(trial_id, t)

    def set_config(self, trial_id: int, config: dict, t: float | None = None) -> None:
        """Give trial ``trial_id`` new hyperparameters (PBT, live policies). A running trial sees them
        at once (``hpctune.get_config()``; a class trainable's ``reset_config`` before its next step);
        a paused or pending one starts its next segment with them.

        Raises:
            ValueError: the trial is finished.
        """
        self._controls.set_config(trial_id, config, t)

    def request_stop(self, t: float | None = None, why: str | None = None, checkpoint_first: bool = False) -> None:
        """Ctrl-C / SIGTERM / time limit / a full disk: start nothing new; running trials pause at their
        next result. ``checkpoint_first`` (an allocation's end): each running trial is told to
        checkpoint now, and pauses at its first result with a checkpoint (or its second without:
        one may have been on its way before it heard)."""
        self._controls.request_stop(t, why, checkpoint_first)

    def on_storage_full(self, reason: str, t: float | None = None) -> None:
        """The experiment folder cannot be written (``reason``: e.g. 'no space left on device'):
        stop as for Ctrl-C; :attr:`storage_full` tells the caller why."""
        self._controls.on_storage_full(reason, t)

    # -- suggestions in the background (:mod:`hpctune.controller.new_trials`) -----------------
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

    # -- outputs ----------------------------------------------------------------------
    def take_launches(self) -> list[Launch]:
        """Segments to start now, each on ``launch.resources.ranks_per_trial`` free ranks (the
        backend has that many idle); the list is emptied. Report each placement with :meth:`placed`."""
        launches, self.state.launches = self.state.launches, []
        return launches

    def placed(self, trial_id: int, ranks: list[int], t: float | None = None) -> None:
        """The backend started ``trial_id``'s segment on ``ranks`` (the first one leads it): journaled
        for the experiment's history (the ``segments`` table); it changes no decision."""
        state = self.state
        self._log.event_at(t)
        state.times.launched(trial_id, state.now)
        state.spending.started(trial_id, state.now, units_of(len(ranks), self.spec.resources.gpus_per_rank))
        state.placements[trial_id] = (ranks, state.now)
        self._log.record(RecordKind.LAUNCH, trial=trial_id, rank=ranks[0], ckpt=state.trials[trial_id].checkpoint,
                         **({"ranks": ranks} if len(ranks) > 1 else {}))

    def take_controls(self) -> list[ControlMessage]:
        """Messages for running trials, to send once the journal is flushed; the list is emptied."""
        return self._controls.take_controls()

    def take_obsolete_checkpoints(self) -> list[tuple[int, str]]:
        """``(trial id, checkpoint)`` that no trial can resume from any more: hand each to the store's
        :meth:`~hpctune.store.base.Store.retire_checkpoint` once the journal is flushed (it deletes it
        when the records that made it obsolete are durable)."""
        paths, self.state.obsolete_checkpoints = self.state.obsolete_checkpoints, []
        return paths

    def take_notices(self) -> list[str]:
        """Warnings for the console (each given once); the list is emptied."""
        notices, self.state.notices = self.state.notices, []
        return notices

    @property
    def trials(self) -> dict[int, Trial]:
        """Every trial, by id."""
        return self.state.trials

    @property
    def counts(self) -> Counter:
        """How many trials are in each :class:`~hpctune.enums.TrialState`."""
        return self.state.counts

    @property
    def best(self) -> tuple[float, int] | None:
        """``(score, trial_id)`` of the best result so far (larger score is better), or None."""
        return self.state.best

    @property
    def placements(self) -> dict[int, tuple[list[int], float]]:
        """Running trial -> (its ranks, since when), as :meth:`placed` reported them."""
        return self.state.placements

    @property
    def stopped_for_deadline(self) -> bool:
        """Nothing ran and no segment fitted before the deadline: this allocation stopped (the next goes on)."""
        return self.state.stopped_for_deadline

    @property
    def storage_full(self) -> str | None:
        """Why the experiment stops for want of space, if it does."""
        return self.state.storage_full

    @property
    def spent_s(self) -> float:
        """Rank-seconds (GPU-seconds when trials use GPUs) the experiment's segments took so far, in
        every allocation, running ones included (what ``budget`` counts; docs/budget.md)."""
        return self.state.spending.total(self.state.now)

    @property
    def started_at(self) -> float:
        """When this run started, on the controller's clock (the time budget counts from here)."""
        return self.state.started_at

    @property
    def free_ranks(self) -> int:
        """Worker ranks idle now (the busy ones run :attr:`running`)."""
        return self.state.free_ranks

    @property
    def num_running(self) -> int:
        return len(self.state.running)

    @property
    def running(self) -> list[int]:
        """The trials running now, in launch order."""
        return list(self.state.running)

    @property
    def is_finished(self) -> bool:
        """Nothing runs and nothing more can be started on the free ranks (enough of them joined
        for a trial: a multi-rank trial waits until its ranks are there; a suggestion under way
        in the background may give one)."""
        state = self.state
        return (not state.running and state.free_ranks >= self._dispatcher.ranks_per_trial and not state.launches
                and not self.suggesting)

    @property
    def is_finished_searching(self) -> bool:
        """No trial is left to run or to add."""
        return self._dispatcher.is_finished_searching

    @property
    def interrupting(self) -> bool:
        return self.state.interrupting

    def finalize(self) -> str:
        """Close the experiment: ``finished`` or ``interrupted``; unfinished trials end when finished."""
        state = self.state
        if state.interrupting or state.requeue:
            status = "interrupted"
        else:
            status = "finished"
            for trial in state.trials.values():
                if not trial.state.is_finished:
                    why = "not promoted" if trial.state == TrialState.PAUSED else "never started"
                    why = "time budget spent" if self._dispatcher.budget_spent() else why
                    why = "budget spent" if self._dispatcher.cost_budget_spent() else why
                    self._lifecycle.set_state(trial, TrialState.TERMINATED, why)
        self._log.record(RecordKind.STATUS, status=status)
        return status

    # -- resume (:mod:`hpctune.controller.resume`) ------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly, besides the trials themselves (:attr:`trials`): the
        saved fields of :attr:`state`, then the scheduler's, the searcher's and the policy's state.
        What running segments spent so far is settled first (:meth:`~hpctune.controller.budget.Spending.settle`)."""
        self.state.spending.settle(self.state.now)
        return {**state_dict(self.state), "scheduler": self.scheduler.state_dict(), **self._source.state_dict(),
                **({"policy": self.policy.state_dict()} if self.policy is not None else {})}

    def restore(self, state: Mapping[str, Any] | None, trials: list[Trial], records: list[dict]) -> None:
        """Load a snapshot's state and trials, replay the journal records after it, then let go of the old workers.

        Trials that were running continue from their last checkpoint on whatever
        worker frees first, before anything the scheduler would choose. Checkpoints the replayed
        records made obsolete are handed out again (:meth:`take_obsolete_checkpoints`): a crash may
        have come before they were deleted. The files themselves are not looked at here: ``resume``
        then calls :meth:`check_checkpoints`.

        Raises:
            SpecError: a stored checkpoint path points outside the experiment folder.
        """
        self._resume.restore(self, state, trials, records)

    def check_checkpoints(self) -> None:
        """After :meth:`restore`: each trial that runs again starts from a checkpoint that is there
        and opens. A missing or damaged newest one gives way to the newest intact one of the same
        model (a console line naming both; the trial goes on from that one's iteration, and the
        iterations it repeats are not recorded twice), a tentative exploit's lost copy to the
        trial's own (the exploit undone); with none left, the trial ends ERROR with one line naming
        the file, as its results and lineage describe a model that is gone. A damaged file is left
        where it is."""
        self._resume.check_checkpoints()

    # -- internals ------------------------------------------------------------------------
    def _check_first_result(self, row: dict) -> None:
        """The first result must have the metric; a stop criterion it lacks stops only the trials that report it.

        Raises:
            SpecError: the metric is missing.
        """
        if self.spec.metric not in row:
            reported = ", ".join(k for k in row if k not in RESULT_FIELDS) or "nothing"
            raise SpecError("metric", f"{self.spec.metric!r} was never reported by the trainable "
                                      f"(it reported: {reported})")
        self.state.metric_seen = True
        for key in self.spec.stop:
            if key not in row and not self.state.replaying:
                reported = ", ".join(k for k in row if k not in RESULT_FIELDS)
                self.state.notices.append(f"warning: stop.{key}: the first result has no {key!r} (it reported: "
                                          f"{reported}); this criterion stops only trials that report it")

    def _log_decision(self, trial: Trial, decision: Decision, iteration: int | None = None) -> Decision:
        """Journal a PAUSE or STOP answered to the result of ``iteration`` (default: the trial's last)."""
        if decision != Decision.CONTINUE:
            self._log.record(RecordKind.DECISION, trial=trial.trial_id,
                             it=trial.iteration if iteration is None else iteration, d=Decision(decision).name)
        return decision


def _interned(row: dict) -> dict:
    """``row`` with its names (and string values, such as the hostname) interned: a row arrives
    unpickled with its own copy of every name, and each trial keeps its last row."""
    return {sys.intern(k): (sys.intern(v) if type(v) is str and len(v) < 64 else v) for k, v in row.items()}


def _action(decision: Decision | SchedulerDecision) -> Decision:
    return Decision(decision.action if isinstance(decision, SchedulerDecision) else decision)
