"""What the controller hands its backend: segments to launch, and messages for running trials."""
from __future__ import annotations

from dataclasses import dataclass

from ..enums import Control
from ..spec import Resources
from ..trial import TrialTask

__all__ = ["Launch", "ControlMessage"]


@dataclass
class Launch:
    """Run ``task`` on ranks the backend picks: ``resources`` says how many, and how many GPUs each."""

    task: TrialTask
    resources: Resources

    @property
    def trial_id(self) -> int:
        return self.task.trial_id


@dataclass
class ControlMessage:
    """Tell running trial ``trial_id`` something now (``payload``: the new config for ``Control.CONFIG``)."""

    trial_id: int
    control: Control
    payload: dict | None = None
