"""Carrying out what a scheduler's decision carries besides its action: a new config, or going on
from another trial's newest checkpoint (PBT's exploit), for a trial that reports or is about to run.

Mixed into :class:`hpctune.controller.core.Controller`, whose attributes it reads and sets.
"""
from __future__ import annotations

from ..enums import Decision, RecordKind
from ..errors import describe_os_error
from ..schedulers import SchedulerDecision
from ..trial import Trial

__all__ = ["DecisionPayloads"]


class DecisionPayloads:
    """:class:`~hpctune.controller.core.Controller`'s handling of :class:`~hpctune.schedulers.SchedulerDecision` payloads."""

    def _carry_out(self, trial: Trial, decision: SchedulerDecision) -> Decision:
        """Do what a scheduler's decision carries besides its action (see :class:`SchedulerDecision`);
        the action the worker gets."""
        action = Decision(decision.action)
        if action == Decision.STOP:
            return action
        if decision.checkpoint_now and not self._replaying:
            self.checkpoint_now([trial.trial_id])
        if decision.checkpoint_of is not None:
            return self._exploit(trial, decision.checkpoint_of, decision.config, at_once=action == Decision.CONTINUE)
        if decision.config is not None:
            self.set_config(trial.trial_id, decision.config)
        return action

    def _exploit(self, trial: Trial, donor_id: int, config: dict | None, at_once: bool = True) -> Decision:
        """``trial`` pauses now and goes on from its own copy of ``donor_id``'s newest checkpoint (and
        ``config``): PBT's exploit. ``at_once``: first in line; else when the scheduler chooses it."""
        if not self._take_checkpoint_of(trial, donor_id, config):
            return Decision.CONTINUE
        self._exploiting[trial.trial_id] = donor_id
        if not at_once:
            self._exploit_waits.add(trial.trial_id)
        return Decision.PAUSE

    def _start_from(self, trial: Trial, start: SchedulerDecision) -> None:
        """A scheduler's :meth:`~hpctune.schedulers.Scheduler.starting_point` for a trial about to run."""
        if start.checkpoint_of is not None:
            self._take_checkpoint_of(trial, start.checkpoint_of, start.config)
        elif start.config is not None:
            self._record(RecordKind.CONFIG, trial=trial.trial_id, config=start.config, it=trial.iteration)
            trial.config = start.config

    def _take_checkpoint_of(self, trial: Trial, donor_id: int, config: dict | None) -> bool:
        """Make a copy of ``donor_id``'s newest checkpoint ``trial``'s newest (journaled), with
        ``config``, until a result follows it (:mod:`hpctune.controller.checkpoints`); False (and a
        warning) if the donor has none or it cannot be copied."""
        donor = self.trials.get(donor_id)
        if donor is None or donor.checkpoint is None:
            if not self._replaying:
                self._notices.append(f"warning: the scheduler asked trial {trial.trial_id} to go on from trial "
                                     f"{donor_id}'s checkpoint, but it has none: ignored")
            return False
        name = f"exploit_{donor_id:06d}_{donor.checkpoint_iteration}.h5"
        copy = f"trials/{trial.trial_id:06d}/{name}"
        if not self._replaying:  # the copy is taken now: the donor may delete its own at its next checkpoint
            try:
                self.store.copy_checkpoint(donor.checkpoint, donor_id, trial.trial_id, name)
            except OSError as exc:
                self._notices.append(f"warning: trial {trial.trial_id} cannot go on from trial {donor_id}'s "
                                     f"checkpoint {donor.checkpoint}: {describe_os_error(exc)}; it goes on as it was")
                return False
        self._record(RecordKind.EXPLOIT, trial=trial.trial_id, donor=donor_id, src=donor.checkpoint, ckpt=copy,
                     it=donor.checkpoint_iteration, config=config)
        self._begin_exploit(trial, donor_id, copy, donor.checkpoint_iteration, donor.checkpoint_time_s, config)
        return True
