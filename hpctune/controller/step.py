"""The coordinator step: what every backend does after an event, in one order.

A backend hears events its own way (MPI messages, a trainable's call in this process, the
simulator's next virtual event) and tells the controller of each; then it calls
:meth:`CoordinatorStep.after_event`, which hands what the controller decided to the backend's
workers (:class:`Workers`) in this order:

1. **place**: each launch the controller has is given its ranks by the backend;
2. **journal the placement** (:meth:`~hpctune.controller.core.Controller.placed`): a launch is
   journaled with the ranks it was placed on, so it is placed before it is journaled;
3. **flush**: the journal is made durable before anything leaves the coordinator; then the
   checkpoints those records made obsolete are retired (the store deletes each once nothing a
   crash can lose refers to it) and the controller's notices are shown;
4. **controls, before decisions**: a trial given a new config with its decision (a scheduler's
   payload, a live policy) has it when its report returns, as messages from one sender arrive
   in the order they were sent (the simulator applies it before computing the next iteration);
5. **decisions**: the answers to the results of this event;
6. **runs**: the placed launches start.

Between events (after each one, or on a timer: the MPI coordinator ticks every 10 ms),
:meth:`CoordinatorStep.tick` hears signals (their controls flushed, then sent) and does the
housekeeping's periodic work: progress, TensorBoard's rows, part files and snapshots.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..enums import Decision
    from .core import Controller
    from .messages import ControlMessage, Launch
    from .housekeeping import Housekeeping

__all__ = ["CoordinatorStep", "Workers"]


class Workers(Protocol):
    """A backend's workers as the coordinator step sees them: where launches go, how words reach them.

    ``to`` in :meth:`send_decision` is whatever the backend put in the replies it handed to
    :meth:`CoordinatorStep.after_event` (the MPI backend: the worker rank that asked).
    """

    def place(self, launch: Launch) -> list[int]:
        """Give ``launch`` its ranks (``launch.resources`` says how many; the backend has that many
        idle); returns them, the one that leads the trial first."""
        ...

    def send_controls(self, controls: list[ControlMessage]) -> None:
        """Deliver control messages to running trials (one that ended meanwhile needs none)."""
        ...

    def send_decision(self, to: Any, decision: Decision) -> None:
        """Answer a result."""
        ...

    def send_run(self, launch: Launch, ranks: list[int]) -> None:
        """Start a placed launch on its ``ranks``."""
        ...


class CoordinatorStep:
    """Hands the controller's output to ``workers`` after each event, in the module's order.

    Args:
        controller: the experiment's controller.
        workers: the backend's workers.
        housekeeping: the store's flushes, the console, signals, snapshots (None: a simulation in
            memory, which has nothing to make durable, no checkpoint files and nobody to tell).
    """

    def __init__(self, controller: Controller, workers: Workers, housekeeping: Housekeeping | None = None):
        self.controller = controller
        self.workers = workers
        self.housekeeping = housekeeping

    def after_event(self, replies: Sequence[tuple[Any, Decision]] = ()) -> None:
        """After one event (or a batch of them, read together): place, journal, flush, then send.

        Args:
            replies: ``(to, decision)`` for each result of the event(s), in the order heard.

        Raises:
            StorageFailed: the journal cannot be written (nothing is sent).
        """
        controller, workers = self.controller, self.workers
        placed = []
        for launch in controller.take_launches():
            ranks = workers.place(launch)
            controller.placed(launch.trial_id, ranks)
            placed.append((launch, ranks))
        self.flush()
        workers.send_controls(controller.take_controls())
        for to, decision in replies:
            workers.send_decision(to, decision)
        for launch, ranks in placed:
            workers.send_run(launch, ranks)

    def flush(self) -> None:
        """Make the events so far durable, then retire the checkpoints they made obsolete and show
        the controller's notices.

        Raises:
            StorageFailed: the journal cannot be written: nothing more can be accepted.
        """
        controller, housekeeping = self.controller, self.housekeeping
        if housekeeping is None:
            controller.take_obsolete_checkpoints()
            controller.take_notices()
            return
        housekeeping.make_durable()
        for trial_id, checkpoint in controller.take_obsolete_checkpoints():
            housekeeping.retire_checkpoint(trial_id, checkpoint)
        for notice in controller.take_notices():
            housekeeping.console.message(notice)

    def hear_signals(self) -> None:
        """Act on the signals received since the last look (SIGUSR1 asks every running trial to
        checkpoint, SIGINT stops, ...): their controls are flushed, then sent."""
        if self.housekeeping is None:
            return
        self.housekeeping.check_signals(self.controller)
        controls = self.controller.take_controls()
        if controls:
            self.flush()
            self.workers.send_controls(controls)

    def tick(self) -> None:
        """Between events: signals (:meth:`hear_signals`), then the housekeeping's periodic work
        (a progress line, TensorBoard's rows, a part file or a snapshot when one is due)."""
        if self.housekeeping is None:
            return
        self.hear_signals()
        self.housekeeping.tick(self.controller)

    def finish(self) -> str:
        """Close the experiment: its final status journaled and flushed, then (with housekeeping)
        the final snapshot, the store closed and the last console line; returns the status."""
        status = self.controller.finalize()
        self.flush()
        if self.housekeeping is not None:
            self.housekeeping.close(self.controller, status)
        return status
