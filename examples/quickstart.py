"""Quickstart trainable: tune a numpy MLP on the digits data (function API).

Run it from the repository root: ``hpctune run examples/quickstart.yaml``,
or as a script: ``python examples/quickstart.py`` (it starts its own workers).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make the `examples` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import hpctune  # noqa: E402
from examples.digits_mlp import MLP, load_digits_split  # noqa: E402


def train(config: dict) -> None:
    """Train for ``config["epochs"]`` epochs, reporting val_loss each epoch with a checkpoint."""
    x_train, y_train, x_val, y_val = load_digits_split()
    sizes = [x_train.shape[1]] + [int(config["hidden"])] * int(config["layers"]) + [10]
    model = MLP(sizes, seed=hpctune.get_trial_id())
    rng = np.random.default_rng(hpctune.get_trial_id())
    start = 0
    state = hpctune.get_checkpoint()
    if state is not None:  # resumed: continue from the epoch after the checkpoint
        model.load(state["model"])
        rng.bit_generator.state = {"bit_generator": "PCG64", "state": {"state": int(state["rng_state"]),
                                   "inc": int(state["rng_inc"])}, "has_uint32": 0, "uinteger": 0}
        start = int(state["epoch"]) + 1
    for epoch in range(start, int(config["epochs"])):
        model.train_epoch(x_train, y_train, config["lr"], config["momentum"], config["l2"],
                          int(config["batch"]), rng)
        val_loss, val_acc = model.loss(x_val, y_val)
        rng_state = rng.bit_generator.state["state"]
        hpctune.report({"val_loss": val_loss, "val_acc": val_acc},
                       checkpoint={"model": model.state(), "epoch": epoch,
                                   "rng_state": str(rng_state["state"]), "rng_inc": str(rng_state["inc"])})


if __name__ == "__main__":
    analysis = hpctune.run(
        train, name="quickstart-py", metric="val_loss", mode="min", num_samples=4,
        space={"lr": hpctune.loguniform(1e-3, 0.5), "l2": hpctune.uniform(0.0, 0.01),
               "hidden": hpctune.choice([16, 32, 64]), "layers": hpctune.randint(1, 3),
               "batch": hpctune.quniform(32, 256, 32), "momentum": hpctune.grid([0.85, 0.9]), "epochs": 9},
        stop={"training_iteration": 9}, workers=2,
    )
    if analysis is not None:
        print("best config:", analysis.best_config)
