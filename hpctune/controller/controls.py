"""The controller's word to running trials: checkpoint, pause, new config, stop, and the deadline.

Controls are journaled where they change a decision (``pause``, ``config``, ``interrupt``,
``deadline`` records, replayed by ``resume``) and handed to the backend as
:class:`ControlMessage` by :meth:`RunningControls.take_controls`, to send once the journal is
flushed. Mixed into :class:`hpctune.controller.core.Controller`, whose attributes it reads and sets.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..enums import Control, Decision, RecordKind
from ..trial import Trial
from .walltime import Fit, next_iteration_fits

__all__ = ["ControlMessage", "RunningControls"]


@dataclass
class ControlMessage:
    """Tell running trial ``trial_id`` something now (``payload``: the new config for ``Control.CONFIG``)."""

    trial_id: int
    control: Control
    payload: dict | None = None


class RunningControls:
    """:class:`~hpctune.controller.core.Controller`'s controls of running trials and of the experiment's end."""

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
        self._event_time(t)
        self._record(RecordKind.DEADLINE, end=end, **({"window": window} if window is not None else {}))
        self._deadline, self._window = end, window

    def take_controls(self) -> list[ControlMessage]:
        """Messages for running trials, to send once the journal is flushed; the list is emptied."""
        controls, self._controls = self._controls, []
        return controls

    def checkpoint_now(self, trial_ids: list[int] | None = None) -> list[int]:
        """Ask running trials (all of them by default) to checkpoint at their next report (a time
        limit is near, a node will be drained); returns the trials asked. Nothing is journaled:
        the checkpoints they report are."""
        asked = [tid for tid in (self._running if trial_ids is None else trial_ids) if tid in self._running]
        self._controls.extend(ControlMessage(tid, Control.CHECKPOINT) for tid in asked)
        return asked

    def pause_now(self, trial_id: int, t: float | None = None) -> None:
        """Pause running trial ``trial_id`` at its next result (it is told now, so it checkpoints
        with that result); it runs again first, on the next free rank, from that checkpoint."""
        if trial_id not in self._running or trial_id in self._pause_requested:
            return
        self._event_time(t)
        self._record(RecordKind.PAUSE, trial=trial_id)
        self._pause_requested.add(trial_id)
        self._checkpoint_grace[trial_id] = 1
        if not self._replaying:
            self._controls.append(ControlMessage(trial_id, Control.PAUSE))

    def set_config(self, trial_id: int, config: dict, t: float | None = None) -> None:
        """Give trial ``trial_id`` new hyperparameters (PBT, live policies). A running trial sees them
        at once (``hpctune.get_config()``; a class trainable's ``reset_config`` before its next step);
        a paused or pending one starts its next segment with them."""
        trial = self.trials[trial_id]
        if trial.state.is_finished:
            raise ValueError(f"trial {trial_id} is {trial.state.name}: its config can no longer change")
        self._event_time(t)
        self._record(RecordKind.CONFIG, trial=trial_id, config=config, it=trial.iteration)
        trial.config = config
        if trial_id in self._running and not self._replaying:
            self._controls.append(ControlMessage(trial_id, Control.CONFIG, config))

    def request_stop(self, t: float | None = None, why: str | None = None, checkpoint_first: bool = False) -> None:
        """Ctrl-C / SIGTERM / time limit / a full disk: start nothing new; running trials pause at their
        next result. ``checkpoint_first`` (an allocation's end): each running trial is told to
        checkpoint now, and pauses at its first result with a checkpoint (or its second without:
        one may have been on its way before it heard)."""
        self._event_time(t)
        if self._interrupting:
            return
        fields = {"why": why} if why else {}
        if checkpoint_first:
            fields["ckpt_first"] = 1
            self._checkpoint_grace.update(dict.fromkeys(self._running, 1))
            if not self._replaying:
                self.checkpoint_now()
        self._record(RecordKind.INTERRUPT, **fields)
        self._interrupting = True

    def on_storage_full(self, reason: str, t: float | None = None) -> None:
        """The experiment folder cannot be written (``reason``: e.g. 'no space left on device'):
        stop as for Ctrl-C; :attr:`storage_full` tells the caller why."""
        self.storage_full = self.storage_full or reason
        self.request_stop(t=t, why=reason)

    def _before_deadline(self, trial: Trial, checkpoint: str | None, decision):
        """CONTINUE, or PAUSE when the trial's next iteration would end after the deadline (asked to
        checkpoint one result before)."""
        fit = next_iteration_fits(self._deadline, self._now, self._times.iteration(trial.trial_id), self._window)
        if fit is Fit.CHECKPOINT and not checkpoint and not self._replaying:
            self._controls.append(ControlMessage(trial.trial_id, Control.CHECKPOINT))
        if fit is not Fit.PAUSE:
            return decision
        self._interrupted.add(trial.trial_id)
        return Decision.PAUSE
