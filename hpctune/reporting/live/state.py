"""What a live view of an experiment shows, taken from the coordinator or read from the folder.

:class:`LiveState` is one moment of an experiment: trials by state, the best so far with its
config, the running trials (iteration, latest metric, ranks, GPUs, time), rung occupancy, busy
worker ranks and the Slurm allocation's time left. The coordinator's console builds one from its
controller (:func:`state_of_controller`, nothing read back); ``hpctune status --watch`` builds one
from the experiment folder (:func:`state_of_folder`: the snapshot and the journal after it, no
history, nothing locked). :mod:`hpctune.reporting.live.render` draws it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...enums import RecordKind, TrialState

__all__ = ["LiveState", "RunningTrial", "planned_trials", "state_of_controller", "state_of_folder"]

STATES = tuple(state.name for state in TrialState)


@dataclass
class RunningTrial:
    """One row of the running-trials table."""

    trial_id: int
    iteration: int
    value: float | None      # the latest value of the metric (None: not reported yet)
    ranks: str               # "1", or "3,4" for a trial that spans ranks
    gpus: str                # the devices its results name ("" when none were bound)
    seconds: float | None    # since its segment started


@dataclass
class LiveState:
    """An experiment at one moment, as the live view shows it."""

    name: str
    status: str
    metric: str
    mode: str
    elapsed_s: float | None
    counts: dict[str, int]
    total: int | None                   # trials the searcher will make (None: not known)
    num_results: int
    best: tuple[float, int, int] | None = None   # (value, trial id, iteration)
    best_config: dict = field(default_factory=dict)
    running: list[RunningTrial] = field(default_factory=list)
    rungs: str = ""                     # "rungs 1:27 3:9 9:3", or the scheduler's own line (PBT: exploits)
    busy_ranks: int | None = None
    worker_ranks: int | None = None
    time_left_s: float | None = None    # in this Slurm allocation

    @property
    def finished(self) -> int:
        return self.counts.get("TERMINATED", 0) + self.counts.get("ERROR", 0)


def _value_of(score: float, mode: str) -> float:
    """A stored score (larger is better) back as the metric's value."""
    return -score if mode == "min" else score


def _running_row(trial_id: int, iteration: int, last: dict, metric: str, ranks, started: float | None,
                 now: float) -> RunningTrial:
    value = last.get(metric)
    value = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    return RunningTrial(trial_id, int(iteration), value, ",".join(map(str, ranks)) if ranks else "",
                        str(last.get("gpus") or ""), None if started is None else max(now - started, 0.0))


def state_of_controller(controller, started_at: float, time_left_s: float | None = None,
                        now: float | None = None, status: str = "running") -> LiveState:
    """The coordinator's own view: its trials, counts and placements (nothing read back).

    Args:
        controller: the running :class:`~hpctune.controller.core.Controller`.
        started_at: ``time.time()`` when this run started (the elapsed time counts from it).
        time_left_s: seconds left in the Slurm allocation, if there is one.
    """
    now = time.time() if now is None else now
    spec = controller.spec
    best, best_config = None, {}
    if controller.best is not None:
        score, trial_id = controller.best
        trial = controller.trials[trial_id]
        best = (_value_of(score, spec.mode), trial_id, trial.best_iteration)
        best_config = trial.config
    running = []
    for trial_id in controller.running:
        trial = controller.trials[trial_id]
        ranks, started = controller.placements.get(trial_id, ((), None))
        running.append(_running_row(trial_id, trial.iteration, trial.last_result, spec.metric, ranks, started, now))
    per_trial = spec.resources.ranks_per_trial
    busy = controller.num_running * per_trial
    return LiveState(name=spec.name, status=status, metric=spec.metric, mode=spec.mode,
                     elapsed_s=now - started_at, counts={s.name: n for s, n in controller.counts.items()},
                     total=controller.searcher.total_trials(), num_results=controller.store.result_count,
                     best=best, best_config=best_config, running=running,
                     rungs=controller.scheduler.describe_progress(), busy_ranks=busy,
                     worker_ranks=busy + controller.free_ranks, time_left_s=time_left_s)


