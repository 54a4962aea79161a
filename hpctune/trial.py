"""The coordinator's record of one trial."""
from __future__ import annotations

from dataclasses import dataclass, field
from .enums import TrialState

__all__ = ["Trial", "TrialTask"]


@dataclass
class Trial:
    """One configuration being trained, as the coordinator sees it.

    ``iteration`` is the last accepted ``training_iteration``; ``checkpoint`` the
    path of the newest durable checkpoint and ``checkpoint_iteration`` the
    iteration it was taken at (a resumed trial starts after it).
    """

    trial_id: int
    config: dict
    state: TrialState = TrialState.PENDING
    iteration: int = 0
    checkpoint: str | None = None
    checkpoint_iteration: int = 0
    checkpoint_time_s: float = 0.0
    checkpoint_history: list = field(default_factory=list)
    last_result: dict = field(default_factory=dict)
    time_total_s: float = 0.0
    num_failures: int = 0
    error: str | None = None
    end_reason: str = ""
    rank: int | None = None

    def to_json(self) -> dict:
        data = dict(vars(self))
        data["state"] = self.state.name
        return data

    @classmethod
    def from_json(cls, data: dict) -> "Trial":
        data = dict(data)
        data["state"] = TrialState[data["state"]]
        return cls(**data)


@dataclass
class TrialTask:
    """What a worker needs to run one segment of a trial (sent with ``Tag.RUN``)."""

    trial_id: int
    trainable: str
    config: dict
    trial_dir: str
    checkpoint: str | None
    start_iteration: int        # iterations already done (the checkpoint's)
    time_total_s: float         # training time already spent before the checkpoint
    python_path: list = field(default_factory=list)
