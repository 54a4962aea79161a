"""``hpctune plan``: how long an experiment takes, and what it costs, on each allocation size.

A pilot experiment (a small real run) measured the trials' iteration times and start-ups; the
simulator (:func:`hpctune.backends.sim.simulation.simulate`) replays them through the real controller, scheduler
and searcher on ``W`` virtual workers, for several seeds. Each allocation's predicted wall time is
the pilot's own start-up (its coordinator's start to its first launch) plus the simulated makespan;
rank-hours count the ``W`` workers and rank 0, the coordinator. The recommendation is the cheapest
allocation whose worst seed meets the deadline (see docs/plan.md for what the model ignores).
"""
from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import SpecError
from ...spec import ExperimentSpec

__all__ = ["Allocation", "Plan", "plan_allocations", "render_plan", "plan_to_json", "hms", "amount"]


@dataclass
class Allocation:
    """One allocation size: ``workers`` worker ranks (plus rank 0) on ``nodes`` nodes.

    ``excluded`` says why it was not simulated (then the other lists are empty and the numbers None);
    the hours, the cost and ``meets_deadline`` (None without a deadline) come from the seeds' walls:
    hours and cost from the median, the deadline from the worst seed.
    """

    workers: int
    nodes: int
    excluded: str | None = None
    wall_s: list[float] = field(default_factory=list)
    best_values: list[float | None] = field(default_factory=list)
    utilizations: list[float] = field(default_factory=list)
    wall_s_median: float | None = None
    wall_s_min: float | None = None
    wall_s_max: float | None = None
    rank_hours: float | None = None
    gpu_hours: float | None = None
    cost: float | None = None
    best_value_median: float | None = None
    utilization_median: float | None = None
    meets_deadline: bool | None = None

    @property
    def charged_hours(self) -> float | None:
        """GPU-hours if the spec asks GPUs, else rank-hours."""
        return self.gpu_hours if self.gpu_hours is not None else self.rank_hours


@dataclass
class Plan:
    """Every allocation planned, what they were predicted from, and the recommendation.

    ``recommended``: the workers of the cheapest allocation meeting the deadline (any, without one),
    None if none does; ``fastest``: the workers of the one with the shortest worst-seed wall time.
    """

    spec: ExperimentSpec
    pilot: str
    pilot_trials: int
    pilot_results: int
    pilot_workers: int
    start_up_s: float
    seeds: list[int]
    ranks_per_node: int
    ranks_per_node_source: str
    deadline_s: float | None
    price: float | None
    allocations: list[Allocation]
    recommended: int | None
    fastest: int | None

    @property
    def hours_name(self) -> str:
        return "GPU-hours" if self.spec.resources.gpus_per_rank > 0 else "rank-hours"


