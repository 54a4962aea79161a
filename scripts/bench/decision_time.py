"""Scheduler decision time at 1,000 and at 100,000 trials, in-process (no MPI).

Each scheduler (fifo, asha, sha, hyperband, median) runs a synthetic
experiment through the real :class:`hpctune.controller.core.Controller` with a real
``ExperimentStore`` (journal in a temporary folder, flushed after every event
as the MPI coordinator does; no HDF5 snapshots). A small discrete-event driver
plays 8 virtual workers: a trial reports ``loss = |x - 0.3| + (0.2 + y) / i``
every ``1 + x`` virtual seconds, with a (fake) checkpoint per result, until the
controller says PAUSE or STOP or it reaches 9 iterations; paused trials resume
when the scheduler chooses them. Schedulers: asha and sha grace_period 1,
max_t 9, eta 3; hyperband max_t 9, eta 3; median grace_period 1.

Timed per call (``time.perf_counter_ns``):

- ``on_trial_result``: the scheduler's decision on one result;
- ``choose_trial_to_run``: the scheduler's pick for a free worker;
- ``on_result + flush``: the coordinator's whole cost of one result
  (``Controller.on_result``: trial table, best-so-far, journal records,
  scheduler and searcher; then ``ExperimentStore.flush``).

"at 1k": mean over every call of an experiment of 1,000 trials. "at 100k":
mean over the calls an experiment of 100,000 trials makes while it holds at
least 99,000 trials (its last 1,000 trials and its end: for sha, that is where
its rungs complete and promote). A scan over all trials per call would make
the ratio ~100.

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/decision_time.py [--small 1000] [--large 100000] [--json PATH]
"""
from __future__ import annotations

import argparse
import heapq
import json
import platform
import shutil
import statistics
import sys
from collections import deque
import tempfile
import time
from pathlib import Path

from hpctune.api import open_experiment
from hpctune.controller.core import Controller
from hpctune.enums import Decision, SegmentEnd
from hpctune.schedulers import SchedulerDecision
from hpctune.spec import spec_from_dict

SCHEDULERS = {
    "fifo": "fifo",
    "asha": {"type": "asha", "grace_period": 1, "max_t": 9, "reduction_factor": 3},
    "sha": {"type": "sha", "grace_period": 1, "max_t": 9, "reduction_factor": 3},
    "hyperband": {"type": "hyperband", "max_t": 9, "reduction_factor": 3},
    "median": {"type": "median", "grace_period": 1, "min_samples_required": 3},
}
EPOCHS = 9
WORKERS = 8


class Timed:
    """Wraps a bound method; records (trials held, nanoseconds) per call."""

    def __init__(self, fn, held):
        self.fn = fn
        self.held = held
        self.calls: list[tuple[int, int]] = []

    def __call__(self, *args, **kwargs):
        start = time.perf_counter_ns()
        out = self.fn(*args, **kwargs)
        self.calls.append((self.held(), time.perf_counter_ns() - start))
        return out