def state_of_folder(folder: str | Path, total: int | None = None, now: float | None = None) -> LiveState:
    """The experiment as its folder holds it now: the snapshot and the journal after it (no history).

    Safe while it runs; blocks nothing (see :func:`hpctune.store.load_experiment`). ``total``: the
    trials the search makes in all (:func:`planned_trials`, worked out once by the caller).
    """
    from ...schedulers import build_scheduler
    from ...schedulers._rungs import format_level
    from ...slurm.allocation import allocation_time_left
    from ...store import load_experiment

    now = time.time() if now is None else now
    view = load_experiment(folder, history=False)
    spec, state = view.spec, view.controller_state or {}
    counts = {name: 0 for name in STATES}
    best = None
    for trial in view.trials.values():
        counts[trial["state"]] = counts.get(trial["state"], 0) + 1
        score = trial["best_score"]
        if math.isfinite(score) and (best is None or (score, -trial["trial_id"]) > (best[0], -best[1])):
            best = (score, trial["trial_id"])
    segments = view.running_segments  # {"ranks": "3,4", "start": t} per running trial
    running = [_running_row(tid, trial["iteration"], trial["last_result"] or {}, spec["metric"],
                            _ranks_of(segments[tid]) if tid in segments else (),
                            segments.get(tid, {}).get("start"), now)
               for tid, trial in view.trials.items() if trial["state"] == "RUNNING"]
    scheduler = build_scheduler(spec["scheduler"])
    levels = scheduler.rung_levels()
    rungs = ""
    if levels:
        time_attr = getattr(scheduler, "time_attr", "training_iteration")
        reached = [_number((trial["last_result"] or {}).get(time_attr)) for trial in view.trials.values()]
        rungs = "rungs " + " ".join(f"{format_level(level)}:{sum(r >= level for r in reached)}" for level in levels)
    per_trial = spec.get("resources", {}).get("ranks_per_trial", 1)
    busy = sum(len(_ranks_of(run)) for run in segments.values()) if view.status == "running" else 0
    workers = None
    if view.status == "running" and state:
        joined = sum(record.get("n", 0) for record in view.records_after_snapshot
                     if record.get("k") == RecordKind.READY.key)
        workers = state.get("free_ranks", 0) + len(state.get("running", ())) * per_trial + joined
    started = state.get("started_at")
    trial = view.trials.get(best[1]) if best else None
    return LiveState(
        name=spec["name"], status=view.status, metric=spec["metric"], mode=spec["mode"],
        elapsed_s=None if started is None or view.status != "running" else now - started,
        counts=counts, total=total, num_results=view.result_count,
        best=None if best is None else (_value_of(best[0], spec["mode"]), best[1], trial["best_iteration"]),
        best_config=trial["config"] if trial else {}, running=sorted(running, key=lambda r: r.trial_id),
        rungs=rungs, busy_ranks=busy if workers is not None else None, worker_ranks=workers,
        time_left_s=allocation_time_left(view.folder, now) if view.status == "running" else None)


def _ranks_of(run: dict) -> list[str]:
    """A running segment's ranks (``"3,4"``; a snapshot older than multi-rank trials has ``rank`` only)."""
    return str(run.get("ranks") or run["rank"]).split(",")


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else -math.inf


def planned_trials(spec: dict) -> int | None:
    """How many trials a stored spec's searcher makes in all, if it says (as the console counts them)."""
    from ...errors import HpctuneError
    from ...searchers import build_searcher
    from ...space import parse_space

    try:
        searcher = build_searcher(spec["searcher"])
        searcher.setup(parse_space(spec["space"]), spec["metric"], spec["mode"], spec["num_samples"], spec.get("seed"))
        return searcher.total_trials()
    except (HpctuneError, ImportError, KeyError):  # an optional extra missing here (optuna): only for show
        return None
