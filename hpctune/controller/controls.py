"""The controller's word to running trials: checkpoint, pause, new config, stop, and the deadline.

Controls are journaled where they change a decision (``pause``, ``config``, ``interrupt``,
``deadline`` records, replayed by ``resume``) and handed to the backend as
:class:`~hpctune.controller.messages.ControlMessage` by
:meth:`~hpctune.controller.core.Controller.take_controls`, to send once the journal is flushed.
The controller's public methods of the same names (documented there) are these.
"""
from __future__ import annotations

from ..enums import Control, Decision, RecordKind
from ..trial import Trial
from .budget import budget_fit
from .events import EventLog
from .messages import ControlMessage
from .state import ControllerState
from .walltime import Fit, next_iteration_fits

__all__ = ["RunningControls"]


class RunningControls:
    """Controls of running trials and of the experiment's end (``state.controls`` waits to be sent).

    Args:
        state: the controller's state.
        log: its clock and journal.
    """

    def __init__(self, state: ControllerState, log: EventLog):
        self.state = state
        self.log = log

    def set_deadline(self, end: float, window: float | None = None, t: float | None = None) -> None:
        self.log.event_at(t)
        self.log.record(RecordKind.DEADLINE, end=end, **({"window": window} if window is not None else {}))
        self.state.deadline, self.state.window = end, window

    def take_controls(self) -> list[ControlMessage]:
        controls, self.state.controls = self.state.controls, []
        return controls

    def checkpoint_now(self, trial_ids: list[int] | None = None) -> list[int]:
        running = self.state.running
        asked = [tid for tid in (running if trial_ids is None else trial_ids) if tid in running]
        self.state.controls.extend(ControlMessage(tid, Control.CHECKPOINT) for tid in asked)
        return asked

    def pause_now(self, trial_id: int, t: float | None = None) -> None:
        state = self.state
        if trial_id not in state.running or trial_id in state.pause_requested:
            return
        self.log.event_at(t)
        self.log.record(RecordKind.PAUSE, trial=trial_id)
        state.pause_requested.add(trial_id)
        state.checkpoint_grace[trial_id] = 1
        if not state.replaying:
            state.controls.append(ControlMessage(trial_id, Control.PAUSE))

    def set_config(self, trial_id: int, config: dict, t: float | None = None) -> None:
        """Raises:
            ValueError: the trial is finished."""
        state = self.state
        trial = state.trials[trial_id]
        if trial.state.is_finished:
            raise ValueError(f"trial {trial_id} is {trial.state.name}: its config can no longer change")
        self.log.event_at(t)
        self.log.record(RecordKind.CONFIG, trial=trial_id, config=config, it=trial.iteration)
        trial.config = config
        if trial_id in state.running and not state.replaying:
            state.controls.append(ControlMessage(trial_id, Control.CONFIG, config))

    def request_stop(self, t: float | None = None, why: str | None = None, checkpoint_first: bool = False) -> None:
        state = self.state
        self.log.event_at(t)
        if state.interrupting:
            return
        fields: dict[str, object] = {"why": why} if why else {}
        if checkpoint_first:
            fields["ckpt_first"] = 1
            state.checkpoint_grace.update(dict.fromkeys(state.running, 1))
            if not state.replaying:
                self.checkpoint_now()
        self.log.record(RecordKind.INTERRUPT, **fields)
        state.interrupting = True

    def on_storage_full(self, reason: str, t: float | None = None) -> None:
        self.state.storage_full = self.state.storage_full or reason
        self.request_stop(t=t, why=reason)

    def before_deadline(self, trial: Trial, checkpoint: str | None, decision):
        """CONTINUE, or PAUSE when the trial's next iteration would end after the deadline (asked to
        checkpoint one result before); call it only with a deadline set."""
        state = self.state
        assert state.deadline is not None
        fit = next_iteration_fits(state.deadline, state.now, state.times.iteration(trial.trial_id), state.window)
        if fit is Fit.CHECKPOINT and not checkpoint and not state.replaying:
            state.controls.append(ControlMessage(trial.trial_id, Control.CHECKPOINT))
        if fit is not Fit.PAUSE:
            return decision
        state.interrupted.add(trial.trial_id)
        return Decision.PAUSE

    def within_budget(self, trial: Trial, checkpoint: str | None, decision, budget_s: float, unplaced: int):
        """CONTINUE, or PAUSE when the running segments' next iterations would pass ``budget_s`` rank-
        (or GPU-) seconds; one iteration before, a trial without a checkpoint is asked for one.
        ``unplaced``: units a second of segments launched but not placed yet."""
        state = self.state
        fit = budget_fit(state.spending, budget_s, state.now, state.times, unplaced)
        if fit is Fit.CHECKPOINT and not checkpoint and not state.replaying:
            state.controls.append(ControlMessage(trial.trial_id, Control.CHECKPOINT))
        return decision if fit is not Fit.PAUSE else Decision.PAUSE
