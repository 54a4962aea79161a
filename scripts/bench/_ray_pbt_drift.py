"""Ray Tune side of ``pbt_drift.py``: run under the Ray virtual environment's python, never hpctune's.

Ray Tune's ``PopulationBasedTraining`` on the drifting-learning-rate problem (``_drift_problem.py``),
asynchronous (``synch=False``, Tune's default), ``perturbation_interval`` and ``quantile_fraction``
as hpctune's, ``resample_probability`` 0.25, ``hyperparam_mutations={"lr": loguniform(1e-3, 1)}``
(the space hpctune draws from), perturbation factors at Tune's default (1.2, 0.8); the population
given as a grid of the learning rates (and iteration times) hpctune drew for the seed, one trial
each (``index`` in the grid; ``lr`` and ``sleep`` taken from it with ``sample_from``), trials of 1 CPU
on ``ray.init(num_cpus=WORKERS)`` (so ``WORKERS`` run at once; not ``max_concurrent_trials``, which
would hold the later trials back from the search until earlier ones end, and PBT could pause
nobody for them); a checkpoint with every result, as hpctune's trainable does. Writes, per trial,
its results (iteration, score, lr, wall time: each trial's ``progress.csv``) as JSON.

Usage: ``<ray-venv>/bin/python _ray_pbt_drift.py --storage DIR --json OUT --lrs A,B,... --sleeps A,B,...
--seed S [--iterations 40 --interval 4 --workers 4]``
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _drift_problem import initial_state, loss, score, train_iteration  # noqa: E402


def train(config):
    from ray import tune

    checkpoint = tune.get_checkpoint()
    state, start = initial_state(), 0
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            saved = np.load(Path(folder) / "state.npz")
            state, start = saved["state"], int(saved["iteration"])
    for iteration in range(start + 1, int(config["iterations"]) + 1):
        time.sleep(config["sleep"])
        state = train_iteration(state, config["lr"])
        with tempfile.TemporaryDirectory() as folder:
            np.savez(Path(folder) / "state.npz", state=state, iteration=iteration)
            tune.report({"score": score(state), "loss": loss(state), "lr": config["lr"], "sleep": config["sleep"],
                         "iteration": iteration, "wall": time.time()},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--lrs", required=True, help="the population's learning rates, comma-separated")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--interval", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sleeps", required=True, help="each trial's seconds an iteration, comma-separated")
    args = parser.parse_args()
    random.seed(args.seed)  # Tune's PBT explores with the random module
    np.random.seed(args.seed)

    import ray
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    lrs = [float(value) for value in args.lrs.split(",")]
    sleeps = [float(value) for value in args.sleeps.split(",")]
    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=args.interval, quantile_fraction=0.25,
        resample_probability=0.25, hyperparam_mutations={"lr": tune.loguniform(1e-3, 1.0)}, synch=False)
    tuner = tune.Tuner(
        tune.with_resources(train, {"cpu": 1}),
        param_space={"index": tune.grid_search(list(range(len(lrs)))), "iterations": args.iterations,
                     "lr": tune.sample_from(lambda spec: lrs[spec.config.index]),
                     "sleep": tune.sample_from(lambda spec: sleeps[spec.config.index])},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=scheduler, num_samples=1),
        run_config=tune.RunConfig(storage_path=args.storage, name=f"drift{args.seed}", verbose=0))
    grid = tuner.fit()
    wall = time.perf_counter() - started
    trials = []
    for result in grid:
        with open(Path(result.path) / "progress.csv", newline="") as f:  # every result, restores included
            rows = sorted(csv.DictReader(f), key=lambda row: float(row["wall"]))
        trials.append({"initial": [float(rows[0]["lr"]), float(rows[0]["sleep"])],
                       "iteration": [int(row["iteration"]) for row in rows],
                       "score": [float(row["score"]) for row in rows], "lr_trained": [float(row["lr"]) for row in rows],
                       "wall": [float(row["wall"]) for row in rows],
                       "error": None if result.error is None else str(result.error)})
    ray.shutdown()
    Path(args.json).write_text(json.dumps({"version": ray.__version__, "wall_s": wall, "trials": trials}))


if __name__ == "__main__":
    main()
