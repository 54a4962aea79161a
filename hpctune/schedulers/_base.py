"""The Scheduler interface: decides *when* a trial continues, pauses or stops, and which runs next."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..enums import Decision, TrialState
from ..registry import Configurable, Registry
from ..trial import Trial, metric_value

__all__ = ["Scheduler", "SchedulerDecision", "SCHEDULERS", "metric_value"]

SCHEDULERS = Registry("scheduler")


@dataclass(frozen=True)
class SchedulerDecision:
    """A scheduler's answer to a result when it carries more than the action.

    Attributes:
        action: CONTINUE, PAUSE or STOP, as a plain :class:`~hpctune.enums.Decision` would be.
        config: the trial's hyperparameters from now on (all of them). With CONTINUE the running
            trial sees them at its next report (``hpctune.get_config()``, ``Trainable.reset_config``);
            with PAUSE, from its next segment. Ignored with STOP.
        checkpoint_of: continue from the *newest* checkpoint of this trial (PBT's exploit): the
            trial pauses now and runs again at once from a copy of that checkpoint (taken now, so
            the other trial may go on and delete its own), with ``config`` if given. A trial without
            a checkpoint is never a source: the request is then ignored with a warning. ``action``
            must be CONTINUE or PAUSE: with CONTINUE the trial runs again at once, first in line;
            with PAUSE it waits, the copy its newest checkpoint, until :meth:`Scheduler.choose_trial_to_run`
            chooses it.
        checkpoint_now: ask the running trial for a checkpoint with its next result
            (``hpctune.checkpoint_requested()`` turns True, as :meth:`Controller.checkpoint_now` does),
            so that a pause there loses nothing. A trainable that checkpoints only now and then
            need not heed it.
    """

    action: Decision
    config: dict | None = None
    checkpoint_of: int | None = None
    checkpoint_now: bool = False


class Scheduler(Configurable):
    """Base class: every result is answered CONTINUE; a subclass chooses which trial runs.

    The controller calls: :meth:`setup` once; :meth:`on_trial_add` for every
    new trial; :meth:`on_trial_result` for every accepted result but one that
    meets a stop criterion (its return value decides); :meth:`on_trial_complete`
    when a trial returns or meets a stop criterion, :meth:`on_trial_error` when
    it failed more often than ``max_failures`` allows; :meth:`on_no_more_trials`
    once the searcher is exhausted; :meth:`choose_trial_to_run` whenever a
    worker is free and no retried or interrupted trial waits; :meth:`starting_point`
    for each trial about to run. Per-call work must
    not scan all trials. :meth:`state_dict` / :meth:`load_state_dict` must
    capture everything, so that a resumed experiment decides as an
    uninterrupted one would.
    """

    kind = "scheduler"
    name = "base"

    def setup(self, metric: str, mode: str, seed: int = 0) -> None:
        self.metric = metric
        self.mode = mode
        self.seed = seed

    def set_space(self, space: dict) -> None:
        """The experiment's search space (PBT explores within it); called once, before :meth:`setup`.

        Raises:
            SpecError: an option that does not fit the space (naming ``scheduler.<option>``).
        """

    def score(self, result: Mapping) -> float:
        """The result's metric, larger is better, NaN/inf/missing worst."""
        return metric_value(result, self.metric, self.mode)

    def on_trial_add(self, trial: Trial) -> None:
        pass

    def on_trial_result(self, trial: Trial, result: dict) -> Decision | SchedulerDecision:
        return Decision.CONTINUE

    def on_trial_complete(self, trial: Trial, result: dict) -> None:
        pass

    def on_trial_error(self, trial: Trial) -> None:
        pass

    def rung_levels(self) -> list | None:
        """The budgets (values of ``time_attr``) at which this scheduler compares trials, ascending;
        None when it has no rungs. A searcher is told them (:meth:`Searcher.set_fidelity`)."""
        return None

    def why_no_growth(self) -> str | None:
        """Why an experiment under this scheduler cannot take more trials once it has started
        (``resume --num-samples``, or ``num_samples`` raised in the spec); None: it can."""
        return None

    def on_no_more_trials(self) -> None:
        """The searcher is exhausted: no trial will be added any more (SHA closes its base rung)."""

    def choose_trial_to_run(self, trials: Mapping[int, Trial]) -> Trial | None:
        """A PENDING or PAUSED trial to run on a free worker, or None."""
        raise NotImplementedError

    def starting_point(self, trial: Trial) -> SchedulerDecision | None:
        """Where ``trial``, about to run, starts: None for its own newest checkpoint and config, or a
        decision with ``checkpoint_of`` (another trial's newest checkpoint) and/or ``config``
        (called for every segment, the resumed one's too, in the same order on resume)."""
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    @staticmethod
    def is_runnable(trial: Trial | None) -> bool:
        return trial is not None and trial.state in (TrialState.PENDING, TrialState.PAUSED)

    @staticmethod
    def first_pending(queue, trials: Mapping[int, Trial]) -> Trial | None:
        """The first trial of ``queue`` (a deque of ids, oldest first) still PENDING; the ones
        before it, started or ended meanwhile, leave the queue."""
        while queue:
            trial = trials.get(queue[0])
            if trial is not None and trial.state == TrialState.PENDING:
                return trial
            queue.popleft()
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"

    def describe_progress(self) -> str:
        """A short line for the console (e.g. trials per rung); empty by default."""
        return ""

