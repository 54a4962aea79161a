"""Child processes of ``scripts/bench/scale.py``; each prints one JSON line on stdout.

``scale.py`` starts them with ``PYTHONPATH=<source tree>`` first and a temporary
working folder (never a source tree: ``python -m`` puts the working folder
first on ``sys.path``, and spawned worker ranks start that way), so that this
process, its worker ranks and their trial processes all import the hpctune of
the tree under test. Both modes report ``hpctune.__file__`` to prove it.

- ``run STORAGE NAME TRIALS REPORTS``: one timed ``hpctune.run`` on 2 spawned
  worker ranks (this process is the coordinator): wall seconds, RSS before and
  peak after, CPU seconds around the call, and the store's snapshot method(s)
  timed by wrapping them.
- ``analyze FOLDER TRIALS REPORTS``: ``hpctune.Analysis(FOLDER)`` timed with and
  without the import, then the checks and rates ``scale.py`` reports.

Only public surfaces are used (``hpctune.run``, ``hpctune.Analysis``), plus the
optional look-up of ``hpctune.store.experiment.ExperimentStore``.
"""
from __future__ import annotations

import time

T_START = time.time()  # the first thing this process does, before importing hpctune

import functools  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

WORKERS = 2
SNAPSHOT_METHODS = ("write_snapshot", "write_head", "snapshot")


def wrap_snapshots() -> dict:
    """Time every call of the store's snapshot method(s); returns the live statistics.

    Nested calls (one wrapped method calling another) count once, as the outer call.
    A store without any of :data:`SNAPSHOT_METHODS` gives ``methods == []`` (reported n/a).
    """
    stats = {"methods": [], "count": 0, "total_s": 0.0, "max_s": 0.0}
    try:
        from hpctune.store.experiment import ExperimentStore
    except Exception as exc:  # a reorganised store: measure everything else
        stats["error"] = f"{type(exc).__name__}: {exc}"
        return stats
    depth = threading.local()

    def timed(method):
        @functools.wraps(method)
        def wrapper(*args, **kwargs):
            outer = getattr(depth, "n", 0) == 0
            depth.n = getattr(depth, "n", 0) + 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                depth.n -= 1
                if outer:
                    took = time.perf_counter() - started
                    stats["count"] += 1
                    stats["total_s"] += took
                    stats["max_s"] = max(stats["max_s"], took)
        return wrapper

    for name in SNAPSHOT_METHODS:
        if inspect.isfunction(inspect.getattr_static(ExperimentStore, name, None)):  # plain methods only
            setattr(ExperimentStore, name, timed(getattr(ExperimentStore, name)))
            stats["methods"].append(name)
    return stats


def _rss_mib() -> float:
    """This process's resident set size now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(storage: str, name: str, trials: str, reports: str) -> dict:
    import hpctune
    from _scale_trainable import train

    snapshots = wrap_snapshots()
    rss_before = _rss_mib()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    hpctune.run(train, space={"x": hpctune.uniform(0, 1)}, metric="loss", mode="min", num_samples=int(trials),
                workers=WORKERS, storage=storage, name=name, verbose=0)
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    return {"hpctune_file": hpctune.__file__, "t_start": T_START, "wall_s": wall, "cpu_s": cpu,
            "cpu_us_per_result": 1e6 * cpu / (int(trials) * int(reports)), "rss_before_mib": rss_before,
            "rss_peak_mib": usage1.ru_maxrss / 1024, "snapshots": snapshots}


def _rate(timestamps, first: bool) -> float | None:
    """Results per second over the first (or last) 10% of ``timestamps`` (sorted)."""
    k = max(2, len(timestamps) // 10)
    if len(timestamps) < k:
        return None
    window = timestamps[:k] if first else timestamps[-k:]
    span = float(window[-1] - window[0])
    return (k - 1) / span if span > 0 else None


def analyze(folder: str, trials: str, reports: str) -> dict:
    t0 = time.perf_counter()
    import hpctune
    t1 = time.perf_counter()
    analysis = hpctune.Analysis(folder)
    t2 = time.perf_counter()
    results, table = analysis.results, analysis.trials
    n_trials, n_reports = int(trials), int(reports)
    terminated = int((table["state"] == "TERMINATED").sum()) if len(table) else 0
    exact = False  # every trial has training_iteration 1..N exactly once
    if len(results):
        per_trial = results.groupby("trial_id").size()
        exact = bool(not results.duplicated(["trial_id", "training_iteration"]).any()
                     and results["training_iteration"].between(1, n_reports).all()
                     and len(per_trial) == n_trials and (per_trial == n_reports).all())
    timestamps = results["timestamp"].sort_values().to_numpy(float) if len(results) else []
    first, last = _rate(timestamps, True), _rate(timestamps, False)
    return {"hpctune_file": hpctune.__file__, "load_s": t2 - t0, "load_noimport_s": t2 - t1,
            "rows": len(results), "trials": len(table), "terminated": terminated, "iterations_exact": exact,
            "verified": exact and len(results) == n_trials * n_reports and terminated == len(table) == n_trials,
            "rate_first": first, "rate_last": last, "rate_ratio": last / first if first and last else None,
            "min_started": float(results["started"].min()) if "started" in results else None}


if __name__ == "__main__":
    mode, *arguments = sys.argv[1:]
    print(json.dumps({"run": run, "analyze": analyze}[mode](*arguments)), flush=True)
