"""One hpctune run for scripts/bench/pbt_drift.py:
``python _pbt_drift_run.py STORAGE NAME SEED pbt|pbt-synch|fixed ITERATIONS INTERVAL POPULATION WORKERS SLEEP
[SPREAD]``: each trial's iterations take SLEEP seconds, or (SPREAD > 0) a time drawn for the trial from
uniform(SLEEP * (1 - SPREAD), SLEEP * (1 + SPREAD)), never explored (trials that run at different speeds).

The hpctune imported is whichever ``PYTHONPATH`` names first (the benchmark runs a worktree of an
older commit this way); it prints ``hpctune: <its folder>`` so the caller can check.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hpctune  # noqa: E402
from _drift_problem import initial_state, loss, score, train_iteration  # noqa: E402


def train(config: dict) -> None:
    """``config["iterations"]`` iterations of the noisy quadratic, the learning rate read at each
    (PBT may change it), a checkpoint with every result."""
    saved = hpctune.get_checkpoint()
    state = initial_state() if saved is None else saved["state"]
    start = 0 if saved is None else int(saved["iteration"])
    for iteration in range(start + 1, int(config["iterations"]) + 1):
        lr = hpctune.get_config()["lr"]
        time.sleep(config["sleep"])  # a stand-in for the work of an epoch
        state = train_iteration(state, lr)
        hpctune.report({"score": score(state), "loss": loss(state), "lr": lr},
                       checkpoint={"state": state, "iteration": iteration})


if __name__ == "__main__":
    storage, name, seed, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    iterations, interval, population, workers = (int(value) for value in sys.argv[5:9])
    sleep = float(sys.argv[9])
    spread = float(sys.argv[10]) if len(sys.argv) > 10 else 0.0
    print(f"hpctune: {Path(hpctune.__file__).resolve().parent.parent}", flush=True)
    space = {"lr": hpctune.loguniform(1e-3, 1.0), "iterations": iterations,
             "sleep": hpctune.uniform(sleep * (1 - spread), sleep * (1 + spread)) if spread else sleep}
    scheduler = "fifo" if how == "fixed" else {"type": "pbt", "perturbation_interval": interval,
                                               "synch": how == "pbt-synch", "hyperparam_mutations": ["lr"]}
    hpctune.run(train, space=space, metric="score", mode="max", num_samples=population, workers=workers,
                seed=seed, scheduler=scheduler, storage=storage, name=name, verbose=0)
