"""The in-process backend: one worker, trials run in this very process.

No MPI and no child process: for debugging (pdb works), for tests of the
algorithms, and as the fallback where MPI is not installed. A segfault in a
trainable takes this process down (the MPI backend contains it).
"""
from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from ..enums import Decision
from ..errors import SpecError
from ..trainable import resolve_trainable
from ._base import BACKENDS, Backend
from .gpus import assign_devices, bind_devices, visible_devices

if TYPE_CHECKING:  # registering this backend loads neither the coordinator's side nor the session
    from ..reporting.live.console import Console
    from ..controller.core import Controller
    from ..controller.housekeeping import Housekeeping

__all__ = ["LocalBackend", "serve_local"]

WORKER_ID = 1


class _CoordinatorFailed(BaseException):
    """Carries a coordinator-side SpecError past the trainable's own exception handling."""

    def __init__(self, error: SpecError):
        self.error = error


class _DirectChannel:
    def __init__(self, controller: Controller, housekeeping: Housekeeping, trial_id: int):
        self.controller = controller
        self.housekeeping = housekeeping
        self.trial_id = trial_id

    def send_result(self, row: dict, checkpoint: str | None) -> tuple[Decision, list]:
        self.housekeeping.check_signals(self.controller)
        try:
            decision = self.controller.on_result(self.trial_id, row, checkpoint)
        except SpecError as error:
            raise _CoordinatorFailed(error) from None
        self.housekeeping.flush(self.controller)
        self.housekeeping.tick(self.controller)
        return decision, self.poll_controls()

    def poll_controls(self) -> list:
        """Control messages for this trial (the only one running): from a signal, or an event above."""
        self.housekeeping.check_signals(self.controller)
        controls = [(m.control, m.payload) for m in self.controller.take_controls() if m.trial_id == self.trial_id]
        if controls:
            self.housekeeping.flush(self.controller)  # journaled before the trial acts on them
        return controls


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
    from ..session import run_segment

    trainable = trainable or resolve_trainable(controller.spec.trainable, controller.python_path)
    gpus = _bind_gpus(controller.spec.resources.gpus_per_rank)
    controller.on_workers_joined(1)
    housekeeping.flush(controller)
    while not controller.is_finished:
        launches = controller.take_launches()
        if not launches:
            break
        for launch in launches:
            task = launch.task
            controller.placed(task.trial_id, [WORKER_ID])
            task.gpus = gpus
            channel = _DirectChannel(controller, housekeeping, task.trial_id)
            try:
                how, error = run_segment(trainable, task, channel, rank=WORKER_ID)
            except _CoordinatorFailed as failed:
                raise failed.error from None
            controller.on_segment_end(task.trial_id, how, error)
            housekeeping.segment_ended(controller, task.trial_id, how, error)
            housekeeping.flush(controller)
    return housekeeping.finish(controller)


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
