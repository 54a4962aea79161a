"""Ray Tune side of ``overhead.py``: run under the Ray virtual environment's python, never hpctune's.

Workload: 200 samples of a function trainable that reports ``{"loss": i}`` 20 times,
at most 2 concurrent trials of 1 CPU each on ``ray.init(num_cpus=2)``, FIFO
(Tune's default scheduler), no checkpoints, results in Tune's own storage
(``RunConfig(storage_path=...)``, a tmp dir). Writes its figures as JSON to ``--json``.

Usage: ``<ray-venv>/bin/python _ray_overhead.py --storage DIR --json OUT [--samples 200 --reports 20]``
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPORTS = 20


def noop(config):
    from ray import tune

    for i in range(REPORTS):
        tune.report({"loss": float(i)})


def count_durable(experiment_dir: Path) -> dict:
    """Result rows Tune left on disk: lines of every trial's ``result.json``."""
    trial_dirs = [p for p in experiment_dir.iterdir() if p.is_dir() and (p / "result.json").exists()]
    rows = 0
    trainable_s = 0.0  # time inside the trainables: each trial's last time_total_s
    for trial_dir in trial_dirs:
        with open(trial_dir / "result.json") as f:
            lines = [line for line in f if line.strip()]
        rows += len(lines)
        if lines:
            trainable_s += float(json.loads(lines[-1]).get("time_total_s", 0.0))
    return {"trial_dirs": len(trial_dirs), "result_rows": rows, "trainable_s_sum": trainable_s}


def main() -> None:
    global REPORTS
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--name", default="ray-overhead")
    args = parser.parse_args()
    REPORTS = args.reports

    t_import = time.perf_counter()
    import ray
    from ray import tune

    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    t1 = time.perf_counter()
    tuner = tune.Tuner(
        tune.with_resources(noop, {"cpu": 1}),
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=args.samples,
                                    max_concurrent_trials=2),
        run_config=tune.RunConfig(name=args.name, storage_path=args.storage, verbose=0),
    )
    grid = tuner.fit()
    t2 = time.perf_counter()
    errors = len(grid.errors)
    terminated = sum(1 for r in grid if r.error is None)
    ray.shutdown()
    t3 = time.perf_counter()

    durable = count_durable(Path(args.storage) / args.name)
    expected = args.samples * args.reports
    out = {
        "tool": "Ray Tune", "version": ray.__version__,
        "import_s": t0 - t_import, "init_s": t1 - t0, "fit_s": t2 - t1, "shutdown_s": t3 - t2,
        "wall_s": t2 - t0,  # ray.init + Tuner.fit, the part that corresponds to hpctune.run
        "trials_ok": terminated, "trial_errors": errors, **durable,
        "expected_rows": expected,
        "verified": durable["result_rows"] == expected and durable["trial_dirs"] == args.samples
        and terminated == args.samples,
    }
    Path(args.json).write_text(json.dumps(out, indent=2))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