def plan_allocations(spec: ExperimentSpec, pilot_folder: str | os.PathLike, workers_list: Sequence[int] | None,
                     seeds: int = 5, deadline_s: float | None = None, price: float | None = None,
                     nodes_max: int | None = None, ranks_per_node: int | None = None,
                     progress: Callable[[str], None] | None = None) -> Plan:
    """Simulate ``spec`` on each worker count of ``workers_list`` with the pilot's measured times.

    Args:
        pilot_folder: the pilot experiment (its curves and times are replayed; a config it did not
            run gets the nearest one it did).
        workers_list: worker-rank counts (default: the pilot's worker count times 1, 2, 4, 8).
        seeds: simulations per count, with seeds ``spec.seed``, ``spec.seed + 1``, ...
        deadline_s: the recommendation's worst seed must finish within it.
        price: per GPU-hour (per rank-hour when the spec asks no GPUs).
        nodes_max: counts needing more nodes are excluded, not simulated.
        ranks_per_node: default: the most ranks the pilot had on one host (plus its coordinator if
            it ran on one host; the pilot's ranks plus one if it recorded no host).
        progress: called with one line per allocation simulated.

    Raises:
        SpecError: the pilot is no experiment or has no result, or does not report the spec's metric.
    """
    import numpy as np

    from ...reporting.analysis import Analysis
    from ...trial import RESULT_FIELDS
    from .simulation import simulate
    from ...store import is_experiment
    from .surrogates import RecordedSurrogate

    folder = Path(pilot_folder)
    if not is_experiment(folder):
        raise SpecError("pilot", f"{folder} is not an hpctune experiment (no experiment.h5)")
    analysis = Analysis(folder)
    results, segments = analysis.results, analysis.segments
    if results.empty or segments.empty:
        raise SpecError("pilot", f"{folder} holds no result to replay")
    reported = [c for c in results.columns if c not in RESULT_FIELDS and results[c].dtype.kind in "fiub"]
    if spec.metric not in reported:
        raise SpecError("metric", f"{spec.metric!r} is not reported in the pilot {folder} "
                                  f"(it reports {', '.join(map(repr, reported)) or 'no number'})")
    if not np.isfinite(results[spec.metric].to_numpy(dtype=float)).any():  # replayed, no trial would have a value
        raise SpecError("pilot", f"{folder} reported {spec.metric!r} {len(results)} time(s), never as a finite number "
                                 f"(NaN or infinite each time): nothing to rank its replayed trials by")
    started_at = analysis._view.controller_state.get("started_at")
    start_up = max(float(segments["start"].min()) - float(started_at), 0.0) if started_at is not None else 0.0
    pilot_workers = int(segments["rank"].nunique())
    source = "given"
    if ranks_per_node is None:
        ranks_per_node, source = _ranks_per_node(results, pilot_workers)
    surrogate = RecordedSurrogate(folder, spec.space)
    seed_list = [spec.seed + k for k in range(seeds)]
    counts = sorted(set(workers_list or [pilot_workers * k for k in (1, 2, 4, 8)]))
    gpus = spec.resources.gpus_per_rank
    allocations = []
    for workers in counts:
        row = Allocation(workers, math.ceil((workers + 1) / ranks_per_node))
        allocations.append(row)
        if nodes_max is not None and row.nodes > nodes_max:
            row.excluded = f"needs {row.nodes} nodes > --nodes-max {nodes_max}"
            continue
        if workers < spec.resources.ranks_per_trial:
            row.excluded = f"fewer workers than a trial's ranks ({spec.resources.ranks_per_trial})"
            continue
        began = time.perf_counter()
        for seed in seed_list:
            sim = simulate(spec, surrogate, workers, seed=seed)
            row.wall_s.append(start_up + sim.outcome.makespan_s)
            best = sim.controller.best
            row.best_values.append(None if best is None else (best[0] if spec.mode == "max" else -best[0]))
            row.utilizations.append(sim.outcome.utilization)
        _summarize(row, gpus, price, deadline_s)
        if progress is not None:
            progress(f"{workers} workers: {hms(row.wall_s_median)} median over {seeds} seeds "
                     f"(simulated in {time.perf_counter() - began:.1f} s)")
    simulated = [a for a in allocations if a.excluded is None]
    meeting = [a for a in simulated if a.meets_deadline is not False]
    cheapest = min(meeting, key=lambda a: (a.cost if price is not None else a.charged_hours, a.workers), default=None)
    fastest = min(simulated, key=lambda a: (a.wall_s_max, a.workers), default=None)
    return Plan(spec, str(folder), len(analysis.trials), len(results), pilot_workers, start_up, seed_list,
                ranks_per_node, source, deadline_s, price, allocations,
                cheapest.workers if cheapest else None, fastest.workers if fastest else None)


def _ranks_per_node(results, pilot_workers: int) -> tuple[int, str]:
    """The most worker ranks the pilot had on one host, plus the coordinator if there was one host."""
    hosts = results[["hostname", "rank"]].dropna() if "hostname" in results.columns else results.iloc[:0]
    hosts = hosts[hosts["hostname"].astype(str) != ""] if not hosts.empty else hosts
    if hosts.empty:  # a simulated pilot
        return pilot_workers + 1, "the pilot's ranks and its coordinator: it recorded no host"
    per_host = hosts.groupby("hostname")["rank"].nunique()
    if len(per_host) == 1:
        return int(per_host.iloc[0]) + 1, "the pilot's, on one host, coordinator included"
    return int(per_host.max()), f"the most worker ranks the pilot had on one of its {len(per_host)} hosts"


def _summarize(row: Allocation, gpus: int, price: float | None, deadline_s: float | None) -> None:
    row.wall_s_median = statistics.median(row.wall_s)
    row.wall_s_min, row.wall_s_max = min(row.wall_s), max(row.wall_s)
    row.rank_hours = (row.workers + 1) * row.wall_s_median / 3600
    row.gpu_hours = row.workers * gpus * row.wall_s_median / 3600 if gpus > 0 else None
    row.cost = price * row.charged_hours if price is not None else None
    values = [v for v in row.best_values if v is not None]
    row.best_value_median = statistics.median(values) if values else None
    row.utilization_median = statistics.median(row.utilizations)
    row.meets_deadline = None if deadline_s is None else row.wall_s_max <= deadline_s


def hms(seconds: float) -> str:
    """``H:MM:SS``, to the nearest second."""
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def amount(value: float) -> str:
    """Hours or a cost as the table shows them: three significant digits below 1, else two decimals."""
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.2f}"


