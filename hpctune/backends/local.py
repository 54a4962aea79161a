"""The in-process backend: one worker, trials run in this very process.

No MPI and no child process: for debugging (pdb works), for tests of the
algorithms, and as the fallback where MPI is not installed. A segfault in a
trainable takes this process down (the MPI backend contains it).
"""
from __future__ import annotations

import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from ..enums import Decision
from ..errors import SpecError
from ..trainable import resolve_trainable
from ._base import BACKENDS, Backend
from .gpus import assign_devices, bind_devices, visible_devices

if TYPE_CHECKING:  # registering this backend loads neither the coordinator's side nor the session
    from ..reporting.live.console import Console
    from ..controller.controls import ControlMessage
    from ..controller.core import Controller, Launch
    from ..controller.housekeeping import Housekeeping
    from ..controller.step import CoordinatorStep

__all__ = ["LocalBackend", "serve_local"]

WORKER_ID = 1


class _CoordinatorFailed(BaseException):
    """Carries a coordinator-side SpecError past the trainable's own exception handling."""

    def __init__(self, error: SpecError):
        self.error = error


class _OneWorker:
    """This process as the coordinator step's only worker (:class:`~hpctune.controller.step.Workers`):
    a run is queued for the backend's loop; controls for the running trial wait for its session to
    take them, with the answer to its report or at its next poll."""

    def __init__(self, gpus: list[str] | None):
        self.gpus = gpus
        self.trial_id: int | None = None  # the trial given this worker last (it runs, or is about to)
        self.runs: deque[Launch] = deque()
        self.controls: list[tuple] = []

    def place(self, launch: Launch) -> list[int]:
        self.trial_id = launch.trial_id
        launch.task.gpus = self.gpus
        return [WORKER_ID]

    def send_controls(self, controls: list[ControlMessage]) -> None:
        self.controls.extend((m.control, m.payload) for m in controls if m.trial_id == self.trial_id)

    def send_decision(self, trial_id: int, decision: Decision) -> None:
        """Nothing to send: the trial's ``report()`` returns the decision (:meth:`_DirectChannel.send_result`)."""

    def send_run(self, launch: Launch, ranks: list[int]) -> None:
        self.runs.append(launch)

    def take_controls(self) -> list[tuple]:
        controls, self.controls = self.controls, []
        return controls


class _DirectChannel:
    """The running trial's way to the coordinator (:class:`~hpctune.session.ResultChannel`): a result
    is an event, heard at once, and the coordinator step runs before the report returns."""

    def __init__(self, controller: Controller, step: CoordinatorStep, worker: _OneWorker, trial_id: int):
        self.controller = controller
        self.step = step
        self.worker = worker
        self.trial_id = trial_id

    def send_result(self, row: dict, checkpoint: str | None) -> tuple[Decision, list]:
        self.step.hear_signals()  # a signal heard while the trial trained is acted on in this answer
        try:
            decision = self.controller.on_result(self.trial_id, row, checkpoint)
        except SpecError as error:
            raise _CoordinatorFailed(error) from None
        self.step.after_event([(self.trial_id, decision)])
        self.step.tick()
        return decision, self.worker.take_controls()

    def poll_controls(self) -> list:
        """Control messages for this trial (the only one running): from a signal, or an event above."""
        self.step.hear_signals()
        return self.worker.take_controls()


@BACKENDS.register
class LocalBackend(Backend):
    """Trials one at a time in this process (``workers`` is not used)."""

    name = "local"

    def serve(self, controller: Controller, housekeeping: Housekeeping, console: Console, action: str) -> str:
        ranks = controller.spec.resources.ranks_per_trial
        if ranks > 1:
            raise SpecError("resources.ranks_per_trial", f"{ranks} ranks per trial need the mpi backend (the local "
                                                         f"backend runs one trial at a time in this process)")
        console.message(f"{action} {controller.store.folder}: trials in this process")
        return serve_local(controller, housekeeping, self.trainable)


def serve_local(controller: Controller, housekeeping: Housekeeping, trainable: Any = None) -> str:
    """Run the experiment in this process; ``trainable`` is the object itself if the caller has it."""
    from ..controller.step import CoordinatorStep
    from ..session import run_segment

    trainable = trainable or resolve_trainable(controller.spec.trainable, controller.python_path)
    worker = _OneWorker(_bind_gpus(controller.spec.resources.gpus_per_rank))
    step = CoordinatorStep(controller, worker, housekeeping)
    controller.on_workers_joined(1)
    step.after_event()
    while worker.runs:
        task = worker.runs.popleft().task
        channel = _DirectChannel(controller, step, worker, task.trial_id)
        try:
            how, error = run_segment(trainable, task, channel, rank=WORKER_ID)
        except _CoordinatorFailed as failed:
            raise failed.error from None
        controller.on_segment_end(task.trial_id, how, error)
        housekeeping.segment_ended(controller, task.trial_id, how, error)
        step.after_event()
    return step.finish()


def _bind_gpus(gpus_per_rank: int) -> list[str] | None:
    """The first ``gpus_per_rank`` GPUs of this node, made the only ones this process sees (None: none asked).

    Raises:
        SpecError: the node has fewer.
    """
    if not gpus_per_rank:
        return None
    devices, devices_from = visible_devices()
    info = {"node": "local", "hostname": socket.gethostname(), "devices": devices, "devices_from": devices_from}
    gpus = assign_devices({WORKER_ID: info}, gpus_per_rank)[WORKER_ID]
    bind_devices(gpus)
    return gpus
