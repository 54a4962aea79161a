"""Walltime-aware scheduling on a real Slurm: one experiment across short allocations, on and off.

The same experiment (``--trials`` trials of ``--iterations`` iterations on 2 worker ranks; half
the configs take ``--short-s`` seconds an iteration, half ``--long-s``) is submitted with
``slurm/cpu.sbatch`` in allocations of ``--time`` minutes and left to requeue itself until it is
finished, once with walltime-aware scheduling (the default) and once without
(``HPCTUNE_WALLTIME_AWARE=0``: only the fixed margin, where every running trial is told to
checkpoint and pause at its next result). A job that Slurm ended without a requeue (the time
limit struck first) is submitted again, as a user would. Reported for each:

- ``allocations``: batch jobs started (requeues and resubmissions included);
- ``thrown away``: iterations started but never reported, or started again after a cut (an
  allocation's end), and their seconds (each counted whole: at most that much), from the
  trainable's own log;
- ``useful share``: reported iteration-seconds over worker rank-seconds of all allocations
  (``2 x`` the time from each allocation's start to its end).

Usage (repository root, as root with ``scripts/local-slurm.sh`` run; hpctune's venv active)::

    python scripts/bench/walltime.py [--time 1] [--trials 6] [--iterations 10] [--short-s 0.5] [--long-s 6]
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from slurm_jobs import wait_until_ended  # noqa: E402  (the test suite's: through requeues, without the 2-min hold)


def submit(folder: Path, spec: Path, minutes: int, env: dict) -> str:
    done = subprocess.run(["sbatch", "--parsable", "--ntasks-per-node=3", f"--time={minutes}",
                           f"--output={folder / 'job.out'}", str(ROOT / "slurm" / "cpu.sbatch"), spec.name],
                          cwd=folder, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().split(";")[0]


def run_one(aware: bool, args, folder: Path) -> dict:
    import yaml

    import hpctune

    folder.mkdir(parents=True)
    spec = folder / "walltime.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "walltime", "trainable": f"{HERE / '_walltime_trainable.py'}:train", "metric": "loss",
        "num_samples": args.trials // 2, "seed": 0, "storage": "runs",
        "space": {"x": {"uniform": [0, 1]}, "iter_s": {"grid": [args.short_s, args.long_s]},
                  "iterations": args.iterations}}))
    log = folder / "iterations.log"
    env = {**os.environ, "WALLTIME_BENCH_LOG": str(log), "HPCTUNE_VENV": sys.prefix,
           "HPCTUNE_WALLTIME_AWARE": "1" if aware else "0"}
    experiment = folder / "runs" / "walltime"
    submissions, started = 0, time.monotonic()
    while submissions < 20:
        submissions += 1
        wait_until_ended(submit(folder, spec, args.time, env), timeout=1800)
        try:
            if hpctune.Analysis(experiment).status == "finished":
                break
        except Exception:
            pass
    wall = time.monotonic() - started
    analysis = hpctune.Analysis(experiment)
    assert analysis.status == "finished", f"not finished after {submissions} submissions"
    reported = {(int(r.trial_id), int(r.training_iteration)) for r in analysis.results.itertuples()}
    starts: dict[tuple[int, int], list[float]] = {}
    for trial, i, _, seconds in (line.split() for line in log.read_text().splitlines()):
        starts.setdefault((int(trial), int(i)), []).append(float(seconds))
    # an iteration started but never reported, or started again after its first run was cut
    thrown = [seconds for key, runs in starts.items() for seconds in (runs[1:] if key in reported else runs)]
    allocations = json.loads((experiment / "slurm.json").read_text())["allocations"]
    granted = sum(a["end"] - a["start"] for a in allocations if a.get("end"))
    useful = float(analysis.results.time_this_iter_s.sum())
    return {"walltime_aware": aware, "allocations": len(allocations), "submissions": submissions,
            "thrown_away_iterations": len(thrown), "thrown_away_s": sum(thrown), "useful_share": useful / (2 * granted),
            "utilization": analysis.utilization(), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time", type=int, default=1, help="minutes per allocation")
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--short-s", type=float, default=0.5)
    parser.add_argument("--long-s", type=float, default=6.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpctune-walltime-", dir=os.getcwd()) as tmp:
        for aware in (True, False):
            rows.append(run_one(aware, args, Path(tmp) / ("on" if aware else "off")))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    machine = f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"{datetime.date.today()}, {machine}; {args.time}-minute allocations, {args.trials} trials x "
          f"{args.iterations} iterations of {args.short_s} s or {args.long_s} s, 2 worker ranks\n")
    print("| walltime-aware | allocations | submissions | iterations thrown away | seconds thrown away "
          "| useful share of the allocations | utilisation (segments) | wall (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {'on' if row['walltime_aware'] else 'off'} | {row['allocations']} | {row['submissions']} "
              f"| {row['thrown_away_iterations']} | {row['thrown_away_s']:.1f} | {100 * row['useful_share']:.1f}% "
              f"| {100 * row['utilization']:.1f}% | {row['wall_s']:.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
