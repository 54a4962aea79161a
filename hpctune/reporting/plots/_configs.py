"""The trials' configs as parallel coordinates: ``configs.png``.

One vertical axis per hyperparameter that varies (``config/<name>`` columns of
``Analysis.trials``), then one for the trial's best value of the metric; each trial is a line
through its values, coloured by that best value (darker is better), the best drawn on top. Each
axis is scaled to its own range (written at its ends): numbers linearly, or logarithmically when
the space draws them log-uniformly (``loguniform``, ``qloguniform``: marked ``log``); anything else (strings,
booleans) is a category, spread evenly and named. A number a trial does not have (a conditional
space) leaves a gap in its line; a category it does not have is the category ``(none)``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import PlotData, PlotSkipped, new_figure, spans_decades, value_colours

__all__ = ["configs"]

MAX_AXES = 12
"""Hyperparameters shown at most (those with the most distinct values first)."""
MAX_NAMED = 12
"""A category axis names at most this many categories."""
NONE = "(none)"
"""The category of a trial that has no value for a hyperparameter (a conditional space)."""


def configs(data: PlotData):
    """Parallel coordinates of the trials' configs, coloured by each trial's best value.

    Raises:
        PlotSkipped: no trial yet, or no hyperparameter takes more than one value.
    """
    from matplotlib.collections import LineCollection

    trials = data.analysis.trials
    if trials.empty:
        raise PlotSkipped("no trial yet")
    columns = [c for c in trials if c.startswith("config/") and _distinct(trials[c]) > 1]
    if not columns:
        raise PlotSkipped("no hyperparameter takes more than one value")
    columns = sorted(columns, key=lambda c: -_distinct(trials[c]))[:MAX_AXES]
    columns = [c for c in trials if c in columns]  # back in the space's order
    best = data.best.to_numpy()
    axes = [_axis(c[len("config/"):], trials[c], c[len("config/"):] in data.log_scaled) for c in columns]
    axes.append(_axis(f"best {data.metric}", pd.Series(best), spans_decades(best)))
    positions = np.column_stack([axis["y"] for axis in axes])

    colours, mappable = value_colours(best, data.mode)
    sign = 1.0 if data.mode == "max" else -1.0
    order = np.argsort(np.where(np.isfinite(best), sign * best, -np.inf), kind="stable")  # the best last
    x = np.arange(len(axes), dtype=float)
    lines = [np.column_stack([x, positions[i]]) for i in order]
    n = len(trials)
    widths = np.full(n, 1.0 if n <= 100 else 0.6)
    top = min(10, max(1, n // 20)) if np.isfinite(best).any() else 0
    if top:
        widths[-top:] = 2.2
    alphas = np.full(n, float(min(0.9, max(0.15, 8.0 / np.sqrt(n)))))
    if top:
        alphas[-top:] = 1.0
    line_colours = colours[order].copy()
    line_colours[:, 3] = alphas

    figure = new_figure("configs")
    ax = figure.subplots()
    ax.add_collection(LineCollection(lines, colors=line_colours, linewidths=widths))
    for i, axis in enumerate(axes):
        ax.axvline(i, color="0.25", lw=1, zorder=0)
        ends = {"ha": "center", "fontsize": 8, "bbox": {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "0.6"}}
        ax.text(i, 1.03, axis["high"], va="bottom", **ends)
        ax.text(i, -0.03, axis["low"], va="top", **ends)
        for label, y in axis["ticks"]:
            ax.text(i + 0.03, y, label, ha="left", va="center", fontsize=9, zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_xlim(-0.3, len(axes) - 0.75)
    ax.set_ylim(-0.12, 1.12)
    ax.set_yticks([])
    ax.set_xticks(x, [axis["name"] for axis in axes], fontsize=9, rotation=15 if len(axes) > 6 else 0)
    for side in ("left", "right", "top", "bottom"):
        ax.spines[side].set_visible(False)
    figure.colorbar(mappable, ax=ax, pad=0.01,
                    label=f"the trial's best {data.metric} ({'lower' if data.mode == 'min' else 'higher'} is better)")
    shown = ("the best trial drawn thick, " if top == 1 else f"the best {top} drawn thick, ") if top else ""
    hidden = len([c for c in trials if c.startswith("config/") and _distinct(trials[c]) > 1]) - len(columns)
    more = f"; {hidden} more hyperparameters not shown" if hidden > 0 else ""
    ax.set_title(f"{data.name}: the configs of {n:,} trials ({shown}each axis scaled to the range "
                 f"written at its ends{more})", fontsize=11)
    return figure


def _distinct(column: pd.Series) -> int:
    """Distinct values; a category missing for some trials (a conditional space) counts "(none)" as one."""
    present = column.dropna()
    missing = len(present) < len(column) and not _numbers(present)
    return int(present.map(_hashable).nunique()) + int(missing)


def _numbers(present: pd.Series) -> bool:
    return bool(len(present)) and all(isinstance(v, (int, float, np.integer, np.floating))
                                      and not isinstance(v, (bool, np.bool_)) for v in present)


def _hashable(value):
    return value if isinstance(value, (str, int, float, bool, np.generic)) else repr(value)


def _axis(name: str, column: pd.Series, log: bool) -> dict:
    """One axis: ``y`` (each trial's position in [0, 1], NaN if missing), ``low``/``high`` (the
    range written at its ends), ``ticks`` (named categories) and ``name``; ``log``: a log-uniform
    hyperparameter, scaled logarithmically."""
    present = column.dropna()
    if _numbers(present):
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        log = log and low > 0
        scaled, a, b = (np.log10(values), np.log10(low), np.log10(high)) if log else (values, low, high)
        y = (scaled - a) / (b - a) if b > a else np.where(np.isfinite(values), 0.5, np.nan)
        return {"name": name + (" (log)" if log else ""), "y": y, "low": f"{low:.4g}", "high": f"{high:.4g}",
                "ticks": []}
    keys = column.map(lambda v: NONE if v is None or (isinstance(v, float) and np.isnan(v)) else str(_hashable(v)))
    categories = sorted(set(keys) - {NONE}, key=_natural) + ([NONE] if (keys == NONE).any() else [])
    where = {category: (i / (len(categories) - 1) if len(categories) > 1 else 0.5)
             for i, category in enumerate(categories)}
    y = keys.map(where).to_numpy(dtype=float, na_value=np.nan)
    if len(categories) <= MAX_NAMED:  # every category named beside the axis
        return {"name": name, "y": y, "low": "", "high": "", "ticks": [(c[:18], where[c]) for c in categories]}
    return {"name": f"{name} ({len(categories)} categories)", "y": y, "low": categories[0][:18],
            "high": categories[-1][:18], "ticks": []}


def _natural(text: str):
    """Numbers in numeric order, then the rest alphabetically."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)
