"""A scheduler that pauses every trial at iteration 3 and resumes it only after
every trial has paused; the trainable records which checkpoint each segment
started from. Run under mpiexec: ``mpiexec -n 3 python pause_resume.py STORAGE``.
"""
from __future__ import annotations

import sys
from collections import deque

import hpctune
from hpctune.enums import Decision, TrialState
from hpctune.schedulers import Scheduler

TRIALS, EPOCHS = 6, 7


class PauseAtThree(Scheduler):
    name = "pause-at-three"

    def __init__(self):
        self.new: deque = deque()
        self.paused: deque = deque()
        self.added = 0

    def on_trial_add(self, trial):
        self.new.append(trial.trial_id)
        self.added += 1

    def on_trial_result(self, trial, result):
        if result["training_iteration"] == 3:
            self.paused.append(trial.trial_id)
            return Decision.PAUSE
        return Decision.CONTINUE

    def choose_trial_to_run(self, trials):
        if self.new:
            return trials[self.new.popleft()]
        if self.added < TRIALS:
            return None  # let the controller add the next trial
        if self.paused and all(trials[t].state == TrialState.PAUSED for t in self.paused):
            return trials[self.paused.popleft()]
        return None


def train(config):
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    for i in range(start + 1, EPOCHS + 1):
        hpctune.report({"loss": config["x"] / i, "resumed_from": start}, checkpoint={"iteration": i})


if __name__ == "__main__":
    analysis = hpctune.run(train, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=TRIALS,
                           scheduler=PauseAtThree(), storage=sys.argv[1], name="pause", verbose=0)
    if analysis is not None:
        print("COORDINATOR", len(analysis.results))
