"""Simulator throughput: events per second of ``hpctune.backends.sim.simulation.simulate`` and of ``hpctune run --backend sim``.

The experiment: ASHA (grace_period 1, max_t 27, eta 3) with random search over a 2-d space
``{"x": uniform(0, 1), "y": uniform(0, 1)}``; the surrogate is :func:`curve` below: an iteration
takes ``1 + x`` virtual seconds and the loss ``(x - 0.7)^2 + 0.1 y + 1 / (1 + k i)`` with
``k = 0.05 + 2 (1 - x)^2`` falls fast for small ``x`` and lowest for ``x`` near 0.7, so the
curves cross. Trials: ``--per-worker`` (100) per virtual worker, at most ``--cap`` (100,000).

- In memory: for each ``--workers`` count, ``simulate(spec, surrogate, workers)`` runs in a fresh
  Python process (imports and the spec built before the clock starts); *wall s* is
  ``time.perf_counter`` around the ``simulate`` call alone. *events*: events the simulator
  processed (workers joining, results; segment ends after a delay, none here); *results*: results
  the controller decided on; *makespan*: virtual seconds; *utilisation*: busy rank-seconds over
  (workers x makespan).
- Through the CLI (``--cli-workers`` x ``--cli-trials``, default 1,000 x 100,000):
  ``hpctune run SPEC.yaml --backend sim --surrogate sim_throughput:curve --workers 1000`` as a
  whole process (interpreter start, imports, the journal and HDF5 snapshots of an ordinary
  experiment folder), then ``hpctune analyze DIR --rungs`` on that folder (the whole process), and
  ``hpctune.Analysis(DIR)`` in a fresh process to check that the folder holds every trial and result.

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/sim_throughput.py [--workers 100 1000 10000] [--repeats 1] [--out JSON]
        [--no-cli] [--keep DIR] [--wait-idle S]

``--wait-idle S``: before each timed run, wait up to S seconds for the shared machine to be idle
(under 0.3 busy cores for 4 s). *machine busy cores*: the whole machine's average busy cores
while the run was timed (this benchmark's own process included: about 1 when nothing else runs).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import busy_cores, cpu_times, settle  # noqa: E402

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent.parent
SURROGATE = f"{HERE.stem}:curve"  # imported by `hpctune run` from the cwd, this script's folder


def curve(config: dict, iteration: int) -> tuple[dict, float]:
    """The surrogate: ``(metrics, seconds)`` of one iteration (crossing loss curves, 1 + x seconds)."""
    x, y = config["x"], config["y"]
    speed = 0.05 + 2.0 * (1.0 - x) ** 2
    return {"loss": (x - 0.7) ** 2 + 0.1 * y + 1.0 / (1.0 + speed * iteration)}, 1.0 + x


def raw_spec(name: str, trials: int, storage: str) -> dict:
    return {"name": name, "trainable": "bench:none", "metric": "loss", "mode": "min", "num_samples": trials,
            "space": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}},
            "scheduler": {"type": "asha", "grace_period": 1, "max_t": 27, "reduction_factor": 3},
            "searcher": "random", "storage": storage, "seed": 0}


def trials_for(workers: int, per_worker: int, cap: int) -> int:
    return min(workers * per_worker, cap)


# --------------------------------------------------------------------------- child (a fresh process)

def child_simulate(workers: int, trials: int) -> dict:
    from hpctune.backends.sim.simulation import simulate
    from hpctune.spec import spec_from_dict
    from hpctune.backends.sim.surrogates import FunctionSurrogate

    storage = tempfile.mkdtemp(prefix="hpctune-simbench-")  # the spec checks it; nothing is written there
    try:
        spec = spec_from_dict(raw_spec("throughput", trials, storage), check_trainable=False)
        surrogate = FunctionSurrogate(curve, "loss", name=SURROGATE)
        cpu = cpu_times()
        started = time.perf_counter()
        sim = simulate(spec, surrogate, workers)
        wall = time.perf_counter() - started
        cores = busy_cores(cpu, cpu_times())
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    o = sim.outcome
    return {"workers": workers, "trials": len(sim.controller.trials), "events": o.events, "results": o.results,
            "segments": o.segments, "wall_s": wall, "makespan_s": o.makespan_s, "utilization": o.utilization,
            "status": o.status, "machine_busy_cores": cores,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child_read(folder: str) -> dict:
    started = time.perf_counter()
    from hpctune import Analysis

    analysis = Analysis(folder)
    trials = len(analysis.trials)
    rows = len(analysis.results)
    return {"trials": trials, "results": rows, "utilization": analysis.utilization(),
            "seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------- driver

def hpctune_command() -> list[str]:
    script = Path(sys.executable).with_name("hpctune")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpctune.cli.commands"]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def timed(command: list, cwd: Path, timeout: float) -> tuple[float, str]:
    """Run ``command``; its wall time (``perf_counter`` around the whole process) and its output."""
    started = time.perf_counter()
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env(), cwd=cwd,
                          timeout=timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-3000:]}")
    return wall, done.stdout + done.stderr


def child(mode: str, *args, timeout: float) -> tuple[float, dict]:
    wall, out = timed([sys.executable, HERE, "--child", mode, *args], ROOT, timeout)
    return wall, json.loads(out.strip().splitlines()[-1])


def run_cli(workers: int, trials: int, keep: str | None, timeout: float) -> dict:
    base = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="hpctune-simcli-"))
    base.mkdir(parents=True, exist_ok=True)
    name = f"sim{workers}x{trials}"
    folder = base / name
    if folder.exists():
        shutil.rmtree(folder)
    spec_path = base / f"{name}.yaml"
    spec_path.write_text(json.dumps(raw_spec(name, trials, str(base)), indent=1))  # JSON is YAML
    try:
        cpu = cpu_times()
        run_wall, run_out = timed([*hpctune_command(), "run", spec_path, "--backend", "sim", "--surrogate",
                                   SURROGATE, "--workers", workers], HERE.parent, timeout)
        found = re.search(r"simulated (.+?) of (\d+) workers \((\d+)% busy\) in (\d+) events", run_out)
        if not found:
            raise SystemExit(f"no 'simulated ...' line in the output of hpctune run:\n{run_out[-3000:]}")
        events = int(found.group(4))
        cores = busy_cores(cpu, cpu_times())
        analyze_wall, analyze_out = timed([*hpctune_command(), "analyze", folder, "--rungs"], ROOT, timeout)
        _, read = child("read", folder, timeout=timeout)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        if read["trials"] != trials:
            raise SystemExit(f"{folder}: Analysis read {read['trials']} trials, expected {trials}")
        lines = [line for line in analyze_out.splitlines() if line.startswith(("Worker utilisation", "Rungs"))]
        return {"workers": workers, "trials": trials, "events": events, "results": read["results"],
                "run_wall_s": run_wall, "events_per_s": events / run_wall, "virtual": found.group(1),
                "busy_pct_printed": int(found.group(3)), "analyze_wall_s": analyze_wall,
                "analysis_read_s": read["seconds"], "analysis_utilization": read["utilization"],
                "analyze_lines": lines, "folder_mib": size / 2**20, "machine_busy_cores": cores,
                "folder": str(folder) if keep else None}
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)


def median_run(runs: list[dict]) -> dict:
    """The run of median wall time (the first of the two middle ones for an even count)."""
    return sorted(runs, key=lambda r: r["wall_s"])[(len(runs) - 1) // 2]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--per-worker", type=int, default=100, help="trials per virtual worker (in memory)")
    parser.add_argument("--cap", type=int, default=100_000, help="at most this many trials (in memory)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cli-workers", type=int, default=1000)
    parser.add_argument("--cli-trials", type=int, default=100_000)
    parser.add_argument("--no-cli", action="store_true", help="skip the hpctune run --backend sim measurement")
    parser.add_argument("--keep", metavar="DIR", help="write the CLI's experiment under DIR and keep it")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="S",
                        help="before each timed run, wait up to S s for the shared machine to be idle")
    parser.add_argument("--timeout", type=float, default=900, help="seconds any one process may take")
    parser.add_argument("--out", metavar="JSON", help="save every measurement here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        mode, *rest = args.child
        data = child_simulate(int(rest[0]), int(rest[1])) if mode == "simulate" else child_read(rest[0])
        print(json.dumps(data))
        return 0

    memory: list[dict] = []
    for workers in args.workers:
        trials = trials_for(workers, args.per_worker, args.cap)
        runs = []
        for repeat in range(args.repeats):
            settle(args.wait_idle)
            _, data = child("simulate", workers, trials, timeout=args.timeout)
            data["events_per_s"] = data["events"] / data["wall_s"]
            runs.append(data)
            print(f"{workers} workers x {trials} trials, repeat {repeat + 1}: {data['events']} events in "
                  f"{data['wall_s']:.2f} s ({data['events_per_s']:.0f}/s)", file=sys.stderr, flush=True)
        memory.append({"workers": workers, "trials": trials, "runs": runs, "median": median_run(runs)})

    cli = []
    if not args.no_cli:
        for repeat in range(args.repeats):
            settle(args.wait_idle)
            cli.append(run_cli(args.cli_workers, args.cli_trials, args.keep, args.timeout))
            print(f"CLI {args.cli_workers} x {args.cli_trials}, repeat {repeat + 1}: run {cli[-1]['run_wall_s']:.2f} s, "
                  f"analyze {cli[-1]['analyze_wall_s']:.2f} s", file=sys.stderr, flush=True)

    command = "python scripts/bench/" + HERE.name + (" " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()
    print(f"## Simulator throughput ({datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()})\n")
    print(f"`{command}`\n")
    print("In memory (`simulate`), ASHA grace 1 / max_t 27 / eta 3, random search, 2-d space"
          + (f"; median of {args.repeats} by wall time" if args.repeats > 1 else "") + ":\n")
    print("| workers | trials | events | results | segments | wall s | events/s | virtual makespan s | utilisation "
          "| peak RSS MiB | machine busy cores |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in memory:
        m = row["median"]
        print(f"| {row['workers']:,} | {row['trials']:,} | {m['events']:,} | {m['results']:,} | {m['segments']:,} | "
              f"{m['wall_s']:.2f} | {m['events_per_s']:,.0f} | {m['makespan_s']:.1f} | {m['utilization']:.1%} | "
              f"{m['max_rss_mib']:.0f} | {m['machine_busy_cores']:.2f} |")
    if cli:
        c = sorted(cli, key=lambda r: r["run_wall_s"])[(len(cli) - 1) // 2]
        print(f"\nThrough the CLI into an experiment folder ({c['workers']:,} workers x {c['trials']:,} trials"
              + (f", median of {len(cli)}" if len(cli) > 1 else "") + "):\n")
        print("| step | wall s (whole process) | events | events/s | notes |")
        print("|---|---:|---:|---:|---|")
        print(f"| `hpctune run SPEC --backend sim --workers {c['workers']}` | {c['run_wall_s']:.2f} | {c['events']:,} | "
              f"{c['events_per_s']:,.0f} | {c['virtual']} virtual, {c['busy_pct_printed']}% busy; folder "
              f"{c['folder_mib']:.0f} MiB; machine busy cores {c['machine_busy_cores']:.2f} |")
        print(f"| `hpctune analyze DIR --rungs` | {c['analyze_wall_s']:.2f} | | | "
              + "; ".join(c["analyze_lines"]).replace("|", "/") + " |")
        print(f"\n`hpctune.Analysis(DIR)`: {c['trials']:,} trials, {c['results']:,} result rows, utilisation "
              f"{c['analysis_utilization']:.1%} (read in {c['analysis_read_s']:.2f} s in a fresh process).")
    if args.out:
        Path(args.out).write_text(json.dumps({"date": str(datetime.date.today()), "cores": os.cpu_count(),
                                              "python": platform.python_version(), "command": command,
                                              "memory": memory, "cli": cli,
                                              "median_wall_s": {r["workers"]: statistics.median(x["wall_s"] for x in r["runs"])
                                                                for r in memory}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
