"""The metric over time and over iterations: ``best_so_far.png`` and ``learning_curves.png``.

Both stay fast at a million results: numpy over whole columns, one ``LineCollection`` for all the
learning curves, never a Python loop over trials or rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import PlotData, new_figure, seconds_axis, value_axis, value_colours

__all__ = ["best_so_far", "learning_curves"]

MAX_DOTS = 20_000
"""At most this many results are drawn as dots behind the best-so-far line (a fixed sample)."""


def best_so_far(data: PlotData):
    """The best value of the metric so far (``analysis.mode``) against wall time since the first
    result (``timestamp``), and against the results reported so far (training iterations summed
    over all trials), each result a faint dot behind it.

    Raises:
        PlotSkipped: no result has a value of the metric yet.
    """
    values = data.need_values()
    stamps = data.results["timestamp"].to_numpy(dtype=float, na_value=np.nan)
    order = np.argsort(np.where(np.isfinite(stamps), stamps, np.inf), kind="stable")  # ties: journal order
    stamps, values = stamps[order], values[order]
    trials = data.results["trial_id"].to_numpy()[order]
    iterations = data.results["training_iteration"].to_numpy()[order]
    sign = 1.0 if data.mode == "max" else -1.0
    running = np.maximum.accumulate(np.where(np.isfinite(values), sign * values, -np.inf))
    best = np.where(np.isfinite(running), sign * running, np.nan)
    elapsed = stamps - stamps[np.isfinite(stamps)].min() if np.isfinite(stamps).any() else np.full_like(stamps, np.nan)
    count = np.arange(1, len(values) + 1, dtype=float)
    at = int(np.nanargmax(sign * values))  # the first row holding the best value
    # the step line needs only the rows where the best changed, and the last one
    steps = np.flatnonzero(np.concatenate([[np.isfinite(running[0])], running[1:] != running[:-1]]))
    steps = np.append(steps, len(values) - 1)
    divisor, unit = seconds_axis(float(np.nanmax(elapsed)) if np.isfinite(elapsed).any() else 0.0)

    figure = new_figure("best_so_far")
    axes = figure.subplots(1, 2, sharey=True)
    sample = _sample(len(values))
    panels = ((axes[0], elapsed / divisor, f"wall time since the first result ({unit})"),
              (axes[1], count, "results reported so far (training iterations, all trials)"))
    for ax, x, label in panels:
        ax.scatter(x[sample], values[sample], s=14 if len(sample) < 2000 else 4, color="0.5",
                   alpha=0.5 if len(sample) < 2000 else 0.25, linewidths=0, label="a result")
        ax.step(x[steps], best[steps], where="post", color="C3", lw=2, label=f"best so far ({data.mode})")
        ax.plot([x[at]], [values[at]], marker="*", ms=14, color="C3", mec="black", mew=0.6, ls="none",
                label=f"best: {values[at]:.5g} (trial {int(trials[at])}, iteration {int(iterations[at])})")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    if len(values) >= 1000:  # the first results decide most: a log axis shows them and the long tail
        axes[1].set_xscale("log")
        axes[1].set_xlabel("results reported so far (training iterations, all trials; log scale)")
    value_axis(axes[0], values, data.mode, data.metric)
    axes[1].legend(loc="upper right" if data.mode == "min" else "lower right", fontsize=8)
    figure.suptitle(f"{data.name}: best {data.metric} so far ({data.mode}), {len(values):,} results, "
                    f"{pd.unique(trials).size:,} trials", fontsize=11)
    return figure


def learning_curves(data: PlotData):
    """Every trial's metric against ``training_iteration``, one line a trial (broken where it went
    on from another iteration than its last: a PBT exploit, a restart from an older checkpoint),
    coloured by the rung it reached (or its last iteration), the furthest drawn on top; a trial
    with a single result is a dot.

    Raises:
        PlotSkipped: no result has a value of the metric yet.
    """
    from matplotlib.collections import LineCollection

    values = data.need_values()
    results = data.results
    trials = results["trial_id"].to_numpy()
    iterations = results["training_iteration"].to_numpy(dtype=float, na_value=np.nan)
    stamps = results["timestamp"].to_numpy(dtype=float, na_value=np.nan)
    keep = np.isfinite(values) & np.isfinite(iterations)
    ids, row_trial = np.unique(trials, return_inverse=True)
    reached = np.full(len(ids), -np.inf)
    progress_column = data.progress_column()
    ok = np.isfinite(progress_column)
    np.maximum.at(reached, row_trial[ok], progress_column[ok])
    reached[~np.isfinite(reached)] = np.nan
    progress = data.progress()
    trial_colours = progress.colour(reached, "trials")
    rank = np.nan_to_num(reached, nan=-np.inf)
    by_value = progress.distinct <= 1  # every trial got as far: its best value tells them apart instead
    if by_value:
        best = data.best.reindex(ids).to_numpy(dtype=float)
        trial_colours, mappable = value_colours(best, data.mode)
        rank = np.nan_to_num(best * (1.0 if data.mode == "max" else -1.0), nan=-np.inf)  # the best on top

    rank = rank[row_trial]
    order = np.lexsort((np.nan_to_num(stamps, nan=np.inf), row_trial, rank))  # furthest last, each trial in time
    order = order[keep[order]]
    x, y, owner = iterations[order], values[order], row_trial[order]
    breaks = np.flatnonzero((owner[1:] != owner[:-1]) | (x[1:] != x[:-1] + 1)) + 1
    starts = np.concatenate([[0], breaks])
    lengths = np.diff(np.concatenate([starts, [len(x)]]))
    pieces = np.split(np.column_stack([x, y]), breaks)
    lines = [piece for piece, n in zip(pieces, lengths) if n > 1]
    single = starts[lengths == 1]

    figure = new_figure("learning_curves")
    ax = figure.subplots()
    n_trials = len(ids)
    alpha = float(min(0.9, max(0.12, 6.0 / np.sqrt(n_trials))))
    width = 1.2 if n_trials <= 50 else 0.7
    collection = LineCollection(lines, colors=trial_colours[owner[starts[lengths > 1]]], linewidths=width,
                                alpha=alpha)
    collection.set_in_layout(False)  # the layout needs the axes' labels, not 10,000 lines' extents
    ax.add_collection(collection)
    if len(single):
        ax.scatter(x[single], y[single], s=10, color=trial_colours[owner[single]], alpha=min(1.0, alpha * 1.5),
                   linewidths=0, zorder=collection.get_zorder() + 0.1)
    value_axis(ax, y, data.mode, data.metric)
    x_low, x_high = (float(x.min()), float(x.max())) if len(x) else (0.0, 1.0)
    if data.rungs and data.time_attr == "training_iteration" and x_low > 0 and max(data.rungs) >= 9 * x_low:
        ax.set_xscale("log")  # rungs a factor eta apart: evenly spaced
        ax.set_xlim(x_low / 1.15, x_high * 1.15)
        ax.set_xticks(data.rungs, [f"{level:g}" for level in data.rungs])
        ax.minorticks_off()
    else:
        ax.set_xlim(x_low - 0.5, x_high + 0.5)
    if data.rungs and data.time_attr == "training_iteration":
        for level in data.rungs:
            ax.axvline(level, color="0.4", lw=0.8, ls=":", zorder=0)
    ax.set_xlabel("training_iteration" + (" (dotted: the rungs)" if data.rungs else ""))
    ax.grid(alpha=0.3)
    if by_value:
        figure.colorbar(mappable, ax=ax, pad=0.01, label=f"the trial's best {data.metric} "
                                                         f"({'lower' if data.mode == 'min' else 'higher'} is better)")
        reached_all = np.nanmax(reached) if np.isfinite(reached).any() else float("nan")
        what = f"its best {data.metric} (all reached {data.time_attr} {reached_all:g})"
    else:
        what = f"the rung ({data.time_attr}) it reached" if data.rungs else f"the {data.time_attr} it reached"
        progress.explain(figure, ax, "rung reached" if data.rungs else f"{data.time_attr} reached")
    ax.set_title(f"{data.name}: {data.metric} of {n_trials:,} trials, coloured by {what}", fontsize=11)
    return figure


def _sample(n: int) -> np.ndarray:
    """Indices of at most :data:`MAX_DOTS` of ``n`` rows, spread evenly, the same every time."""
    if n <= MAX_DOTS:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, MAX_DOTS, replace=False))
