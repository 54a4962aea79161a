"""Multi-rank trials: how busy the worker ranks stay when trials take k ranks each.

For each ``ranks_per_trial`` k (default 1, 2, 3) and scheduler (fifo: one segment per trial;
asha: trials paused at rungs 1/3/9 and promoted, so several segments each), ``hpctune run
SPEC --workers N`` runs as a subprocess on the sleep trainable of ``_sleep_trainable.py``
(every rank of a trial sleeps ``--iter-s`` per iteration, as a data-parallel step would) with
the same space, seed and trials. k = 3 on 8 workers fragments: at most two trials fit, two
ranks stay idle, so the best possible utilisation is 6/8. Read back with ``hpctune.Analysis``:

- ``util``: ``Analysis.utilization()`` (busy rank-seconds, every rank of a segment counted,
  over ranks x the run's window);
- ``bound``: floor(N / k) * k / N, the most any placement can keep busy;
- ``training share``: the iterations' sleeps (k ranks each) over the same rank-seconds: what is
  left of ``util`` is overhead;
- ``overhead/segment``: a segment's duration minus its iterations' sleeps, median (for k > 1:
  starting the trial's own ``mpiexec`` job and its k processes, then their exit).

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/group_utilization.py [--workers 8] [--ranks 1 2 3] [--trials 24]
        [--iter-s 0.25] [--json PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TRAINABLE = HERE / "_sleep_trainable.py"


def make_spec(name: str, scheduler: str, ranks: int, trials: int, iter_s: float, storage: Path) -> dict:
    options = {"type": "fifo"} if scheduler == "fifo" else {"type": "asha", "grace_period": 1, "max_t": 27,
                                                              "reduction_factor": 3}
    max_iterations = 9 if scheduler == "fifo" else 27
    return {"name": name, "trainable": f"{TRAINABLE}:train", "metric": "loss", "mode": "min",
            "num_samples": trials, "seed": 0, "storage": str(storage), "scheduler": options,
            "space": {"lr": {"loguniform": [1.0e-4, 1.0]}, "width": {"uniform": [0.0, 1.0]},
                      "cost": 0.0, "time_scale": iter_s / 0.010, "max_iterations": max_iterations},
            "resources": {"ranks_per_trial": ranks}}


def run_one(scheduler: str, ranks: int, args, folder: Path) -> dict:
    import hpctune

    name = f"{scheduler}-k{ranks}"
    spec_path = folder / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(make_spec(name, scheduler, ranks, args.trials, args.iter_s, folder)))
    started = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "hpctune"), "run", str(spec_path), "--workers",
                           str(args.workers)], cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    analysis = hpctune.Analysis(folder / name)
    segments, results = analysis.segments, analysis.results
    iterations = results.groupby("trial_id").training_iteration
    per_segment = []
    for segment in segments.itertuples():  # iterations reported within each segment's window
        rows = results[(results.trial_id == segment.trial_id) & (results.timestamp >= segment.start)
                       & (results.timestamp <= segment.end)]
        per_segment.append((segment.end - segment.start) - len(rows) * args.iter_s)
    bound = (args.workers // ranks) * ranks / args.workers
    window = segments.end.max() - segments.start.min()
    training = len(results) * args.iter_s * ranks / (args.workers * window)
    utilization = analysis.utilization()
    return {"scheduler": scheduler, "ranks_per_trial": ranks, "trials": len(analysis.trials),
            "segments": len(segments), "iterations": int(iterations.max().sum()), "util": utilization,
            "bound": bound, "util_of_bound": utilization / bound, "training_share": training,
            "overhead_per_segment_s": sorted(per_segment)[len(per_segment) // 2], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--schedulers", nargs="+", default=["fifo", "asha"])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--iter-s", type=float, default=0.25, help="seconds per iteration (every rank sleeps)")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpctune-groups-") as tmp:
        for scheduler in args.schedulers:
            for ranks in args.ranks:
                rows.append(run_one(scheduler, ranks, args, Path(tmp)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{datetime.date.today()}, {machine}; {args.workers} workers, {args.trials} trials, "
          f"{args.iter_s} s per iteration\n")
    print("| scheduler | ranks per trial | segments | utilisation | bound floor(N/k)k/N | of the bound "
          "| training share | overhead per segment (s, median) | `hpctune run` wall (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['scheduler']} | {row['ranks_per_trial']} | {row['segments']} | {100 * row['util']:.1f}% "
              f"| {100 * row['bound']:.1f}% | {100 * row['util_of_bound']:.1f}% "
              f"| {100 * row['training_share']:.1f}% | {row['overhead_per_segment_s']:.2f} | {row['wall_s']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "args": vars(args) | {"json": str(args.json)},
                                         "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
