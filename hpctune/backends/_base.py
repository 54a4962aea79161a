"""The Backend interface, and the registry of backends by name.

The controller decides *what* runs next; a backend decides *where*: it finds or
starts the workers, serves the controller's launches on them, and lets them go.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:  # a worker rank never loads the coordinator's side
    from ..reporting.live.console import Console
    from ..controller.core import Controller
    from ..controller.housekeeping import Housekeeping

__all__ = ["Backend", "BACKENDS"]

BACKENDS = Registry("backend")


class Backend:
    """Where trials run. Made in every process of the run, worker ranks included.

    Args:
        workers: worker ranks to start where the backend starts them (None: its default).
        trainable: the trainable object itself, if the caller has it (a backend that runs
            trials in this process uses it; others import the spec's reference).
    """

    name: str = ""
    simulated: bool = False
    """True for a backend whose time is virtual (``sim``): no TensorBoard, no Slurm deadline."""
    clock: Any = None
    """The controller's and the store's clock (None: wall time)."""

    def __init__(self, workers: int | None = None, trainable: Any = None):
        self.workers = workers
        self.trainable = trainable

    def store_options(self, spec) -> dict:
        """Keyword arguments for :func:`hpctune.api.open_experiment` (a simulation's store and clock)."""
        return {}

    @property
    def is_worker(self) -> bool:
        """Whether this process serves trials (a worker rank) rather than coordinating."""
        return False

    def serve_worker(self) -> None:
        """Serve the coordinator until it ends the experiment (on a worker rank)."""
        raise NotImplementedError

    def release(self) -> None:
        """Let waiting workers go when the coordinator ends before :meth:`serve` (bad input, nothing to resume)."""

    def serve(self, controller: Controller, housekeeping: Housekeeping, console: Console, action: str) -> str:
        """Run the experiment on this backend's workers until it ends or stops.

        Args:
            action: ``"starting"`` or ``"resuming"``, for the console's first line.

        Returns:
            The status :meth:`~hpctune.controller.step.CoordinatorStep.finish` gave (``"finished"`` or
            ``"interrupted"``).
        """
        raise NotImplementedError