def render_plan(plan: Plan) -> str:
    """The console form: a header, one table row per allocation, and the recommendation."""
    spec, hours = plan.spec, plan.hours_name
    seeds = f"{plan.seeds[0]}..{plan.seeds[-1]}" if len(plan.seeds) > 1 else str(plan.seeds[0])
    lines = [f"plan for {spec.name} ({spec.num_samples} samples, scheduler {spec.scheduler['type']}) from the pilot "
             f"{plan.pilot} ({plan.pilot_trials} trials, {plan.pilot_results} results on {plan.pilot_workers} "
             f"workers), simulated with {len(plan.seeds)} seeds ({seeds})",
             f"start-up {plan.start_up_s:.2f} s (the pilot's coordinator start to its first launch) added to each; "
             f"{plan.ranks_per_node} ranks per node ({plan.ranks_per_node_source}); "
             + (f"GPU-hours: {spec.resources.gpus_per_rank} per worker rank"
                if hours == "GPU-hours" else "rank-hours stand in for GPU-hours (the spec asks no GPUs)")
             + "; rank-hours count rank 0, the coordinator"]
    terms = []
    if plan.deadline_s is not None:
        terms.append(f"deadline {hms(plan.deadline_s)} (worst seed)")
    if plan.price is not None:
        terms.append(f"price {plan.price:g} per {hours[:-1]}")
    if terms:
        lines.append(", ".join(terms))
    head = (f"{'workers':>7}  {'nodes':>5}  {'wall median [min-max]':<27}  {hours:>10}"
            + (f"  {'cost':>10}" if plan.price is not None else "") + f"  {'best ' + spec.metric:>14}  {'busy':>5}"
            + ("  deadline" if plan.deadline_s is not None else ""))
    lines += ["", head]
    for a in plan.allocations:
        if a.excluded is not None:
            lines.append(f"{a.workers:>7}  {a.nodes:>5}  excluded: {a.excluded}")
            continue
        wall = f"{hms(a.wall_s_median)} [{hms(a.wall_s_min)}-{hms(a.wall_s_max)}]"
        best = "-" if a.best_value_median is None else f"{a.best_value_median:.6g}"
        lines.append(f"{a.workers:>7}  {a.nodes:>5}  {wall:<27}  {amount(a.charged_hours):>10}"
                     + (f"  {amount(a.cost):>10}" if plan.price is not None else "")
                     + f"  {best:>14}  {a.utilization_median:>5.0%}"
                     + (f"  {'yes' if a.meets_deadline else 'no':>8}" if plan.deadline_s is not None else ""))
    lines += ["", _verdict(plan)]
    return "\n".join(lines)


def _verdict(plan: Plan) -> str:
    rows = {a.workers: a for a in plan.allocations}
    if plan.recommended is not None:
        a = rows[plan.recommended]
        cost = f", cost {amount(a.cost)}" if a.cost is not None else ""
        why = "the cheapest that meets the deadline" if plan.deadline_s is not None else "the cheapest"
        return (f"recommended: {a.workers} workers on {_nodes(a.nodes)}: {hms(a.wall_s_median)} median, "
                f"{hms(a.wall_s_max)} worst seed, {amount(a.charged_hours)} {plan.hours_name}{cost} ({why})")
    if plan.fastest is None:
        return "recommended: none: no allocation was simulated"
    a = rows[plan.fastest]
    return (f"no allocation meets the deadline of {hms(plan.deadline_s)}: the fastest, {a.workers} workers on "
            f"{_nodes(a.nodes)}, takes {hms(a.wall_s_max)} (worst seed; {hms(a.wall_s_median)} median)")


def plan_to_json(plan: Plan) -> dict:
    """The plan as one JSON-able object (the console form's numbers, unrounded)."""
    keys = ("workers", "nodes", "excluded", "wall_s", "wall_s_median", "wall_s_min", "wall_s_max", "rank_hours",
            "gpu_hours", "cost", "best_values", "best_value_median", "utilization_median", "meets_deadline")
    return {"spec": plan.spec.name, "pilot": plan.pilot, "pilot_trials": plan.pilot_trials,
            "pilot_results": plan.pilot_results, "pilot_workers": plan.pilot_workers, "metric": plan.spec.metric,
            "mode": plan.spec.mode, "start_up_s": plan.start_up_s, "seeds": plan.seeds,
            "ranks_per_node": plan.ranks_per_node, "hours": plan.hours_name, "deadline_s": plan.deadline_s,
            "price": plan.price, "recommended": plan.recommended, "fastest": plan.fastest,
            "allocations": [{k: getattr(a, k) for k in keys} for a in plan.allocations]}


def _nodes(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"