def build(folder: Path, scheduler, num_samples: int) -> Controller:
    raw = {"name": "bench", "trainable": "bench.dummy:train", "metric": "loss", "mode": "min",
           "num_samples": num_samples,
           "space": {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": EPOCHS},
           "scheduler": scheduler, "searcher": {"type": "random", "seed": 0}, "seed": 0, "storage": str(folder)}
    spec = spec_from_dict(raw, check_trainable=False)
    store, _ = open_experiment(spec, resume=False)
    clock = {"now": 0.0}
    controller = Controller(spec, store, clock=lambda: clock["now"])
    controller._bench_clock = clock
    return controller


def drive(controller: Controller) -> dict:
    """Run the experiment to its end with WORKERS virtual workers; returns the Timed wrappers."""
    scheduler, store = controller.scheduler, controller.store
    held = controller.trials.__len__
    decide = Timed(scheduler.on_trial_result, held)
    choose = Timed(scheduler.choose_trial_to_run, held)
    scheduler.on_trial_result = decide
    scheduler.choose_trial_to_run = choose
    coordinator: list[tuple[int, int]] = []
    clock = controller._bench_clock
    queue: list[tuple] = []
    busy: dict[int, list] = {}
    seq = 0

    idle = deque()

    def collect(now):
        nonlocal seq
        for launch in controller.take_launches():
            task = launch.task
            rank = idle.popleft()
            controller.placed(task.trial_id, [rank])
            busy[rank] = [task.trial_id, task.start_iteration + 1, task.config]
            seq += 1
            heapq.heappush(queue, (now + 1.0 + task.config["x"], seq, rank))

    for rank in range(1, WORKERS + 1):
        idle.append(rank)
        controller.on_workers_joined(1)
        store.flush()
        collect(0.0)
    while queue:
        now, _, rank = heapq.heappop(queue)
        clock["now"] = now
        trial_id, iteration, config = busy[rank]
        row = {"loss": abs(config["x"] - 0.3) + (0.2 + config["y"]) / iteration, "trial_id": trial_id,
               "training_iteration": iteration, "time_total_s": now}
        start = time.perf_counter_ns()
        decision = controller.on_result(trial_id, row, f"trials/{trial_id:06d}/checkpoint_{iteration}.h5")
        store.flush()
        coordinator.append((held(), time.perf_counter_ns() - start))
        action = decision.action if isinstance(decision, SchedulerDecision) else decision
        if action == Decision.CONTINUE and iteration < config["epochs"]:
            busy[rank][1] += 1
            seq += 1
            heapq.heappush(queue, (now + 1.0 + config["x"], seq, rank))
            continue
        how = {Decision.PAUSE: SegmentEnd.PAUSED, Decision.STOP: SegmentEnd.STOPPED}.get(
            Decision(action), SegmentEnd.COMPLETED)
        del busy[rank]
        idle.append(rank)
        controller.on_segment_end(trial_id, how)
        store.flush()
        collect(now)
    controller.finalize()
    store.close()
    return {"decide": decide.calls, "choose": choose.calls, "coordinator": coordinator}


def mean_us(calls, min_held: int = 0) -> tuple[float, int]:
    picked = [ns for h, ns in calls if h >= min_held]
    return (statistics.fmean(picked) / 1e3 if picked else float("nan")), len(picked)


def run(name: str, n: int, root: Path) -> tuple[dict, float]:
    folder = root / f"{name}-{n}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    controller = build(folder, SCHEDULERS[name], n)
    started = time.perf_counter()
    calls = drive(controller)
    took = time.perf_counter() - started
    assert len(controller.trials) == n, (name, n, len(controller.trials))
    shutil.rmtree(folder, ignore_errors=True)
    return calls, took


def machine() -> str:
    import datetime
    import os

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    kb = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
    return (f"{os.cpu_count()} cores (nproc), {cpu}, {kb / 2**20:.0f} GiB RAM, Python {platform.python_version()}, "
            f"{datetime.date.today().isoformat()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--schedulers", default=",".join(SCHEDULERS))
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)
    window = args.large - args.large // 100
    print(f"machine: {machine()}", flush=True)
    root = Path(tempfile.mkdtemp(prefix="hpctune-decision-"))
    rows = []
    try:
        for name in args.schedulers.split(","):
            run(name, args.small, root)   # warm-up (imports, first-call caches), not counted
            small, t_small = run(name, args.small, root)
            large, t_large = run(name, args.large, root)
            row = {"scheduler": name, "seconds_small": t_small, "seconds_large": t_large}
            for key in ("decide", "choose", "coordinator"):
                a, na = mean_us(small[key])
                b, nb = mean_us(large[key], window)
                whole, nw = mean_us(large[key])
                row[key] = {"small_us": a, "small_calls": na, "large_us": b, "large_calls": nb,
                            "large_whole_run_us": whole, "large_whole_run_calls": nw,
                            "large_max_us": max(ns for _, ns in large[key]) / 1e3, "ratio": b / a}
            rows.append(row)
            print(f"{name}: {args.small} trials in {t_small:.1f} s, {args.large} trials in {t_large:.1f} s; "
                  f"on_trial_result {row['decide']['small_us']:.2f} -> {row['decide']['large_us']:.2f} us", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    small, large = f"{args.small:,}", f"{args.large:,}"
    print()
    print(f"| scheduler | `on_trial_result` µs at {small} | at {large} | ratio | `choose_trial_to_run` µs at {small} "
          f"| at {large} | ratio | `Controller.on_result` + journal flush µs at {small} | at {large} | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        cells = [row["scheduler"]]
        for key in ("decide", "choose", "coordinator"):
            r = row[key]
            cells += [f"{r['small_us']:.2f}", f"{r['large_us']:.2f}", f"{r['ratio']:.2f}"]
        print("| " + " | ".join(cells) + " |")
    print()
    print("calls measured (at small / at large, whole large run) and worst single call in the large run:")
    for row in rows:
        print(f"  {row['scheduler']}: " + "; ".join(
            f"{key} {row[key]['small_calls']} / {row[key]['large_calls']} / {row[key]['large_whole_run_calls']} calls, "
            f"whole-run mean {row[key]['large_whole_run_us']:.2f} us, max {row[key]['large_max_us']:.0f} us"
            for key in ("decide", "choose", "coordinator")))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine(), "command": " ".join(sys.argv), "rows": rows},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
