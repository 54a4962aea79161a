"""What a simulated trial reports, and how long it takes: the ``sim`` backend's trainable.

Two forms (:func:`load_surrogate` takes either from the command line):

- :class:`FunctionSurrogate`: a Python function ``(config, iteration) -> (metrics, seconds)``,
  ``metrics`` a dict of reported values or one number (the experiment's metric), ``seconds``
  the virtual time iteration ``iteration`` takes. Attributes of the function, if set, say more:
  ``start_up_s`` (from launch to the first iteration's start, default 0), ``end_delay_s``
  (from a PAUSE or STOP to the rank being free, default 0), ``warm_up_s`` (once per rank, added to
  the first run on it, default 0), ``max_iterations`` (the trainable's own end: it completes there).
- :class:`RecordedSurrogate`: the learning curves and iteration times of an experiment already
  run (your pilot): a trial gets the curve of the recorded trial with the same id and config,
  else of the nearest recorded config (see :meth:`RecordedSurrogate.order`), iteration by
  iteration; segment start-ups, end delays, each rank's join time and warm-up as measured there.

A surrogate that raises, or reports a metric that is no number, fails that trial as a trainable
would (:class:`hpctune.backends.sim.cluster.VirtualCluster`); one whose return is not ``(metrics, seconds)``
is refused (:class:`~hpctune.errors.SpecError`).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import SpecError
from ...trial import RESULT_FIELDS
from ...space import Choice, Domain, LogUniform, QLogUniform, RandInt, flatten

__all__ = ["Surrogate", "FunctionSurrogate", "RecordedSurrogate", "load_surrogate"]


class Surrogate:
    """What the ``sim`` backend asks of a simulated trainable.

    Attributes:
        max_iterations: the trainable's own last iteration (a trial completes there), or None
            (trials end by the scheduler or the spec's ``stop``).
    """

    max_iterations: int | None = None

    def step(self, trial_id: int, config: dict, iteration: int) -> tuple[dict, float]:
        """``(metrics, seconds)`` of trial ``trial_id``'s ``iteration`` (1, 2, ...) under ``config``."""
        raise NotImplementedError

    def start_up_s(self, trial_id: int, config: dict, segment: int) -> float:
        """Seconds from a launch to the start of its first iteration (``segment``: 0 for the trial's first)."""
        return 0.0

    def end_delay_s(self, trial_id: int, config: dict, segment: int) -> float:
        """Seconds from a PAUSE or STOP to the rank being free for another trial."""
        return 0.0

    def join_s(self, rank: int) -> float:
        """Seconds from the experiment's start to worker ``rank`` (1, 2, ...) taking work."""
        return 0.0

    def warm_up_s(self, rank: int) -> float:
        """Seconds the first run on ``rank`` takes beyond its start-up (imports, data loading: once a rank)."""
        return 0.0

    def describe(self) -> str:
        raise NotImplementedError


class FunctionSurrogate(Surrogate):
    """A function ``(config, iteration) -> (metrics, seconds)`` (see the module docstring).

    Args:
        fn: the function; its attributes ``start_up_s``, ``end_delay_s`` and ``max_iterations``
            are the defaults of the arguments of the same names.
        metric: the name a plain number stands for.
        name: how :meth:`describe` names it (``module:function``).
    """

    def __init__(self, fn: Callable[[dict, int], tuple[Any, float]], metric: str, name: str | None = None,
                 start_up_s: float | None = None, end_delay_s: float | None = None,
                 max_iterations: int | None = None):
        self.fn = fn
        self.metric = metric
        self.name = name or getattr(fn, "__qualname__", repr(fn))
        self._start_up = _seconds("start_up_s", getattr(fn, "start_up_s", 0.0) if start_up_s is None else start_up_s)
        self._end_delay = _seconds("end_delay_s", getattr(fn, "end_delay_s", 0.0) if end_delay_s is None else end_delay_s)
        self.max_iterations = max_iterations if max_iterations is not None else getattr(fn, "max_iterations", None)
        self._warm_up = _seconds("warm_up_s", getattr(fn, "warm_up_s", 0.0))

    def step(self, trial_id: int, config: dict, iteration: int) -> tuple[dict, float]:
        out = self.fn(config, iteration)
        if not (isinstance(out, tuple) and len(out) == 2):
            raise SpecError("surrogate", f"{self.name} must return (metrics, seconds), returned {out!r} "
                                         f"(trial {trial_id}, iteration {iteration})")
        metrics, seconds = out
        if not isinstance(metrics, Mapping):
            metrics = {self.metric: metrics}
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise SpecError("surrogate", f"{self.name} returned {seconds!r} seconds for trial {trial_id}'s iteration "
                                         f"{iteration}; expected a number >= 0")
        return dict(metrics), float(seconds)

    def start_up_s(self, trial_id: int, config: dict, segment: int) -> float:
        return self._start_up

    def end_delay_s(self, trial_id: int, config: dict, segment: int) -> float:
        return self._end_delay

    def warm_up_s(self, rank: int) -> float:
        return self._warm_up

    def describe(self) -> str:
        return self.name


class _Recorded:
    """One recorded trial: its metrics and seconds per iteration, and its segments' start-ups."""

    __slots__ = ("metrics", "seconds", "start_ups", "end_delays", "last")

    def __init__(self):
        self.metrics: dict[int, dict] = {}
        self.seconds: dict[int, float] = {}
        self.start_ups: list[float] = []
        self.end_delays: list[float] = []
        self.last = 0

    def median_seconds(self) -> float:
        return float(np.median(list(self.seconds.values())))


class RecordedSurrogate(Surrogate):
    """The curves and times of an experiment already run (see the module docstring).

    Args:
        folder: the recorded experiment (any hpctune experiment folder, finished or not).
        space: the space of the experiment to simulate (configs are compared in it); default the
            recorded one.

    Raises:
        SpecError: ``folder`` is not an experiment, or holds no result.
    """

    def __init__(self, folder: str | os.PathLike, space: Mapping | None = None):
        from ...reporting.analysis import Analysis
        from ...space import parse_space
        from ...store import is_experiment

        self.folder = Path(folder)
        if not is_experiment(self.folder):
            raise SpecError("pilot", f"{self.folder} is not an hpctune experiment (no experiment.h5)")
        analysis = Analysis(self.folder)
        results, segments = analysis.results, analysis.segments
        if results.empty:
            raise SpecError("pilot", f"{self.folder} holds no result to replay")
        self.metric = analysis.metric
        self.space = space if space is not None else parse_space(analysis.spec["space"])
        self.trials: dict[int, _Recorded] = {}
        self.configs: dict[int, dict] = {int(t["trial_id"]): flatten(t["config"] or {})
                                         for t in analysis._view.trials.values()}
        self._read_results(results)
        self.start_up_median, self.end_delay_median = self._read_segments(results, segments)
        self.joins = self._read_joins(segments)
        completed = segments[segments["how"] == "COMPLETED"]["trial_id"] if not segments.empty else []
        ends = [self.trials[int(tid)].last for tid in completed if int(tid) in self.trials]
        self.max_iterations = max(ends) if ends else None
        self._ids = sorted(self.trials)
        self._matrix, self._categories, self._keys = self._positions([self.configs.get(t, {}) for t in self._ids])
        self._order: dict[int, tuple[dict, tuple[int, ...]]] = {}

    # -- reading the recorded experiment -------------------------------------------------
    def _read_results(self, results) -> None:
        values = [c for c in results.columns if c not in RESULT_FIELDS and results[c].dtype.kind in "fiub"]
        columns = {c: results[c].to_numpy() for c in values}
        ids, its = results["trial_id"].to_numpy(), results["training_iteration"].to_numpy()
        per_iter = results["time_this_iter_s"].to_numpy(dtype=float)
        for i in range(len(results)):
            trial = self.trials.setdefault(int(ids[i]), _Recorded())
            it = int(its[i])
            trial.metrics[it] = {c: _plain(columns[c][i]) for c in values if not _missing(columns[c][i])}
            trial.seconds[it] = max(float(per_iter[i]), 0.0)  # as measured; within a run, see _read_segments
            trial.last = max(trial.last, it)

    def _read_segments(self, results, segments) -> tuple[float, float]:
        """Each run's start-up (launch to its first report, less that iteration), its iterations'
        times after the first (between two reports, as the coordinator saw them: its own time per
        message included) and its end delay (last report to the run's end), per trial in order;
        returns the medians of start-ups and end delays."""
        if segments.empty:
            return 0.0, 0.0
        reports: dict[int, list[tuple[float, int, float]]] = {}
        for t, i, s, d in zip(results["trial_id"], results["training_iteration"], results["timestamp"],
                              results["time_this_iter_s"]):
            reports.setdefault(int(t), []).append((float(s), int(i), float(d)))
        start_ups, end_delays = [], []
        ranks_seen: set[int] = set()
        firsts: list[tuple[int, _Recorded, float]] = []  # (rank, trial, launch to first report): a rank's first run
        leads: list[float] = []                          # launch to first report of the other runs from iteration 1
        for row in segments.sort_values("start", kind="stable").itertuples(index=False):
            trial, rank = self.trials.get(int(row.trial_id)), int(row.rank)
            rank_first = rank not in ranks_seen
            ranks_seen.add(rank)
            if trial is None or _missing(row.end):
                continue
            start, end = float(row.start), float(row.end)
            inside = sorted(r for r in reports.get(int(row.trial_id), ()) if start <= r[0] <= end)
            if not inside:
                continue
            start_up = max(inside[0][0] - inside[0][2] - start, 0.0)
            for (before, _, _), (stamp, iteration, _) in zip(inside, inside[1:]):
                trial.seconds[iteration] = max(stamp - before, 0.0)
            trial.start_ups.append(start_up)
            trial.end_delays.append(max(end - inside[-1][0], 0.0))
            start_ups.append(start_up)
            end_delays.append(trial.end_delays[-1])
            if inside[0][1] == 1:
                (firsts.append((rank, trial, inside[0][0] - start)) if rank_first else leads.append(inside[0][0] - start))
        self._read_warm_ups(firsts, leads)
        return (float(np.median(start_ups)) if start_ups else 0.0,
                float(np.median(end_delays)) if end_delays else 0.0)

    def _read_warm_ups(self, firsts: list[tuple[int, _Recorded, float]], leads: list[float]) -> None:
        """A rank's first run also warms the rank up (imports, data loading, a GPU's context): what it
        took from launch to first report beyond the median of the other runs from iteration 1 is the
        rank's, not the trial's. It is taken out of that trial's start-up (then its first iteration)
        and kept per rank (:meth:`warm_up_s`), so that configs replayed from that trial do not pay it."""
        self.warm_ups: dict[int, float] = {}
        if not leads:
            return
        usual = float(np.median(leads))
        for rank, trial, lead in firsts:
            warm = max(lead - usual, 0.0)
            self.warm_ups[rank] = warm
            from_start_up = min(warm, trial.start_ups[0])
            trial.start_ups[0] -= from_start_up
            trial.seconds[1] = max(trial.seconds[1] - (warm - from_start_up), 0.0)

    def _read_joins(self, segments) -> dict[int, float]:
        """When each worker rank (a run's lead rank) first got work, from the first launch."""
        if segments.empty:
            return {}
        first = segments.groupby("rank")["start"].min()
        return {int(rank): float(start - first.min()) for rank, start in first.items()}

    # -- nearest configs --------------------------------------------------------------------
    def _positions(self, configs: list[dict]):
        """Configs as positions in the unit cube (numeric domains) and categories (the rest)."""
        numeric, categorical, domains = [], [], flatten(self.space)
        for key, domain in domains.items():
            if isinstance(domain, Domain) and _range(domain) is not None:
                numeric.append(key)
            elif isinstance(domain, Domain):
                categorical.append(key)
        matrix = np.array([[_unit(domains[k], c.get(k)) for k in numeric] for c in configs], dtype=float)
        categories = [tuple(repr(c.get(k)) for k in categorical) for c in configs]
        return matrix.reshape(len(configs), len(numeric)), categories, (numeric, categorical)

    def order(self, trial_id: int, config: dict) -> tuple[int, ...]:
        """Recorded trials, nearest first: the same trial id with the same config, then by distance
        in the unit cube (log scale for log domains; a choice or grid of numbers by value; 1 for each
        other choice that differs), then by id."""
        known = self._order.get(trial_id)
        if known is not None and known[0] == config:
            return known[1]
        flat = flatten(config)
        position, categories, _ = self._positions([flat])
        distance = ((self._matrix - position) ** 2).sum(axis=1) if self._matrix.size else np.zeros(len(self._ids))
        distance = distance + np.array([sum(a != b for a, b in zip(c, categories[0])) for c in self._categories])
        same = np.array([t == trial_id and self.configs.get(t) == flat for t in self._ids], dtype=bool)
        order = tuple(self._ids[i] for i in np.lexsort((np.array(self._ids), distance, ~same)))
        self._order[trial_id] = (config, order)  # asked again at every iteration; a new config is looked up anew
        return order

    def step(self, trial_id: int, config: dict, iteration: int) -> tuple[dict, float]:
        """What the nearest recorded trial that reached ``iteration`` reported there, and how long that
        iteration took it (one recorded iteration replayed whole); past every recorded curve, the
        longest curve's last values and median iteration time."""
        order = self.order(trial_id, config)
        for recorded_id in order:
            recorded = self.trials[recorded_id]
            if iteration in recorded.metrics:
                return dict(recorded.metrics[iteration]), recorded.seconds[iteration]
        longest = max(order, key=lambda t: (self.trials[t].last, -order.index(t)))
        recorded = self.trials[longest]
        return dict(recorded.metrics[recorded.last]), recorded.median_seconds()

    def start_up_s(self, trial_id: int, config: dict, segment: int) -> float:
        return self._of_run(trial_id, config, segment, "start_ups", self.start_up_median)

    def end_delay_s(self, trial_id: int, config: dict, segment: int) -> float:
        return self._of_run(trial_id, config, segment, "end_delays", self.end_delay_median)

    def warm_up_s(self, rank: int) -> float:
        """As recorded for that rank; a rank the recording did not have: the median of those it had."""
        if rank in self.warm_ups:
            return self.warm_ups[rank]
        return float(np.median(list(self.warm_ups.values()))) if self.warm_ups else 0.0

    def join_s(self, rank: int) -> float:
        """As recorded for that rank; a rank the recording did not have joins with its highest-numbered one."""
        if rank in self.joins:
            return self.joins[rank]
        return self.joins[max(self.joins)] if self.joins else 0.0

    def _of_run(self, trial_id: int, config: dict, segment: int, kind: str, median: float) -> float:
        """The nearest recorded trial's run number ``segment`` if it had one, else the recording's median."""
        measured = getattr(self.trials[self.order(trial_id, config)[0]], kind)
        return measured[segment] if segment < len(measured) else median

    def describe(self) -> str:
        return f"recorded in {self.folder}"


def load_surrogate(text: str, metric: str, space: Mapping | None = None) -> Surrogate:
    """``module:function`` (a :class:`FunctionSurrogate`) or an experiment folder (a :class:`RecordedSurrogate`).

    Raises:
        SpecError: neither, naming what was looked for.
    """
    if Path(text).is_dir():
        return RecordedSurrogate(text, space)
    if ":" not in text:
        raise SpecError("surrogate", f"{text!r} is neither an experiment folder nor a 'module:function'")
    from ...trainable import resolve_trainable

    try:
        fn = resolve_trainable(text, [os.getcwd()])
    except SpecError as exc:
        raise SpecError("surrogate", exc.what) from None
    return FunctionSurrogate(fn, metric, name=text)


def _range(domain: Domain) -> tuple[float, float] | None:
    """The numbers a domain spans (a choice or grid of numbers: its least and greatest), or None."""
    if isinstance(domain, Choice):
        values = domain.choices
        if values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return float(min(values)), float(max(values))
        return None
    if isinstance(domain, RandInt):
        return float(domain.low), float(domain.high - 1)
    low, high = getattr(domain, "low", None), getattr(domain, "high", None)
    return None if low is None or high is None else (float(low), float(high))


def _unit(domain: Domain, value: Any) -> float:
    """``value``'s position in ``domain``'s range, 0..1 (log scale for log domains); 0.5 if not a number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.5
    low, high = _range(domain)
    if isinstance(domain, (LogUniform, QLogUniform)) and low > 0 and value > 0:
        low, high, value = math.log(low), math.log(high), math.log(value)
    return 0.5 if high <= low else (float(value) - low) / (high - low)


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
        raise SpecError(f"surrogate.{name}", f"expected seconds >= 0, got {value!r}")
    return float(value)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
