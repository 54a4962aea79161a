"""``hpctune.Analysis``: an experiment's trials and results as pandas DataFrames.

Reads the newest snapshot, its part files and the journal after it, so it is
current to the last accepted result even while the experiment runs, never
blocks the coordinator (nothing is locked), and always sees one consistent
prefix of the experiment. pandas is imported here only, so that the
coordinator and the workers never pay for it.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .session import RESULT_FIELDS
from .space import flatten
from .store import load_experiment

__all__ = ["Analysis"]


class Analysis:
    """Results of one experiment folder.

    Args:
        path: the experiment folder (``runs/<name>``).
        metric, mode: rank by these instead of the experiment's own.

    Attributes:
        trials: one row per trial: ``trial_id``, ``state``, ``training_iteration``,
            ``num_failures``, ``end_reason``, ``error``, one ``config/<name>`` column per
            leaf of the config, and the last value of each reported metric.
        results: every reported row.
        segments: every run of a trial on a worker rank (``rank``, ``start``, ``end``, ``how``).
        notes: what the reader had to work around (a damaged snapshot, say).
    """

    def __init__(self, path: str | os.PathLike, metric: str | None = None, mode: str | None = None):
        view = load_experiment(path)
        self.path = Path(path)
        self.spec = view.spec
        self.status = view.status
        self.notes = view.notes
        self.metric = metric or view.spec["metric"]
        self.mode = mode or view.spec["mode"]
        self.results = _frame(view.results)
        self.segments = _frame(view.segments)
        self.decisions = _frame(view.decisions)
        rows = []
        self._configs = {int(trial_id): trial.get("config") or {} for trial_id, trial in view.trials.items()}
        for trial in view.trials.values():
            row = {"trial_id": int(trial["trial_id"]), "state": trial["state"],
                   "training_iteration": trial.get("iteration", 0),
                   "num_failures": trial.get("num_failures", 0), "end_reason": trial.get("end_reason") or "",
                   "error": trial.get("error")}
            row.update({f"config/{k}": v for k, v in flatten(trial.get("config") or {}).items()})
            rows.append(row)
        self.trials = self._with_last_metrics(pd.DataFrame(rows))
        self._best_row = self._find_best()

    def _with_last_metrics(self, trials: pd.DataFrame) -> pd.DataFrame:
        """Add the last reported value of every metric (and time_total_s) to each trial's row."""
        if trials.empty or self.results.empty:
            return trials
        names = [c for c in self.results if c not in trials and c not in RESULT_FIELDS or c == "time_total_s"]
        last = self.results[["trial_id", *names]].groupby("trial_id", sort=False).last()
        return trials.join(last, on="trial_id")

    def _find_best(self) -> dict | None:
        if self.results.empty or self.metric not in self.results:
            return None
        values = pd.to_numeric(self.results[self.metric], errors="coerce").replace([np.inf, -np.inf], np.nan)
        if values.isna().all():
            return None  # NaN and inf count as the worst value
        best = values.idxmin() if self.mode == "min" else values.idxmax()
        return {k: _plain(v) for k, v in self.results.loc[best].dropna().items()}

    @property
    def best_trial_id(self) -> int | None:
        """The trial with the best reported value of the metric (over all its results)."""
        return None if self._best_row is None else int(self._best_row["trial_id"])

    @property
    def best_result(self) -> dict | None:
        """The result row holding the best value of the metric."""
        return self._best_row

    @property
    def best_config(self) -> dict | None:
        """The config of :attr:`best_trial_id`."""
        if self._best_row is None:
            return None
        return copy.deepcopy(self._configs[self.best_trial_id])

    def best_trials(self, top: int = 5) -> pd.DataFrame:
        """The ``top`` trials by their best value of the metric."""
        if self.results.empty or self.metric not in self.results:
            return self.trials.head(0)
        ascending = self.mode == "min"
        values = pd.to_numeric(self.results[self.metric], errors="coerce").replace([np.inf, -np.inf], np.nan)
        best = values.groupby(self.results["trial_id"]).agg("min" if ascending else "max")
        table = self.trials.set_index("trial_id")
        table = table.assign(**{f"best_{self.metric}": best}).dropna(subset=[f"best_{self.metric}"])
        table = table.sort_values(f"best_{self.metric}", ascending=ascending).head(top)
        columns = ["state", "training_iteration", f"best_{self.metric}"] + [c for c in table if c.startswith("config/")]
        return table[columns].reset_index()

    def utilization(self) -> float | None:
        """Busy rank-seconds over rank-seconds between the first segment start and the last end.

        Ranks are those that ran at least one segment; segments cut by a crash (no end) are left out.
        """
        done = self.segments.dropna(subset=["end"]) if not self.segments.empty else self.segments
        if done.empty:
            return None
        window = done.end.max() - done.start.min()
        ranks = done["rank"].nunique()
        return float((done.end - done.start).sum() / (window * ranks)) if window > 0 else None

    def rung_counts(self) -> list[tuple[float, int]] | None:
        """``(milestone, trials that reached it)`` for each rung of the experiment's scheduler, if it has rungs."""
        from .schedulers import build_scheduler

        scheduler, _ = build_scheduler(dict(self.spec["scheduler"]))
        levels = getattr(scheduler, "rung_levels", None)
        if levels is None or self.results.empty:
            return None
        time_attr = getattr(scheduler, "time_attr", "training_iteration")
        reached = pd.to_numeric(self.results[time_attr], errors="coerce").groupby(self.results.trial_id).max()
        return [(level, int((reached >= level).sum())) for level in levels()]

    def summary(self, top: int = 5) -> str:
        """The closing text: best trials table and where the HDF5 file is."""
        counts = self.trials.state.value_counts().to_dict() if not self.trials.empty else {}
        lines = [f"Experiment {self.spec['name']}: {self.status}, {len(self.trials)} trials "
                 f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), {len(self.results)} results"]
        table = self.best_trials(top)
        if not table.empty:
            lines.append(f"Best trials by {self.metric} ({self.mode}):")
            lines.append(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        lines.append(f"Results: {self.path / 'experiment.h5'}")
        return "\n".join(lines)


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def _frame(columns: dict) -> pd.DataFrame:
    return pd.DataFrame(columns) if columns and len(next(iter(columns.values()))) else pd.DataFrame()
