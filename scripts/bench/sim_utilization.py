"""Worker utilisation of asha, sha and hyperband on 1,000 virtual workers (the ASHA paper's large-scale setting).

Simulated with ``hpctune.backends.sim.simulation.simulate`` (the real Controller, schedulers and random searcher
on a virtual clock). The rungs are those of Table 2 of the ML@CMU blog post on ASHA (Li, 2018):
eta = 4, resources R/256, R/64, R/16, R/4, R, i.e. grace_period 1 and max_t 256 iterations
(hyperband: max_t 256, eta 4: brackets s = 4..0 of 256, 80, 27, 10 and 5 configs, 378 a round).

The surrogate, :func:`curve`, over ``{"x": uniform(0, 1), "y": uniform(0, 1)}``: an iteration takes
``0.5 + y`` virtual seconds (uniform 0.5x..1.5x of the mean, 1 s; fixed per config), so
**R = 256 s**, the mean time to train one config for max_t iterations; the loss at iteration
``i`` is ``(x - 0.7)^2 + 0.5 / (1 + 0.1 i)``: the same curve shape for every config (curves do not
cross, so every rung ranks configs as the last one does) and quality independent of speed. No
start-up or end delay: a worker is busy exactly while it trains. (With smooth curves that cross, no
scheduler here ever completed a config of the best 1% at max_t: each rung keeps a narrow band of
``x`` around its own optimum.)

Runs (``--workers`` 1,000 each):

- ``asha``, ``sha``, ``hyperband``: the same ``--configs`` (4,096) configs each, a finite search
  (sha's rungs start with 4,096, 1,024, 256, 64 and 16 jobs);
- ``asha-budget``, ``hyperband-budget``: the paper's setting, configs keep coming
  (num_samples 10,000,000) until ``time_budget_s`` = ``--budget-r`` x R of virtual time; running trials
  then end at their next result;
- ``sha-large``: sha with ``--sha-large`` (256,000) configs, so that every rung starts with at
  least 1,000 jobs (256,000 / 64,000 / 16,000 / 4,000 / 1,000): sha at its best on 1,000 workers.

Measured on each run, from the launch and end of every segment (the virtual time the controller
records them at):

- *utilisation*: busy rank-seconds over (workers x makespan); *idle* is 1 minus it;
- *t<90%*: the first moment (after every event of that moment) when fewer than 90% of the workers
  are busy; *tail*: from then to the end, in R, and the utilisation within it; *all time <90%*:
  the total time, in R, during which fewer than 90% of the workers were busy;
- busy workers, mean over each ``--window`` x R of virtual time;
- *first at R*: when the first trial completed max_t iterations; *first good*: when the first trial
  completed max_t iterations with a loss in the best 1% of the space (the 1% quantile of the
  full-fidelity loss of 1,000,000 random configs), both in R.

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/sim_utilization.py [--workers 1000] [--configs 4096] [--sha-large 256000]
        [--budget-r 2] [--window 0.25] [--only asha sha ...] [--out JSON]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

HERE = Path(__file__).resolve()
MAX_T, ETA = 256, 4
MEAN_ITERATION_S = 1.0
R = MAX_T * MEAN_ITERATION_S  # virtual seconds to train one config for max_t iterations, on average
RUNS = ("asha", "sha", "hyperband", "asha-budget", "hyperband-budget", "sha-large")
GOOD_QUANTILE = 0.01


def curve(config: dict, iteration: int) -> tuple[dict, float]:
    """The surrogate: ``(metrics, seconds)`` of one iteration (see the module docstring)."""
    x, y = config["x"], config["y"]
    return {"loss": (x - 0.7) ** 2 + 0.5 / (1.0 + 0.1 * iteration)}, 0.5 + y


def good_threshold(samples: int = 1_000_000, seed: int = 12345) -> float:
    """The ``GOOD_QUANTILE`` quantile of the loss at max_t over random configs (numpy, same formula)."""
    rng = np.random.default_rng(seed)
    x = rng.random(samples)
    loss = (x - 0.7) ** 2 + 0.5 / (1.0 + 0.1 * MAX_T)
    return float(np.quantile(loss, GOOD_QUANTILE))


def scheduler(name: str) -> dict:
    base = name.split("-")[0]
    if base == "hyperband":
        return {"type": "hyperband", "max_t": MAX_T, "reduction_factor": ETA}
    return {"type": base, "grace_period": 1, "max_t": MAX_T, "reduction_factor": ETA}


def raw_spec(name: str, args, storage: str) -> dict:
    raw = {"name": name, "trainable": "bench:none", "metric": "loss", "mode": "min",
           "space": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}}, "scheduler": scheduler(name),
           "searcher": "random", "storage": storage, "seed": args.seed}
    if name.endswith("-budget"):
        raw["num_samples"] = 10_000_000
        raw["time_budget_s"] = args.budget_r * R
    elif name == "sha-large":
        raw["num_samples"] = args.sha_large
    else:
        raw["num_samples"] = args.configs
    return raw


def timeline_store_class():
    """A MemoryStore that keeps only what this benchmark reads: segment launches and ends, and full-fidelity results."""
    from hpctune.enums import RecordKind
    from hpctune.backends.sim.memory_store import MemoryStore

    launch, end, result = RecordKind.LAUNCH, RecordKind.END, RecordKind.RESULT

    class TimelineStore(MemoryStore):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.launches: list[float] = []
            self.ends: list[float] = []
            self.full: list[tuple[float, float]] = []   # (time, loss) of results at max_t

        def record(self, kind, **fields):
            super().record(kind, **fields)
            if kind is launch:
                self.launches.append(fields["t"])
            elif kind is end:
                self.ends.append(fields["t"])
            elif kind is result and fields["row"].get("training_iteration") == MAX_T:
                self.full.append((fields["t"], fields["row"]["loss"]))

    return TimelineStore


def simulate_run(name: str, args, threshold: float) -> dict:
    import hpctune.backends.sim.simulation
    from hpctune.spec import spec_from_dict
    from hpctune.backends.sim.surrogates import FunctionSurrogate

    storage = tempfile.mkdtemp(prefix="hpctune-simutil-")  # the spec checks it; nothing is written there
    try:
        spec = spec_from_dict(raw_spec(name, args, storage), check_trainable=False)
        surrogate = FunctionSurrogate(curve, "loss", name=f"{HERE.stem}:curve")
        # the real simulate(), with a store that keeps the timeline instead of every record
        with mock.patch.object(hpctune.backends.sim.simulation, "MemoryStore", timeline_store_class()):
            started = time.perf_counter()
            sim = hpctune.backends.sim.simulation.simulate(spec, surrogate, args.workers)
            wall = time.perf_counter() - started
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    return measure(name, sim, args, threshold, wall)


def measure(name: str, sim, args, threshold: float, wall: float) -> dict:
    o, store, workers = sim.outcome, sim.store, args.workers
    starts, ends = np.asarray(store.launches), np.asarray(store.ends)
    if len(starts) != len(ends) or len(starts) != o.segments:
        raise SystemExit(f"{name}: {len(starts)} launches, {len(ends)} ends, {o.segments} segments")
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.argsort(times, kind="stable")
    times, busy = times[order], np.cumsum(deltas[order])
    last = np.r_[times[1:] != times[:-1], True]          # busy after every event of each moment
    moments, busy = times[last], busy[last]
    makespan = o.makespan_s
    spans = np.diff(np.r_[moments, makespan])
    cumulative = np.r_[0.0, np.cumsum(busy * spans)]      # busy rank-seconds up to each moment, and the end
    points = np.r_[moments, makespan]
    if not math.isclose(cumulative[-1], o.busy_rank_s, rel_tol=1e-9, abs_tol=1e-6):
        raise SystemExit(f"{name}: timeline gives {cumulative[-1]} busy rank-s, the simulator {o.busy_rank_s}")

    def busy_until(t: float) -> float:
        return float(np.interp(t, points, cumulative))

    below = np.flatnonzero(busy < 0.9 * workers)
    t90 = float(moments[below[0]]) if len(below) else makespan
    tail = makespan - t90
    tail_util = (busy_until(makespan) - busy_until(t90)) / (workers * tail) if tail > 0 else None
    below_s = float(spans[busy < 0.9 * workers].sum())   # all the time with fewer than 90% busy
    window = args.window * R
    series = []
    for k in range(int(math.ceil(makespan / window))):
        a, b = k * window, min((k + 1) * window, makespan)
        series.append(((busy_until(b) - busy_until(a)) / (b - a), b < (k + 1) * window))  # (mean, partial)
    full = sorted(store.full)
    good = [t for t, loss in full if loss <= threshold]
    trials = sim.controller.trials.values()
    levels = sim.controller.scheduler.rung_levels()
    reached = {level: sum(1 for t in trials if t.iteration >= level) for level in levels}
    best = min((loss for _, loss in full), default=None)
    return {"name": name, "workers": workers, "trials": len(sim.controller.trials), "results": o.results,
            "segments": o.segments, "events": o.events, "wall_s": wall, "makespan_s": makespan,
            "makespan_r": makespan / R, "utilization": o.utilization, "idle": 1 - o.utilization,
            "t90_r": t90 / R, "tail_r": tail / R, "tail_utilization": tail_util, "below90_r": below_s / R,
            "idle_in_tail_share": ((workers * tail - (busy_until(makespan) - busy_until(t90)))
                                   / (workers * makespan - o.busy_rank_s)) if o.utilization < 1 else None,
            "series": series, "first_full_r": full[0][0] / R if full else None,
            "first_good_r": good[0] / R if good else None, "completed_max_t": len(full),
            "best_full_loss": best, "reached": {str(k): v for k, v in reached.items()}, "status": o.status}


def fmt(value, spec=".2f", none="–"):
    return none if value is None else format(value, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--configs", type=int, default=4096, help="configs of the finite asha, sha and hyperband runs")
    parser.add_argument("--sha-large", type=int, default=256_000, help="configs of sha-large")
    parser.add_argument("--budget-r", type=float, default=2.0, help="time budget of the *-budget runs, in R")
    parser.add_argument("--window", type=float, default=0.25, help="busy-workers series: window, in R")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", choices=RUNS, help="these runs only")
    parser.add_argument("--out", metavar="JSON", help="save every measurement here")
    args = parser.parse_args(argv)

    threshold = good_threshold()
    rows = []
    for name in args.only or RUNS:
        rows.append(simulate_run(name, args, threshold))
        r = rows[-1]
        print(f"{name}: {r['trials']} trials, {r['results']} results, {r['events']} events in {r['wall_s']:.1f} s; "
              f"makespan {r['makespan_r']:.2f} R, utilisation {r['utilization']:.1%}", file=sys.stderr, flush=True)

    command = "python scripts/bench/" + HERE.name + (" " + " ".join(sys.argv[1:] if argv is None else argv)).rstrip()
    print(f"## Utilisation on {args.workers:,} virtual workers ({datetime.date.today()}, {platform.node()}, "
          f"{os.cpu_count()} cores, Python {platform.python_version()})\n")
    print(f"`{command}`\n")
    print(f"eta {ETA}, rungs 1/4/16/64/256 iterations (R/256 .. R), iteration 0.5..1.5 s by config, R = {R:g} s; "
          f"good = full-fidelity loss <= {threshold:.4f} (best {GOOD_QUANTILE:.0%} of the space).\n")
    print("| run | trials | results | makespan (R) | utilisation | idle | t<90% (R) | tail (R) | util. in tail "
          "| all time <90% (R) | first at R (R) | first good (R) | trials reaching 1 / 4 / 16 / 64 / 256 | sim wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        reached = " / ".join(f"{v:,}" for v in r["reached"].values())
        print(f"| {r['name']} | {r['trials']:,} | {r['results']:,} | {r['makespan_r']:.2f} | {r['utilization']:.1%} | "
              f"{r['idle']:.1%} | {r['t90_r']:.3f} | {r['tail_r']:.2f} | {fmt(r['tail_utilization'], '.1%')} | "
              f"{r['below90_r']:.2f} | "
              f"{fmt(r['first_full_r'])} | {fmt(r['first_good_r'])} | {reached} | {r['wall_s']:.1f} |")
    width = max(len(r["series"]) for r in rows)
    print(f"\nBusy workers (of {args.workers:,}), mean over each {args.window:g} R of virtual time:\n")
    print("| from (R) | " + " | ".join(r["name"] for r in rows) + " |")
    print("|---:|" + "---:|" * len(rows))
    for k in range(width):
        cells = [f"{r['series'][k][0]:.0f}{'*' if r['series'][k][1] else ''}" if k < len(r["series"]) else ""
                 for r in rows]
        print(f"| {k * args.window:.2f} | " + " | ".join(cells) + " |")
    print("\n\\* the run ended inside this window: the mean over its part of the window.")
    if args.out:
        Path(args.out).write_text(json.dumps({"date": str(datetime.date.today()), "cores": os.cpu_count(),
                                              "python": platform.python_version(), "command": command,
                                              "R_s": R, "good_threshold": threshold, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
