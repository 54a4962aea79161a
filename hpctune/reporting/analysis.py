"""``hpctune.Analysis``: an experiment's trials and results as pandas DataFrames.

The trials, their last and best values and the summary come from the newest
snapshot and the journal after it: their cost follows the number of trials, so
the coordinator's closing summary and ``hpctune status`` never read the history.
The history tables (:attr:`Analysis.results`, ``segments``, ``decisions``) are
read from the part files on first use. Each read is one consistent prefix of the
experiment, current to the last accepted result even while it runs, and blocks
nothing (see docs/hdf5-layout.md); while an experiment runs, the history read
later may be newer than the trials read first. pandas is imported on the first
table asked for: the coordinator makes an Analysis at the end of every run, and
the workers never do, so neither pays for pandas unless a table is read.
"""
from __future__ import annotations

import copy
import math
import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..space import flatten
from ..store import is_experiment, load_experiment
from ..trial import RESULT_FIELDS
from .summary import budget_line, summary_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Analysis"]


def _pandas():
    """pandas, imported on first use (see the module docstring)."""
    import pandas

    return pandas


class Analysis:
    """Results of one experiment folder.

    Args:
        path: the experiment folder (``runs/<name>``).
        metric, mode: rank by these instead of the experiment's own (reads the history).

    Attributes:
        trials: one row per trial: ``trial_id``, ``state``, ``training_iteration``,
            ``num_failures``, ``end_reason``, ``error``, one ``config/<name>`` column per
            leaf of the config, and the last value of each reported metric.
        results: every reported row (read on first use).
        segments: every run of a trial on a worker rank (``rank``, ``start``, ``end``, ``how``).
        decisions: every PAUSE or STOP decision.
        lineage: every config a trial trained with, and which trial's checkpoint it went on from
            (see :meth:`schedule`).
        notes: what the reader had to work around (a damaged snapshot, say).
    """

    def __init__(self, path: str | os.PathLike, metric: str | None = None, mode: str | None = None):
        if not is_experiment(path):
            raise FileNotFoundError(f"{path} holds no hpctune experiment")
        self.path = Path(path)
        self._metric, self._mode = metric, mode

    @cached_property
    def _view(self):
        """The snapshot and the journal after it, read on first use (no history)."""
        return load_experiment(self.path, history=False)

    @property
    def spec(self) -> dict:
        return self._view.spec

    @property
    def status(self) -> str:
        return self._view.status

    @property
    def notes(self) -> list[str]:
        return self._view.notes

    @property
    def num_results(self) -> int:
        return self._view.result_count

    @property
    def metric(self) -> str:
        return self._metric or self.spec["metric"]

    @property
    def mode(self) -> str:
        return self._mode or self.spec["mode"]

    @cached_property
    def trials(self) -> pd.DataFrame:
        rows = []
        for trial in self._view.trials.values():
            row = {"trial_id": int(trial["trial_id"]), "state": trial["state"],
                   "training_iteration": trial["iteration"], "num_failures": trial["num_failures"],
                   "end_reason": trial["end_reason"] or "", "error": trial["error"]}
            row.update({f"config/{k}": v for k, v in flatten(trial["config"] or {}).items()})
            last = trial["last_result"] or {}
            row.update({k: v for k, v in last.items()
                        if k not in row and (k not in RESULT_FIELDS or k == "time_total_s")})
            rows.append(row)
        return _pandas().DataFrame(rows)

    # -- the history, read on first use --------------------------------------------------
    @cached_property
    def _history(self):
        return load_experiment(self.path)

    @cached_property
    def results(self) -> pd.DataFrame:
        return _frame(self._history.results)

    @cached_property
    def segments(self) -> pd.DataFrame:
        return _frame(self._history.segments)

    @cached_property
    def decisions(self) -> pd.DataFrame:
        return _frame(self._history.decisions)

    @cached_property
    def lineage(self) -> pd.DataFrame:
        """Every config a trial trained with, in the order they came: ``event`` ``add`` (its first,
        at iteration 0), ``config`` (changed while it ran, from ``training_iteration`` on) or ``exploit``
        (it went on from trial ``donor``'s checkpoint of ``training_iteration``); ``config_json``
        (empty: unchanged) and ``t``. An exploit the trial trained nothing from (it finished first:
        PBT exploited it after its last iteration) was undone and is left out, as is the table's
        ``undo`` row that says so. Empty for an experiment written before the table existed."""
        return _without_undone_exploits(_frame(self._history.lineage))

    def schedule(self, trial_id: int) -> pd.DataFrame:
        """How ``trial_id``'s final model was trained: one row per stretch of iterations, oldest first,
        with the trial that trained it and the config in force (``config/<name>`` columns), following
        the copies back through each donor (PBT). Re-running these stretches from scratch, in order,
        reproduces the model (``from_iteration`` excluded, ``to_iteration`` included).

        Raises:
            KeyError: no such trial, or no lineage recorded for it.
        """
        import json

        lineage = self.lineage
        if lineage.empty or trial_id not in set(lineage.trial_id):
            raise KeyError(f"no lineage recorded for trial {trial_id}")
        ends = self.trials.set_index("trial_id").training_iteration
        stretches: list[dict] = []
        trial, until, before = int(trial_id), int(ends[trial_id]), math.inf
        while True:
            events = lineage[(lineage.trial_id == trial) & (lineage.t <= before)].sort_values("t", kind="stable")
            config = None
            for row in events.itertuples():  # its config as of `before`, and the last copy before it
                if row.config_json:
                    config = json.loads(row.config_json)
            changes = events[events.event != "add"]
            start_row = changes.iloc[-1] if not changes.empty else events.iloc[0]
            begin = int(start_row.training_iteration)
            if start_row.event == "config":  # a change while it ran: the stretch before it goes on below
                stretches.append({"trial_id": trial, "from_iteration": begin, "to_iteration": until, "config": config})
                before, until = float(start_row.t) - 1e-9, begin
                continue
            stretches.append({"trial_id": trial, "from_iteration": begin, "to_iteration": until, "config": config})
            if start_row.event == "add":
                break
            trial, until, before = int(start_row.donor), begin, float(start_row.t)
        rows = [{"trial_id": s["trial_id"], "from_iteration": s["from_iteration"], "to_iteration": s["to_iteration"],
                 **{f"config/{k}": v for k, v in flatten(s["config"] or {}).items()}}
                for s in reversed(stretches) if s["to_iteration"] > s["from_iteration"]]
        return _pandas().DataFrame(rows)

    # -- the best ---------------------------------------------------------------------------
    @property
    def _stored_ranking(self) -> bool:
        return (self.metric, self.mode) == (self.spec["metric"], self.spec["mode"])

    def _best_values(self) -> pd.Series:
        """Each trial's best value of the metric (trials without one left out)."""
        if self._stored_ranking:
            sign = 1.0 if self.mode == "max" else -1.0
            best = {trial_id: sign * trial["best_score"] for trial_id, trial in self._view.trials.items()
                    if math.isfinite(trial["best_score"])}
            return _pandas().Series(best, dtype=float)
        if self.results.empty or self.metric not in self.results:
            return _pandas().Series(dtype=float)
        values = _pandas().to_numeric(self.results[self.metric], errors="coerce").replace([np.inf, -np.inf], np.nan)
        return values.groupby(self.results["trial_id"]).agg("min" if self.mode == "min" else "max").dropna()

    @cached_property
    def best_trial_id(self) -> int | None:
        """The trial with the best reported value of the metric (over all its results)."""
        best = self._best_values()
        if best.empty:
            return None
        return int(best.idxmin() if self.mode == "min" else best.idxmax())

    @cached_property
    def best_result(self) -> dict | None:
        """The result row holding the best value of the metric (reads the history)."""
        trial_id = self.best_trial_id
        if trial_id is None:
            return None
        rows = self.results[self.results.trial_id == trial_id]
        values = _pandas().to_numeric(rows[self.metric], errors="coerce").replace([np.inf, -np.inf], np.nan)
        best = values.idxmin() if self.mode == "min" else values.idxmax()
        return {k: _plain(v) for k, v in rows.loc[best].dropna().items()}

    @property
    def best_value(self) -> float | None:
        """The best value of the metric (without reading the history)."""
        trial_id = self.best_trial_id
        return None if trial_id is None else float(self._best_values()[trial_id])

    @property
    def best_iteration(self) -> int | None:
        """The ``training_iteration`` of that result (without reading the history)."""
        trial_id = self.best_trial_id
        if trial_id is None:
            return None
        if self._stored_ranking:
            return self._view.trials[trial_id]["best_iteration"]
        return int(self.best_result["training_iteration"])

    @property
    def best_config(self) -> dict | None:
        """The config of :attr:`best_trial_id`."""
        trial_id = self.best_trial_id
        return None if trial_id is None else copy.deepcopy(self._view.trials[trial_id]["config"])

    def best_trials(self, top: int = 5) -> pd.DataFrame:
        """The ``top`` trials by their best value of the metric."""
        best = self._best_values()
        if best.empty:
            return self.trials.head(0)
        column = f"best_{self.metric}"
        table = self.trials.set_index("trial_id").assign(**{column: best}).dropna(subset=[column])
        table = table.sort_values(column, ascending=self.mode == "min", kind="stable").head(top)
        columns = ["state", "training_iteration", column] + [c for c in table if c.startswith("config/")]
        return table[columns].reset_index()

    # -- more ----------------------------------------------------------------------------------
    def utilization(self) -> float | None:
        """Busy rank-seconds over rank-seconds between the first segment start and the last end.

        A multi-rank trial's segment keeps all its ranks busy. Ranks are those that ran at least one
        segment; segments cut by a crash (no end) are left out.
        """
        done = self.segments.dropna(subset=["end"]) if not self.segments.empty else self.segments
        if done.empty:
            return None
        window = done.end.max() - done.start.min()
        members = _segment_ranks(done)
        ranks = len(set().union(*members))
        busy = ((done.end - done.start) * members.map(len)).sum()
        return float(busy / (window * ranks)) if window > 0 else None

    def ranks_used(self) -> list[int]:
        """The worker ranks that ran at least one segment (every rank of a multi-rank trial's)."""
        if self.segments.empty:
            return []
        return sorted(set().union(*_segment_ranks(self.segments)))

    def gpus_by_rank(self) -> dict[int, list[str]]:
        """The devices each worker rank's trials used, from the results' ``gpus`` column (empty: none bound)."""
        if self.results.empty or "gpus" not in self.results:
            return {}
        used = self.results.loc[self.results.gpus.fillna("") != "", ["rank", "gpus"]].drop_duplicates()
        by_rank: dict[int, list[str]] = {}
        for rank, gpus in used.itertuples(index=False):
            by_rank.setdefault(int(rank), []).append(str(gpus))
        return dict(sorted(by_rank.items()))

    def rung_counts(self) -> list[tuple[float, int]] | None:
        """``(milestone, trials that reached it)`` for each rung of the experiment's scheduler; None if it
        has no rungs (fifo, median, pbt)."""
        from ..schedulers import build_scheduler

        scheduler = build_scheduler(self.spec["scheduler"])
        levels = scheduler.rung_levels()
        if levels is None:
            return None
        time_attr = getattr(scheduler, "time_attr", "training_iteration")
        if self.results.empty or time_attr not in self.results:  # no trial reached any rung yet
            return [(level, 0) for level in levels]
        reached = _pandas().to_numeric(self.results[time_attr], errors="coerce").groupby(self.results.trial_id).max()
        return [(level, int((reached >= level).sum())) for level in levels]

    def summary(self, top: int = 5) -> str:
        """The closing text: trials by state, the best trials and where the HDF5 file is (no history read)."""
        counts = self.trials.state.value_counts().to_dict() if not self.trials.empty else {}
        return summary_text(self.spec["name"], self.status, counts, self.num_results, self.metric, self.mode,
                            self.best_trials(top).to_dict("records"), self.path,
                            budget_line(self.spec, self.spent_s))

    @property
    def spent_s(self) -> float:
        """Rank-seconds (GPU-seconds when trials use GPUs) the experiment's segments took, as of its
        snapshot (the final one once it has ended): what its ``budget`` counts (docs/budget.md)."""
        return float((self._view.controller_state or {}).get("spent_s", 0.0))


