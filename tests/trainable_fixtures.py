"""Small trainables for the CLI and spec tests (imported as ``trainable_fixtures``)."""
from __future__ import annotations

import hpctune

NOT_CALLABLE = 42


def quick(config):
    """Reports ``loss`` = x + 1/iteration for ``config["epochs"]`` iterations, with a checkpoint."""
    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, config.get("epochs", 3) + 1):
        hpctune.report({"loss": config.get("x", 0.0) + 1.0 / i}, checkpoint={"iteration": i})


def wrong_metric(config):
    hpctune.report({"accuracy": 0.5})


def fails_at_two(config):
    """Raises at iteration 2 of its first attempt; a retry resumes from the iteration-1 checkpoint."""
    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, 4):
        if i == 2 and state is None:
            raise ValueError(f"boom in trial {hpctune.get_trial_id()}")
        hpctune.report({"loss": 1.0 / i, "attempt_start": start}, checkpoint={"iteration": i})


class Counter(hpctune.Trainable):
    """Class API: counts up; ``done`` after ``epochs`` steps."""

    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"loss": self.config["x"] / self.i, "done": self.i >= self.config["epochs"]}

    def save_checkpoint(self):
        return {"i": self.i}

    def load_checkpoint(self, state):
        self.i = state["i"]


def slow_counter(config):
    """Sleeps ``config["sleep"]`` per iteration; checkpoints every iteration; records where it started."""
    import time

    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, config["epochs"] + 1):
        time.sleep(config["sleep"])
        hpctune.report({"loss": config["x"] + 1.0 / i, "started_from": start}, checkpoint={"iteration": i})


def dies(config):
    """Its process dies at iteration 2 of the first attempt: ``os._exit(3)`` or SIGSEGV."""
    import os
    import signal

    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, 4):
        if i == 2 and state is None:
            if config["how"] == "exit":
                os._exit(3)
            os.kill(os.getpid(), signal.SIGSEGV)
        hpctune.report({"loss": 1.0 / i, "attempt_start": start}, checkpoint={"iteration": i})


def odd_names(config):
    """Reports metrics whose names HDF5 reserves or nests (``a`` and ``a/b``, ``""``, ``.``, ``%2F``)."""
    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, config["epochs"] + 1):
        hpctune.report({"loss": 1.0 / i, "a": i, "a/b": 2.0 * i, "": "empty", ".": i, "%2F": "percent",
                        "bad\udcff": 1}, checkpoint={"iteration": i})


def big_checkpoints(config):
    """Checkpoints of ``config["floats"]`` float64 each (fills a small disk); records where it started."""
    import numpy as np

    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, config["epochs"] + 1):
        hpctune.report({"loss": config["x"] + 1.0 / i, "started_from": start},
                       checkpoint={"iteration": i, "w": np.full(config["floats"], float(i))})


def big_metrics(config):
    """No checkpoint; a long text metric with every result (fills a small disk through the store itself)."""
    import time

    for i in range(1, config["epochs"] + 1):
        time.sleep(config["sleep"])
        hpctune.report({"loss": config["x"] + 1.0 / i, "note": "x" * config["chars"]})


def text_metric(config):
    """Reports its metric as text at iteration 2."""
    hpctune.report({"loss": 0.5})
    hpctune.report({"loss": "0.4"})


def checkpoints_on_request(config):
    """Checkpoints only when the coordinator asks (``hpctune.checkpoint_requested()``); reports
    ``lr`` from ``hpctune.get_config()`` each iteration (a new config shows at once), and whether it
    was asked."""
    import time

    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, config["epochs"] + 1):
        time.sleep(config.get("sleep", 0.0))
        asked = hpctune.checkpoint_requested()
        lr = hpctune.get_config()["lr"]
        hpctune.report({"loss": lr / i, "lr": lr, "asked": int(asked)},
                       checkpoint={"iteration": i} if asked else None)


class Reconfigurable(hpctune.Trainable):
    """Class API: reports ``lr`` as its step sees it, and how many times it was built (``builds``);
    ``reset_config`` takes a new config in place when ``config["in_place"]``, else refuses."""

    builds = 0

    def setup(self, config):
        type(self).builds += 1
        self.i = 0
        self.lr = config["lr"]

    def step(self):
        self.i += 1
        return {"loss": self.lr / self.i, "lr": self.lr, "builds": type(self).builds,
                "done": self.i >= self.config["epochs"]}

    def save_checkpoint(self):
        return {"i": self.i}

    def load_checkpoint(self, state):
        self.i = int(state["i"])

    def reset_config(self, new_config):
        if not self.config.get("in_place"):
            return False
        self.lr = new_config["lr"]
        return True


def reports_devices(config):
    """Reports the GPUs its process may see (``CUDA_VISIBLE_DEVICES``, ``HIP_VISIBLE_DEVICES``)."""
    import os

    for i in range(1, config.get("epochs", 1) + 1):
        hpctune.report({"loss": 1.0 / i, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"),
                        "hip": os.environ.get("HIP_VISIBLE_DEVICES", "<unset>")})
