"""Worker utilisation benchmark: asha vs sha vs hyperband on real MPI ranks.

For each scheduler, ``hpctune run SPEC --workers N`` runs as a subprocess (N
spawned worker ranks plus the coordinator) on a generated spec: the sleep-based
trainable of ``_sleep_trainable.py`` (iteration time 10 ms / (1 - cost), a
truncated Pareto tail up to 0.3 s, ``cost`` uniform), the same space, searcher
seed and number of trials for every scheduler; sha and asha with grace_period 1,
max_t 27, eta 3; hyperband with max_t 27, eta 3 (its brackets fill in rounds of
49 configs, the last round partly). Each experiment is then read back with
``hpctune.Analysis``. ``asha-budget`` is asha in the ASHA paper's setting: configs
keep coming (100 x ``--trials``) until ``time_budget_s`` (``--budget``) is spent.
Read back:

- ``util``: ``Analysis.utilization()``: busy rank-seconds over
  (ranks x time from the first segment start to the last segment end). A
  segment is busy from the coordinator's launch to its receipt of the segment's
  end, so per-segment overheads count as busy, idle waiting for work does not.
- ``util before drain``: the same, over the window that ends at the last moment
  all N ranks were busy; ``drain`` is the time after it (the run's end, where
  fewer than N trials are left to run).
- ``sleeping share``: the trainable's sleeps over the same rank-seconds as
  ``util`` (what is left is overhead: worker start-up, checkpoints, messages).
- ``worker start-up``: each rank's first segment minus its sleeps (the rank
  starts its trial process then), mean over ranks.
- ``overhead/iter``: mean of ``time_this_iter_s`` minus the iteration's sleep
  (checkpoint write, the round trip to the coordinator and its decision).

It prints a Markdown table and draws rank timelines (one panel per scheduler,
a bar per segment, coloured by the rung the segment ran up to).

Usage (repository root, hpctune's virtual environment active; matplotlib for the plot)::

    python scripts/bench/utilization.py [--workers 8] [--trials 200] [--max-t 27]
        [--out docs/img/utilization.png] [--json PATH] [--keep DIR]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TRAINABLE = HERE / "_sleep_trainable.py"
SCHEDULERS = ("asha", "asha-budget", "sha", "hyperband")

sys.path.insert(0, str(HERE))
from _sleep_trainable import iteration_seconds  # noqa: E402


def scheduler_options(name: str, max_t: int) -> dict:
    name = name.removesuffix("-budget")
    if name == "hyperband":
        return {"type": "hyperband", "max_t": max_t, "reduction_factor": 3}
    return {"type": name, "grace_period": 1, "max_t": max_t, "reduction_factor": 3}


def make_spec(name: str, trials: int, max_t: int, storage: Path, time_scale: float,
              budget: float | None = None) -> dict:
    extra = {}
    if name.endswith("-budget"):  # the ASHA paper's setting: configs keep coming until the time is up
        trials, extra = 100 * trials, {"time_budget_s": budget}
    return {
        **extra,
        "name": name,
        "trainable": f"{TRAINABLE}:train",
        "metric": "loss",
        "mode": "min",
        "num_samples": trials,
        "space": {
            "lr": {"loguniform": [1.0e-4, 1.0]},
            "width": {"uniform": [0.0, 1.0]},
            "cost": {"uniform": [0.0, 1.0]},
            "max_iterations": max_t,
            "time_scale": time_scale,
        },
        "stop": {"training_iteration": max_t},
        "scheduler": scheduler_options(name, max_t),
        "searcher": {"type": "random", "seed": 0},
        "seed": 0,
        "storage": str(storage),
    }


def hpctune_command() -> list[str]:
    exe = Path(sys.executable).parent / "hpctune"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "hpctune.cli"]


def run_one(name: str, args, folder: Path) -> float:
    """Run one experiment; returns the wall time of the whole ``hpctune run`` process."""
    import yaml

    spec_path = folder / f"{name}.yaml"
    spec_path.write_text(yaml.safe_dump(make_spec(name, args.trials, args.max_t, folder / "runs", args.time_scale,
                                                  args.budget),
                                        sort_keys=False))
    log = folder / f"{name}.log"
    started = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run([*hpctune_command(), "run", str(spec_path), "--workers", str(args.workers)],
                              stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, timeout=args.timeout)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        raise SystemExit(f"hpctune run {spec_path} failed with exit code {proc.returncode} (log: {log})")
    return wall


def busy_timeline(segments) -> list[tuple[float, int]]:
    """``(time, ranks busy from then on)`` at every segment start and end."""
    events = sorted([(s, 1) for s in segments.start] + [(e, -1) for e in segments.end], key=lambda e: (e[0], -e[1]))
    busy, out = 0, []
    for t, delta in events:
        busy += delta
        out.append((t, busy))
    return out


def window_utilization(segments, t0: float, t1: float, ranks: int) -> float | None:
    if t1 <= t0:
        return None
    busy = (segments.end.clip(upper=t1) - segments.start.clip(lower=t0)).clip(lower=0).sum()
    return float(busy / (ranks * (t1 - t0)))


def segment_levels(analysis, levels: list) -> list[int]:
    """Per segment, the index of the highest rung its trial reached during it (-1: none)."""
    results = analysis.results
    by_trial = {tid: group for tid, group in results.groupby("trial_id")}
    out = []
    for seg in analysis.segments.itertuples():
        group = by_trial.get(seg.trial_id)
        reached = 0
        if group is not None:
            inside = group[(group.timestamp >= seg.start - 1e-3) & (group.timestamp <= seg.end + 1e-3)]
            if len(inside):
                reached = int(inside.training_iteration.max())
        out.append(max((i for i, level in enumerate(levels) if reached >= level), default=-1))
    return out


def measure(name: str, folder: Path, wall: float, workers: int) -> dict:
    import hpctune

    analysis = hpctune.Analysis(folder / "runs" / name)
    segments = analysis.segments.dropna(subset=["end"]).copy()
    segments["start"] = segments.start.astype(float)
    segments["end"] = segments.end.astype(float)
    t0, t1 = float(segments.start.min()), float(segments.end.max())
    ranks = int(segments["rank"].nunique())
    timeline = busy_timeline(segments)
    full = [t for t, busy in timeline if busy >= workers]
    t_full = max(full) if full else t0
    results = analysis.results
    sleeps = analysis.trials.set_index("trial_id").apply(
        lambda row: iteration_seconds({"cost": row["config/cost"], "time_scale": row["config/time_scale"]}), axis=1)
    overhead = results.time_this_iter_s - results.trial_id.map(sleeps)
    # the first result of a segment also carries the segment's start-up (trainable lookup, checkpoint load)
    rungs = analysis.rung_counts() or []
    # worker start-up: each rank's first segment also starts its trial process (python, hpctune, numpy, h5py)
    startup = []
    for _, first in segments.sort_values("start").groupby("rank").head(1).iterrows():
        inside = results[(results.trial_id == first.trial_id) & (results.timestamp <= first.end + 1e-3)]
        startup.append(first.end - first.start - float(inside.trial_id.map(sleeps).sum()))
    return {
        "scheduler": name,
        "trials": int(len(analysis.trials)),
        "results": int(len(results)),
        "segments": int(len(segments)),
        "ranks": ranks,
        "utilization": analysis.utilization(),
        "utilization_before_drain": window_utilization(segments, t0, t_full, ranks),
        "window_s": t1 - t0,
        "drain_s": t1 - t_full,
        "process_wall_s": wall,
        "busy_rank_s": float((segments.end - segments.start).sum()),
        "sleep_rank_s": float(results.trial_id.map(sleeps).sum()),
        "sleep_share": float(results.trial_id.map(sleeps).sum() / (ranks * (t1 - t0))),
        "startup_s": float(sum(startup) / len(startup)),
        "overhead_per_iter_ms": float(overhead.mean() * 1e3),
        "overhead_per_iter_median_ms": float(overhead.median() * 1e3),
        "rung_counts": [[float(level), int(n)] for level, n in rungs],
        "levels": [float(level) for level, _ in rungs],
        "_analysis": analysis,
        "_segments": segments,
        "_t0": t0,
    }


def plot(rows: list[dict], out: Path, workers: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = ["#c6dbef", "#6baed6", "#2171b5", "#08306b", "#000000"]
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.0 * len(rows) + 0.6), sharex=True, squeeze=False)
    for ax, row in zip(axes[:, 0], rows):
        segments, t0 = row["_segments"], row["_t0"]
        levels = segment_levels(row["_analysis"], row["levels"])
        for seg, level in zip(segments.itertuples(), levels):
            ax.broken_barh([(seg.start - t0, seg.end - seg.start)], (seg.rank - 0.4, 0.8),
                           facecolors=colours[max(level, 0)], edgecolor="white", linewidth=0.3)
        ax.set_ylim(0.4, workers + 0.6)
        ax.set_yticks(range(1, workers + 1))
        ax.tick_params(axis="y", labelsize=7)
        ax.set_ylabel("rank")
        ax.set_title(f"{row['scheduler']}: utilisation {row['utilization']:.1%} "
                     f"({row['utilization_before_drain']:.1%} before the final drain of {row['drain_s']:.1f} s), "
                     f"{row['trials']} trials", fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("seconds since the first trial started")
    levels = rows[0]["levels"]
    handles = [Patch(color=colours[i], label=f"segment reached rung {level:g}") for i, level in enumerate(levels)]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    plt.close(fig)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        ram = f"{kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        ram = "unknown RAM"
    return (f"{os.cpu_count()} cores (nproc), {cpu}, {ram}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, {datetime.date.today().isoformat()}")


def table(rows: list[dict]) -> str:
    levels = rows[0]["levels"]
    head = ["scheduler", "trials", "utilisation", "util. before drain", "drain (s)", "sleeping share",
            "run window (s)", "`hpctune run` wall (s)", "worker start-up (s)", "overhead/iter (ms, mean / median)",
            "trials per rung " + " / ".join(f"{level:g}" for level in levels)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["scheduler"], str(r["trials"]), f"{r['utilization']:.1%}", f"{r['utilization_before_drain']:.1%}",
            f"{r['drain_s']:.1f}", f"{r['sleep_share']:.1%}", f"{r['window_s']:.1f}", f"{r['process_wall_s']:.1f}",
            f"{r['startup_s']:.1f}",
            f"{r['overhead_per_iter_ms']:.1f} / {r['overhead_per_iter_median_ms']:.1f}",
            " / ".join(str(n) for _, n in r["rung_counts"])]) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--max-t", type=int, default=27)
    parser.add_argument("--budget", type=float, default=15.0,
                        help="time_budget_s of asha-budget (asha with 100x the trials, stopped by the budget)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every iteration's sleep")
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS))
    parser.add_argument("--out", default=str(ROOT / "docs" / "img" / "utilization.png"))
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--keep", help="run the experiments in this folder (kept) instead of a temporary one")
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)

    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="hpctune-util-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}", flush=True)
    rows = []
    try:
        for name in args.schedulers.split(","):
            shutil.rmtree(folder / "runs" / name, ignore_errors=True)
            wall = run_one(name, args, folder)
            row = measure(name, folder, wall, args.workers)
            rows.append(row)
            print(f"{name}: utilisation {row['utilization']:.1%} (before drain {row['utilization_before_drain']:.1%}, "
                  f"drain {row['drain_s']:.1f} s), {row['trials']} trials, window {row['window_s']:.1f} s, "
                  f"process {wall:.1f} s", flush=True)
        print()
        print(table(rows))
        if args.out:
            plot(rows, Path(args.out), args.workers)
            print(f"\nplot: {args.out} ({Path(args.out).stat().st_size // 1024} KB)")
        if args.json:
            data = {"machine": machine(), "command": " ".join(sys.argv), "workers": args.workers,
                    "rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]}
            Path(args.json).write_text(json.dumps(data, indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
