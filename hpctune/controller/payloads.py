"""Carrying out what a scheduler's decision carries besides its action: a new config, or going on
from another trial's newest checkpoint (PBT's exploit), for a trial that reports or is about to run."""
from __future__ import annotations

from ..enums import Decision, RecordKind
from ..errors import describe_os_error
from ..schedulers import SchedulerDecision
from ..store.base import Store
from ..trial import Trial
from .checkpoints import TrialCheckpoints
from .controls import RunningControls
from .events import EventLog
from .state import ControllerState

__all__ = ["DecisionPayloads"]


class DecisionPayloads:
    """The controller's handling of :class:`~hpctune.schedulers.SchedulerDecision` payloads.

    Args:
        state: the controller's state.
        log: its clock and journal.
        store: copies a donor's checkpoint into the trial's folder.
        checkpoints: the copy becomes the trial's newest checkpoint there, tentatively.
        controls: a new config or a checkpoint request reaches the running trial through them.
    """

    def __init__(self, state: ControllerState, log: EventLog, store: Store, checkpoints: TrialCheckpoints,
                 controls: RunningControls):
        self.state = state
        self.log = log
        self.store = store
        self.checkpoints = checkpoints
        self.controls = controls

    def carry_out(self, trial: Trial, decision: SchedulerDecision) -> Decision:
        """Do what a scheduler's decision carries besides its action (see :class:`SchedulerDecision`);
        the action the worker gets."""
        action = Decision(decision.action)
        if action == Decision.STOP:
            return action
        if decision.checkpoint_now and not self.state.replaying:
            self.controls.checkpoint_now([trial.trial_id])
        if decision.checkpoint_of is not None:
            return self._exploit(trial, decision.checkpoint_of, decision.config, at_once=action == Decision.CONTINUE)
        if decision.config is not None:
            self.controls.set_config(trial.trial_id, decision.config)
        return action

    def start_from(self, trial: Trial, start: SchedulerDecision) -> None:
        """A scheduler's :meth:`~hpctune.schedulers.Scheduler.starting_point` for a trial about to run."""
        if start.checkpoint_of is not None:
            self._take_checkpoint_of(trial, start.checkpoint_of, start.config)
        elif start.config is not None:
            self.log.record(RecordKind.CONFIG, trial=trial.trial_id, config=start.config, it=trial.iteration)
            trial.config = start.config

    def _exploit(self, trial: Trial, donor_id: int, config: dict | None, at_once: bool = True) -> Decision:
        """``trial`` pauses now and goes on from its own copy of ``donor_id``'s newest checkpoint (and
        ``config``): PBT's exploit. ``at_once``: first in line; else when the scheduler chooses it."""
        if not self._take_checkpoint_of(trial, donor_id, config):
            return Decision.CONTINUE
        self.state.exploiting[trial.trial_id] = donor_id
        if not at_once:
            self.state.exploit_waits.add(trial.trial_id)
        return Decision.PAUSE

    def _take_checkpoint_of(self, trial: Trial, donor_id: int, config: dict | None) -> bool:
        """Make a copy of ``donor_id``'s newest checkpoint ``trial``'s newest (journaled), with
        ``config``, until a result follows it (:mod:`hpctune.controller.checkpoints`); False (and a
        warning) if the donor has none or it cannot be copied."""
        state = self.state
        donor = state.trials.get(donor_id)
        if donor is None or donor.checkpoint is None:
            if not state.replaying:
                state.notices.append(f"warning: the scheduler asked trial {trial.trial_id} to go on from trial "
                                     f"{donor_id}'s checkpoint, but it has none: ignored")
            return False
        name = f"exploit_{donor_id:06d}_{donor.checkpoint_iteration}.h5"
        copy = f"trials/{trial.trial_id:06d}/{name}"
        if not state.replaying:  # the copy is taken now: the donor may delete its own at its next checkpoint
            try:
                self.store.copy_checkpoint(donor.checkpoint, donor_id, trial.trial_id, name)
            except OSError as exc:
                state.notices.append(f"warning: trial {trial.trial_id} cannot go on from trial {donor_id}'s "
                                     f"checkpoint {donor.checkpoint}: {describe_os_error(exc)}; it goes on as it was")
                return False
        self.log.record(RecordKind.EXPLOIT, trial=trial.trial_id, donor=donor_id, src=donor.checkpoint, ckpt=copy,
                        it=donor.checkpoint_iteration, config=config)
        self.checkpoints.begin_exploit(trial, donor_id, copy, donor.checkpoint_iteration, donor.checkpoint_time_s,
                                       config)
        return True
