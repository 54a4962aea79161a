"""FIFO: trials run in the order they were added, each to its end."""
from __future__ import annotations

from collections import deque

from ._base import SCHEDULERS, Scheduler


@SCHEDULERS.register
class FIFOScheduler(Scheduler):
    """Runs every trial to completion, first added first run."""

    name = "fifo"

    def __init__(self):
        self._queue: deque[int] = deque()

    def on_trial_add(self, trial):
        self._queue.append(trial.trial_id)

    def choose_trial_to_run(self, trials):
        while self._queue:
            trial = trials.get(self._queue[0])
            if self.is_runnable(trial):
                return trial
            self._queue.popleft()
        return None

    def state_dict(self):
        return {"queue": list(self._queue)}

    def load_state_dict(self, state):
        self._queue = deque(state["queue"])
