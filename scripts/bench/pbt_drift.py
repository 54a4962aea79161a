"""Asynchronous PBT with more trials than workers, on a problem whose best learning rate drifts
during training (``_drift_problem.py``: a noisy quadratic model; score in [0, 1]): a population
of 8, 4 workers, 40 iterations, ``perturbation_interval`` 4, lr ~ loguniform(1e-3, 1), seeds
0..N-1, each run in a process of its own. For each seed, in one run of this script:

- ``fixed``: the population with its learning rates fixed (``fifo``);
- ``before``: hpctune's asynchronous PBT as of commit f7c550a (a worktree of it, ``--before``);
- ``after``: this tree's asynchronous PBT (the population time-shares the workers at the intervals);
- ``synch``: this tree's synchronous PBT (``synch: true``);
- ``ray``: Ray Tune's ``PopulationBasedTraining`` (asynchronous, its default), run by the python of
  ``.bench/ray-venv`` (created with ``pip install "ray[tune]"`` when missing; see overhead.py).

Every method gets the same initial learning rates for a seed: hpctune's runs draw them from the
same seed (checked: each run's ``add`` records against ``fixed``'s), Ray gets them as a grid.
``--spread S``: trials run at different speeds, each iteration of a trial taking a time drawn for
it from uniform(SLEEP (1 - S), SLEEP (1 + S)) (drawn with the learning rate, never explored; Ray
gets the same times).
Reported per seed and as medians: the best final score of the population (each trial's score at
its last result), the iterations trained in all, and the symptom: how far the most advanced trial
had trained when each of the late trials (those that started after the first 4) reported its first
result (median and max over them).

    git worktree add /tmp/hpctune-f7c550a f7c550a
    python scripts/bench/pbt_drift.py --seeds 5 --before /tmp/hpctune-f7c550a --json .bench/pbt_drift.json
    python scripts/bench/pbt_drift.py --seeds 5 --before /tmp/hpctune-f7c550a --spread 0.5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
from overhead import ensure_ray_venv, machine  # noqa: E402

METHODS = ("fixed", "before", "after", "synch", "ray")
SCHEDULER = {"fixed": "fixed", "before": "pbt", "after": "pbt", "synch": "pbt-synch"}


def run_hpctune(method: str, seed: int, storage: Path, args: argparse.Namespace) -> dict:
    """One hpctune run (``before`` with the hpctune of ``args.before``), read back with Analysis."""
    import hpctune

    code = Path(args.before).resolve() if method == "before" else ROOT
    name = f"{method}{seed}"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / "_pbt_drift_run.py"), str(storage), name, str(seed),
                           SCHEDULER[method], str(args.iterations), str(args.interval), str(args.population),
                           str(args.workers), str(args.sleep), str(args.spread)],
                          env={**os.environ, "PYTHONPATH": str(code)}, cwd=storage, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    assert done.stdout.splitlines()[0] == f"hpctune: {code}", done.stdout  # the hpctune asked for ran
    analysis = hpctune.Analysis(storage / name)
    adds = analysis.lineage[analysis.lineage.event == "add"].sort_values("trial_id")
    initial = [[json.loads(config)[key] for key in ("lr", "sleep")] for config in adds.config_json]
    results = analysis.results.sort_values("timestamp")
    histories = [(rows.training_iteration.tolist(), rows.timestamp.tolist(), rows.score.tolist())
                 for _, rows in results.groupby("trial_id")]
    return {**measure(histories, args.workers), "initial": initial, "wall_s": wall,
            "exploits": int((analysis.lineage.event == "exploit").sum())}


def run_ray(seed: int, initial: list[list[float]], storage: Path, args: argparse.Namespace) -> dict:
    python = ensure_ray_venv(args.ray_spec)
    out = storage / f"ray{seed}.json"
    with open(storage / f"ray{seed}.log", "w") as log:
        done = subprocess.run([str(python), str(HERE / "_ray_pbt_drift.py"), "--storage", str(storage / "ray"),
                               "--json", str(out), "--lrs", ",".join(repr(lr) for lr, _ in initial),
                               "--sleeps", ",".join(repr(sleep) for _, sleep in initial), "--seed", str(seed),
                               "--iterations", str(args.iterations), "--interval", str(args.interval),
                               "--workers", str(args.workers)],
                              cwd=storage, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"Ray Tune run of seed {seed} failed (exit {done.returncode}): "
                         f"{(storage / f'ray{seed}.log').read_text()[-3000:]}")
    ray = json.loads(out.read_text())
    errors = [trial["error"] for trial in ray["trials"] if trial["error"]]
    assert not errors, errors
    histories = [(trial["iteration"], trial["wall"], trial["score"]) for trial in ray["trials"]]
    started = sorted(trial["initial"] for trial in ray["trials"])  # each trial's first result's lr and time
    assert started == sorted(initial), (started, initial)
    return {**measure(histories, args.workers), "initial": initial, "wall_s": ray["wall_s"],
            "version": ray["version"]}


def measure(histories: list[tuple[list, list, list]], workers: int) -> dict:
    """From each trial's (iterations, times, scores) in time order: the best final score, the
    iterations trained, and how far the most advanced trial was when each late trial first reported."""
    final = max(scores[-1] for _, _, scores in histories)
    reports = sorted((t, iteration) for iterations, times, _ in histories for t, iteration in zip(times, iterations))
    firsts = sorted(times[0] for _, times, _ in histories)
    leads = [max(iteration for t, iteration in reports if t < first) for first in firsts[workers:]] or [0]
    return {"best_final": final, "iterations": len(reports), "lead_median": statistics.median(leads),
            "lead_max": max(leads)}


def markdown(rows: dict, methods: list[str]) -> str:
    seeds = sorted(rows)
    head = "| seed | " + " | ".join(f"best final, {m}" for m in methods) + " | " + " | ".join(
        f"lead at start, {m}" for m in methods) + " |"
    lines = [head, "|" + " ---: |" * (1 + 2 * len(methods))]
    for seed in seeds:
        lines.append(f"| {seed} | " + " | ".join(f"{rows[seed][m]['best_final']:.4f}" for m in methods) + " | " +
                     " | ".join(f"{rows[seed][m]['lead_median']:g} (max {rows[seed][m]['lead_max']})" for m in methods)
                     + " |")
    median = lambda m, key: statistics.median(rows[s][m][key] for s in seeds)  # noqa: E731
    lines.append("| **median** | " + " | ".join(f"**{median(m, 'best_final'):.4f}**" for m in methods) + " | " +
                 " | ".join(f"**{median(m, 'lead_median'):g}**" for m in methods) + " |")
    lines.append("")
    lines.append("| method | iterations trained (median) | exploits (median) | wall s (median) |")
    lines.append("| --- | ---: | ---: | ---: |")
    for m in methods:
        exploits = [rows[s][m].get("exploits") for s in seeds]
        shown = f"{statistics.median(exploits):g}" if None not in exploits else "-"
        lines.append(f"| {m} | {median(m, 'iterations'):g} | {shown} | {median(m, 'wall_s'):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--before", help="a worktree of commit f7c550a (the 'before' method; omitted: skipped)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, of: " + ", ".join(METHODS))
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--interval", type=int, default=4)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--sleep", type=float, default=0.05, help="seconds of each iteration (a stand-in for work)")
    parser.add_argument("--spread", type=float, default=0.0, help="trials' iteration times spread by this share")
    parser.add_argument("--ray-spec", default="ray[tune]", help="what pip installs into .bench/ray-venv if needed")
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    methods = [m for m in args.methods.split(",") if m != "before" or args.before]
    assert set(methods) <= set(METHODS) and methods[0] == "fixed", "fixed first: it gives the seed's draws"
    rows: dict[int, dict] = {}
    with tempfile.TemporaryDirectory(prefix="pbt-drift-") as tmp:
        for seed in range(args.seeds):
            rows[seed] = {}
            for method in methods:
                storage = Path(tmp) / method
                storage.mkdir(exist_ok=True)
                if method == "ray":
                    rows[seed][method] = run_ray(seed, rows[seed]["fixed"]["initial"], storage, args)
                else:
                    rows[seed][method] = run_hpctune(method, seed, storage, args)
                assert rows[seed][method]["initial"] == rows[seed]["fixed"]["initial"], "not the same draws"
                got = rows[seed][method]
                print(f"seed {seed} {method:6s} best final {got['best_final']:.4f}  iterations {got['iterations']}  "
                      f"lead at start median {got['lead_median']:g} max {got['lead_max']}  wall {got['wall_s']:.1f} s",
                      flush=True)
    m = machine()
    print(f"\nMachine: {m['nproc']} cores (nproc), {m['cpu']}, {m['ram_gib']} GiB RAM, Python {m['python']}, "
          f"{m['os']}, {m['date']}\n")
    print(markdown(rows, methods))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