def _without_undone_exploits(lineage: pd.DataFrame) -> pd.DataFrame:
    """``lineage`` without each ``undo`` row and the trial's last ``exploit`` row before it."""
    if lineage.empty or not (lineage.event == "undo").any():
        return lineage
    dropped: set = set()
    last_exploit: dict[int, object] = {}
    for index, trial_id, event in zip(lineage.index, lineage.trial_id, lineage.event):
        if event == "exploit":
            last_exploit[int(trial_id)] = index
        elif event == "undo":
            dropped.add(index)
            undone = last_exploit.pop(int(trial_id), None)
            if undone is not None:
                dropped.add(undone)
    return lineage.drop(index=list(dropped)).reset_index(drop=True)


def _segment_ranks(segments: pd.DataFrame) -> pd.Series:
    """Each segment's ranks as a list of ints (``ranks`` is ``"3,4,5"``; experiments written before
    multi-rank trials have only the leader's ``rank``)."""
    if "ranks" in segments:
        return segments["ranks"].astype(str).str.split(",").map(lambda ranks: [int(rank) for rank in ranks])
    return segments["rank"].astype(int).map(lambda rank: [rank])


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _frame(columns: dict) -> pd.DataFrame:
    return _pandas().DataFrame(columns) if columns and len(next(iter(columns.values()))) else _pandas().DataFrame()
