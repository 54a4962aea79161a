"""The coordinator's record of one trial."""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from .enums import TrialState

__all__ = ["RESULT_FIELDS", "Trial", "TrialTask", "metric_value"]

RESULT_FIELDS = ("trial_id", "training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "rank",
                 "hostname", "gpus", "done")
"""Fields hpctune adds to (or reads from) every result row."""


def metric_value(result: Mapping, metric: str, mode: str) -> float:
    """The result's metric as a score where larger is better; NaN, inf or missing is the worst."""
    value = result.get(metric)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return -math.inf
    if not math.isfinite(value):
        return -math.inf
    return value if mode == "max" else -value



@dataclass(slots=True)
class Trial:
    """One configuration being trained, as the coordinator sees it.

    ``iteration`` is the last accepted ``training_iteration``; ``checkpoint`` the
    newest durable checkpoint (its path relative to the experiment folder) and
    ``checkpoint_iteration`` the iteration it was taken at (a resumed trial
    starts after it). ``checkpoint_history`` holds the checkpoints kept of the model the
    trial trains now, oldest first, each ``[path, iteration, time_total_s]``; the last is
    ``checkpoint``. Slots: a coordinator holds one of these per trial.
    """

    trial_id: int
    config: dict
    state: TrialState = TrialState.PENDING
    iteration: int = 0
    checkpoint: str | None = None
    checkpoint_iteration: int = 0
    checkpoint_time_s: float = 0.0
    checkpoint_history: list = field(default_factory=list)  # [path, iteration, time_total_s] each
    last_result: dict = field(default_factory=dict)
    time_total_s: float = 0.0
    num_failures: int = 0
    error: str | None = None
    end_reason: str = ""
    best_score: float = float("-inf")  # its best result's metric, larger is better (see metric_value)
    best_iteration: int = 0            # the iteration of that result (0: none yet)


@dataclass
class TrialTask:
    """What a worker needs to run one segment of a trial (sent with ``Tag.RUN``)."""

    trial_id: int
    trainable: str
    config: dict
    experiment_dir: str         # absolute; checkpoints are reported relative to it
    trial_dir: str              # absolute
    checkpoint: str | None      # absolute path of the checkpoint to start from
    start_iteration: int        # iterations already done (the checkpoint's)
    time_total_s: float         # training time already spent before the checkpoint
    metric: str = ""            # the experiment's metric: a value that is no number fails the trial
    python_path: list = field(default_factory=list)
    gpus: list | None = None    # the devices the trial's process may see (set by the backend); None: all
    group: list | None = None   # a multi-rank trial's ranks, leader first: {"rank", "host", "gpus"} each

    def devices_text(self) -> str:
        """The devices the trial used, as its result rows record them: ``"0,1"``; for a multi-rank
        trial each rank's, in the order of its ranks, separated by ``;`` (``"0;1"``); ``""``: none."""
        if self.group:
            return ";".join(",".join(member["gpus"] or ()) for member in self.group).strip(";")
        return ",".join(self.gpus or ())
