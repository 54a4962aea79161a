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


def group_sum(config):
    """A multi-rank trial: each iteration, every rank adds ``1000 * trial_id + its rank in the trial``
    with an allreduce over ``hpctune.get_comm()``; the leader reports the sum, the size and the worker
    ranks, PyTorch variables, CUDA_VISIBLE_DEVICES and host each rank saw
    (``RANK/WORLD_SIZE/LOCAL_RANK@MASTER_ADDR:MASTER_PORT#DEVICES%HOSTNAME``, in the order of their ranks). Checkpoints (the leader's) carry the iteration; with
    ``config["kill_rank"]`` that rank of the trial SIGKILLs itself at iteration 2 of the first attempt
    (with ``config["raise_rank"]`` it raises there).
    """
    import os
    import signal
    import socket
    import time

    comm = hpctune.get_comm()
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    seen = comm.gather(f"{os.environ['RANK']}/{os.environ['WORLD_SIZE']}/{os.environ['LOCAL_RANK']}"
                       f"@{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
                       f"#{os.environ.get('CUDA_VISIBLE_DEVICES', '')}%{socket.gethostname()}", root=0)
    for i in range(start + 1, config["epochs"] + 1):
        if i == 2 and state is None and comm.Get_rank() == config.get("kill_rank", -1):
            os.kill(os.getpid(), signal.SIGKILL)
        if i == 2 and state is None and comm.Get_rank() == config.get("raise_rank", -1):
            raise ValueError(f"boom on rank {comm.Get_rank()} of trial {hpctune.get_trial_id()}")
        total = comm.allreduce(1000 * hpctune.get_trial_id() + comm.Get_rank())
        time.sleep(config.get("sleep", 0.0))
        metrics = {"loss": config["x"] + 1.0 / i, "sum": total, "size": comm.Get_size(), "started_from": start}
        if seen is not None:
            metrics["seen"] = " ".join(seen)
        hpctune.report(metrics, checkpoint={"iteration": i})


def group_checkpoints_on_request(config):
    """:func:`checkpoints_on_request` on every rank of a multi-rank trial; the leader reports the
    ``lr`` each rank saw (``"0.1 0.1"``) and whether it was asked."""
    comm = hpctune.get_comm()
    for i in range(1, config["epochs"] + 1):
        asked = hpctune.checkpoint_requested()
        lrs = comm.gather(hpctune.get_config()["lr"], root=0)
        metrics = {"loss": 1.0 / i, "asked": int(asked)}
        if lrs is not None:
            metrics["lrs"] = " ".join(map(str, lrs))
        hpctune.report(metrics, checkpoint={"iteration": i} if asked else None)


def plateau(config):
    """A loss that falls for ``config["fall"]`` iterations, then stays flat; reports the ``lr`` each
    iteration trained with, as ``hpctune.get_config()`` gave it (``lr_seen``)."""
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    for i in range(start + 1, config["epochs"] + 1):
        lr = hpctune.get_config()["lr"]
        hpctune.report({"loss": 1.0 - 0.1 * min(i, config["fall"]), "lr_seen": lr}, checkpoint={"iteration": i})


def plateau_plain(config):
    """:func:`plateau`, reading ``config["lr"]`` from its argument each iteration (no ``get_config()``)."""
    state = hpctune.get_checkpoint()
    start = 0 if state is None else int(state["iteration"])
    for i in range(start + 1, config["epochs"] + 1):
        hpctune.report({"loss": 1.0 - 0.1 * min(i, config["fall"]), "lr_seen": config["lr"]},
                       checkpoint={"iteration": i})


def reports_waits(config):
    """Sleeps ``config["sleep"]`` per iteration and reports, with each result, how long the
    previous ``report`` waited for the coordinator's answer (``waited``, seconds)."""
    import time

    waited = 0.0
    for i in range(1, config["epochs"] + 1):
        time.sleep(config["sleep"])
        started = time.monotonic()
        hpctune.report({"loss": config["x"] + 1.0 / i, "waited": waited})
        waited = time.monotonic() - started


def sleepy_curve(config):
    """Sleeps ``0.1 + 0.4 * x`` seconds an iteration (times that differ by config, as real training's do);
    a loss whose curves cross (``y`` slows the early iterations); checkpoints every iteration."""
    import time

    state = hpctune.get_checkpoint()
    start = 0 if state is None else state["iteration"]
    for i in range(start + 1, config["epochs"] + 1):
        time.sleep(0.1 + 0.4 * config["x"])
        hpctune.report({"loss": abs(config["x"] - 0.4) + config["y"] / i}, checkpoint={"iteration": i})
