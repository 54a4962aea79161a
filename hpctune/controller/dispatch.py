"""Giving free ranks work: the next trial to run (retried and interrupted ones first, then the
scheduler's choice, then a new one from the searcher), its starting point, and the launch that the
backend places; nothing starts once the experiment stops, its time budget is spent, a segment's
first iteration would pass its budget, or no segment fits before the allocation's deadline."""
from __future__ import annotations

from ..enums import TrialState
from ..schedulers import Scheduler
from ..spec import ExperimentSpec
from ..store.base import Store
from ..trial import Trial, TrialTask
from .budget import forecast, units_of
from .controls import RunningControls
from .lifecycle import TrialLifecycle
from .messages import Launch
from .new_trials import NewTrials
from .payloads import DecisionPayloads
from .state import ControllerState
from .walltime import segment_fits

__all__ = ["Dispatcher"]


class Dispatcher:
    """Turns free ranks into :class:`~hpctune.controller.messages.Launch` es (``state.launches``).

    Args:
        state: the controller's state.
        spec: the trainable, metric, resources and time budget of every launch.
        store: the trial's folder and checkpoint path each launch names.
        scheduler: chooses the trial to run, and where it starts from.
        new_trials: a new trial when the scheduler has none to run.
        payloads: carries out a starting point that names another trial's checkpoint or a config.
        lifecycle: the trial runs.
        controls: the experiment stops when no segment fits before the deadline.
        python_path: folders workers add to ``sys.path`` to import the trainable.
    """

    def __init__(self, state: ControllerState, spec: ExperimentSpec, store: Store, scheduler: Scheduler,
                 new_trials: NewTrials, payloads: DecisionPayloads, lifecycle: TrialLifecycle,
                 controls: RunningControls, python_path: list[str]):
        self.state = state
        self.spec = spec
        self.store = store
        self.scheduler = scheduler
        self.new_trials = new_trials
        self.payloads = payloads
        self.lifecycle = lifecycle
        self.controls = controls
        self.python_path = python_path
        self.ranks_per_trial = spec.resources.ranks_per_trial
        self.units = units_of(self.ranks_per_trial, spec.resources.gpus_per_rank)  # a segment's cost a second

    def dispatch(self) -> None:
        """Launch trials while enough ranks are free and there is one to run."""
        state = self.state
        if state.interrupting or self.budget_spent():
            return
        if state.deadline is not None and not segment_fits(state.deadline, state.now, state.times.start_up(),
                                                           state.times.iteration(), state.window):
            if not state.running and not self.is_finished_searching:
                state.stopped_for_deadline = True  # this allocation can do no more: the next one goes on
                if not state.replaying:
                    state.notices.append("this allocation ends before another segment could reach a checkpoint: "
                                         "stopping now; the next allocation continues")
                self.controls.request_stop(why="time limit")
            return
        while state.free_ranks >= self.ranks_per_trial:
            if self.cost_budget_spent():
                return
            trial = self._next_trial()
            if trial is None:
                return
            self._launch(trial)

    def budget_spent(self) -> bool:
        """The experiment's ``time_budget_s`` has passed since it started."""
        budget = self.spec.time_budget_s
        return budget is not None and self.state.now - self.state.started_at >= budget

    def cost_budget_spent(self) -> bool:
        """A new segment's start-up, first iteration and wind-down would pass the ``budget`` once the
        running segments have done their next iteration (:func:`~hpctune.controller.budget.forecast`)."""
        if self.spec.budget is None:
            return False
        state = self.state
        return forecast(state.spending, state.times, state.now, 1, self.unplaced_units() + self.units) \
            > self.spec.budget * 3600.0

    def unplaced_units(self) -> int:
        """Units a second of the segments launched but not placed yet (they cost from their placement)."""
        return self.units * max(0, len(self.state.running) - len(self.state.spending.running_costs))

    @property
    def is_finished_searching(self) -> bool:
        """No trial is left to run or to add."""
        state = self.state
        return state.searcher_finished and not state.requeue and all(
            trial.state.is_finished or trial.state == TrialState.RUNNING for trial in state.trials.values())

    def _next_trial(self) -> Trial | None:
        state = self.state
        while state.requeue:
            trial_id = next(iter(state.requeue))
            del state.requeue[trial_id]
            trial = state.trials[trial_id]
            if trial.state in (TrialState.PENDING, TrialState.PAUSED):
                return trial
        chosen = self.scheduler.choose_trial_to_run(state.trials)
        if chosen is None:
            was_finished = state.searcher_finished
            if self.new_trials.add_trial() is not None or state.searcher_finished != was_finished:
                # a new trial, or the search just ended (a synchronous scheduler may have closed a rung)
                chosen = self.scheduler.choose_trial_to_run(state.trials)
        return chosen

    def _launch(self, trial: Trial) -> None:
        state = self.state
        state.requeue.pop(trial.trial_id, None)
        start = self.scheduler.starting_point(trial)
        if start is not None:
            self.payloads.start_from(trial, start)
        self.lifecycle.set_state(trial, TrialState.RUNNING, record=False)  # the LAUNCH record says it
        state.free_ranks -= self.ranks_per_trial
        state.running[trial.trial_id] = None
        if state.replaying:
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
        state.launches.append(Launch(task, self.spec.resources))
