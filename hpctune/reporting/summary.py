"""The closing text of an experiment, made without pandas.

The coordinator prints it at the end of every run from the trials it holds; importing pandas for
that would add 20-30 MiB to the coordinator's peak memory at the very end (measured at 10,000 trials,
BENCHMARKS.md). :meth:`hpctune.Analysis.summary` prints the same text from the files.
"""
from __future__ import annotations

import heapq
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..space import flatten
from ..trial import Trial

__all__ = ["summary_text", "closing_summary", "format_table", "budget_line"]


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{float(value):.6g}"


def format_table(rows: Sequence[dict]) -> str:
    """``rows`` as a plain text table: a header, then one line per row, every column right-aligned
    (numbers to 6 significant digits, a value a row lacks as NaN)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    columns = [[name] + [_cell(row.get(name)) for row in rows] for name in names]
    widths = [max(map(len, column)) for column in columns]
    return "\n".join("  ".join(column[i].rjust(width) for column, width in zip(columns, widths)).rstrip()
                     for i in range(len(rows) + 1))


def budget_line(spec: dict, spent_s: float | None) -> str | None:
    """``Budget: X of Y rank-hours spent (Z%)`` for an experiment with a ``budget`` (GPU-hours when
    its trials use GPUs); None without one."""
    budget = spec.get("budget")
    if budget is None:
        return None
    unit = "GPU-hours" if (spec.get("resources") or {}).get("gpus_per_rank") else "rank-hours"
    hours = (spent_s or 0.0) / 3600.0
    return f"Budget: {hours:.3g} of {budget:g} {unit} spent ({100.0 * hours / budget:.0f}%)"


def summary_text(name: str, status: str, counts: dict[str, int], num_results: int, metric: str, mode: str,
                 best: Sequence[dict], folder: Path, budget: str | None = None) -> str:
    """The closing text of an experiment: trials by state, the budget spent (:func:`budget_line`),
    the best trials (rows, best first), where the HDF5 file is."""
    lines = [f"Experiment {name}: {status}, {sum(counts.values())} trials "
             f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))}), {num_results} results"]
    if budget:
        lines.append(budget)
    if best:
        lines.append(f"Best trials by {metric} ({mode}):")
        lines.append(format_table(best))
    lines.append(f"Results: {Path(folder) / 'experiment.h5'}")
    return "\n".join(lines)


def closing_summary(trials: Iterable[Trial], status: str, num_results: int, spec: dict, folder: Path,
                    top: int = 5, spent_s: float | None = None) -> str:
    """:func:`summary_text` from the coordinator's own trials, reading nothing back: the best
    ``top`` trials by their best value, as :meth:`hpctune.Analysis.best_trials` ranks them;
    ``spent_s``: what the budget counts (``Controller.spent_s``)."""
    trials = list(trials)
    counts = dict(Counter(trial.state.name for trial in trials))
    ranked = heapq.nlargest(top, (t for t in trials if math.isfinite(t.best_score)),
                            key=lambda t: (t.best_score, -t.trial_id))
    sign = 1.0 if spec["mode"] == "max" else -1.0
    rows = [{"trial_id": t.trial_id, "state": t.state.name, "training_iteration": t.iteration,
             f"best_{spec['metric']}": sign * t.best_score,
             **{f"config/{k}": v for k, v in flatten(t.config).items()}} for t in ranked]
    return summary_text(spec["name"], status, counts, num_results, spec["metric"], spec["mode"], rows, folder,
                        budget_line(spec, spent_s))
