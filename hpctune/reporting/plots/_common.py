"""What every plot of :mod:`hpctune.reporting.plots` shares: the figure's fixed size, saving it
atomically, axes for seconds and values, colours by value, and the experiment's data read once
(:class:`PlotData`)."""
from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd


__all__ = ["DPI", "SIZES", "NO_VALUE", "PlotSkipped", "PlotData", "Progress", "new_figure", "save", "seconds_axis",
           "value_axis", "spans_decades", "value_colours"]

DPI = 100
SIZES = {"best_so_far": (10, 6), "learning_curves": (10, 6), "rank_timelines": (10, 6),
         "pbt_schedules": (10, 8), "configs": (12, 6)}
"""Each figure's size in inches: the PNG is ``DPI`` times as many pixels (1000 x 600 for 10 x 6)."""
NO_VALUE = (0.72, 0.72, 0.72, 1.0)
"""The colour of what has no value to colour it by (a trial without a result, a run without a result)."""


class PlotSkipped(Exception):
    """A plot has nothing to show (no results yet, not a PBT experiment, ...); the message says why."""


# -- figures ------------------------------------------------------------------------------------------
def new_figure(name: str):
    """An empty figure of plot ``name``'s fixed size, on an Agg canvas (no pyplot, no display).

    Laid out by matplotlib's constrained layout, which makes room for legends and colourbars
    outside the axes without changing the figure's size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZES[name], dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save(figure, path: Path) -> Path:
    """Write ``figure`` to ``path`` as a PNG of exactly its size times :data:`DPI` pixels, atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        figure.savefig(temporary, dpi=DPI, format="png")
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def seconds_axis(span: float) -> tuple[float, str]:
    """``(divisor, unit)`` to show ``span`` seconds in seconds, minutes or hours."""
    if span >= 3 * 3600:
        return 3600.0, "h"
    if span >= 3 * 60:
        return 60.0, "min"
    return 1.0, "s"


def value_axis(ax, values: np.ndarray, mode: str, label: str) -> None:
    """Scale, limits and label of a metric's y axis: logarithmic when every value is positive and
    they span a factor of 100 or more (a loss from a diverged start down to its best); otherwise
    linear, showing the good side whole (low in ``min`` mode) and cutting the bad side at the 99th
    percentile when a few outliers would squash everything else."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        ax.set_ylabel(label)
        return
    low, high = float(finite.min()), float(finite.max())
    if spans_decades(finite):
        ax.set_yscale("log")
        ax.set_ylim(low / 1.2, high * 1.2)
        ax.set_ylabel(f"{label} (log scale)")
        return
    cut = False
    if finite.size >= 20:
        q_low, q_high = (float(q) for q in np.quantile(finite, [0.01, 0.99]))
        if mode == "min" and high - low > 4 * (q_high - low) > 0:
            high, cut = q_high, True
        elif mode == "max" and high - low > 4 * (high - q_low) > 0:
            low, cut = q_low, True
    pad = (high - low) * 0.04 or max(abs(high) * 0.05, 1e-9)
    ax.set_ylim(low - pad, high + pad)
    ax.set_ylabel(label + (" (cut at the 99th percentile)" if cut else ""))


def spans_decades(values: np.ndarray) -> bool:
    """Whether finite ``values`` are all positive and span a factor of 100 or more: shown on a log scale."""
    finite = values[np.isfinite(values)]
    return bool(finite.size and finite.min() > 0 and finite.max() / finite.min() >= 100)


def value_colours(values: np.ndarray, mode: str):
    """Colours for the metric ``values`` (each trial's best), darker for better, grey for NaN, and
    the ``ScalarMappable`` for a colourbar: on a log scale if they span decades (see
    :func:`spans_decades`), else linear with the bad end cut at the 95th percentile when a few
    outliers would leave every other trial the same colour."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize

    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if spans_decades(finite):
        norm = LogNorm(low, high)
    else:
        if finite.size >= 10:
            q_low, q_high = (float(q) for q in np.quantile(finite, [0.05, 0.95]))
            if mode == "min" and high - low > 4 * (q_high - low) > 0:
                high = q_high
            elif mode == "max" and high - low > 4 * (high - q_low) > 0:
                low = q_low
        if high <= low:
            low, high = low - 0.5, high + 0.5
        norm = Normalize(low, high, clip=True)
    mappable = ScalarMappable(norm, colormaps["viridis" if mode == "min" else "viridis_r"])
    colours = mappable.to_rgba(np.nan_to_num(values, nan=low))
    colours[~np.isfinite(values)] = NO_VALUE
    return colours, mappable


# -- the data the plots share ---------------------------------------------------------------------------
class PlotData:
    """What the plots read, each piece read or computed once: the :class:`hpctune.Analysis`, its
    results, the metric as numbers, the scheduler's rungs, how far each trial got."""

    def __init__(self, analysis):
        self.analysis = analysis
        self.metric, self.mode = analysis.metric, analysis.mode
        self.name = analysis.spec.get("name", analysis.path.name)

    @cached_property
    def results(self) -> pd.DataFrame:
        return self.analysis.results

    @cached_property
    def values(self) -> np.ndarray | None:
        """The metric of every result row as float64 (NaN where missing or not a number); None if
        no row has a finite value."""
        if self.results.empty or self.metric not in self.results:
            return None
        values = pd.to_numeric(self.results[self.metric], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        values = np.where(np.isfinite(values), values, np.nan)
        return values if np.isfinite(values).any() else None

    def need_values(self) -> np.ndarray:
        """:attr:`values`, or :class:`PlotSkipped` saying there is none yet."""
        if self.values is None:
            raise PlotSkipped(f"no result with a value of {self.metric!r} yet")
        return self.values

    @cached_property
    def scheduler_type(self) -> str:
        raw = self.analysis.spec.get("scheduler")
        return str(raw.get("type", "")) if isinstance(raw, dict) else str(raw or "fifo")

    @cached_property
    def _scheduler(self):
        from ...schedulers import build_scheduler

        try:  # a scheduler registered by the user's own code is unknown in a copy taken home
            return build_scheduler(self.analysis.spec["scheduler"])
        except Exception:
            return None

    @cached_property
    def rungs(self) -> list[float] | None:
        """The scheduler's rung milestones (values of :attr:`time_attr`), or None without rungs."""
        levels = self._scheduler.rung_levels() if self._scheduler is not None else None
        return [float(level) for level in levels] if levels else None

    @cached_property
    def time_attr(self) -> str:
        attr = getattr(self._scheduler, "time_attr", "training_iteration") if self.rungs else "training_iteration"
        return attr if attr in self.results else "training_iteration"

    def progress_column(self) -> np.ndarray:
        """The time_attr of every result row as float64."""
        return pd.to_numeric(self.results[self.time_attr], errors="coerce").to_numpy(dtype=float, na_value=np.nan)

    @cached_property
    def best(self) -> pd.Series:
        """Each trial's best value of the metric, by trial_id (NaN: none yet)."""
        trials = self.analysis.trials
        if trials.empty:
            return pd.Series(dtype=float)
        best = self.analysis.best_trials(top=len(trials))
        column = f"best_{self.metric}"
        values = best.set_index("trial_id")[column] if column in best else pd.Series(dtype=float)
        return pd.to_numeric(values, errors="coerce").reindex(trials.trial_id.to_numpy()).astype(float)

    @cached_property
    def log_scaled(self) -> set[str]:
        """The flat names (``a/b``) of the space's ``loguniform`` and ``qloguniform`` hyperparameters:
        their axes are logarithmic."""
        from ...space import CONSTANT, DOMAIN_NAMES

        found: set[str] = set()

        def walk(tree: dict, prefix: str) -> None:
            for key, value in tree.items():
                if not isinstance(value, dict):
                    continue
                kind = next(iter(value)) if len(value) == 1 else None
                if kind in ("loguniform", "qloguniform"):
                    found.add(f"{prefix}{key}")
                elif kind not in (*DOMAIN_NAMES, CONSTANT, "sample_from"):
                    walk(value, f"{prefix}{key}/")

        space = self.analysis.spec.get("space")
        walk(space if isinstance(space, dict) else {}, "")
        return found

    def progress(self) -> Progress:
        return Progress(self.rungs, self.time_attr)


class Progress:
    """How far something got (a trial, a run): the highest rung it reached when the scheduler has
    rungs, else the value of ``time_attr`` it reached, as colours with a legend or a colourbar."""

    def __init__(self, rungs: list[float] | None, time_attr: str):
        self.rungs, self.time_attr = rungs, time_attr
        self.distinct = 0  # how many classes (or values) the last colour() found

    def colour(self, reached: np.ndarray, unit: str) -> np.ndarray:
        """RGBA colours for ``reached`` (NaN: grey); remembers what :meth:`explain` shows for ``unit``s."""
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        ok = np.isfinite(reached)
        if self.rungs:
            classes = np.searchsorted(np.asarray(self.rungs), np.where(ok, reached, -np.inf), side="right")
            labels = ["below the first rung"] + [f"reached rung {level:g}" for level in self.rungs]
        else:
            steps = np.unique(reached[ok])
            if len(steps) > 8:  # many different ends: a colourbar
                low, high = (float(steps[0]), float(steps[-1])) if len(steps) else (0.0, 1.0)
                self._mappable = ScalarMappable(Normalize(low, high), colormaps["viridis_r"])
                colours = self._mappable.to_rgba(np.nan_to_num(reached, nan=low))
                colours[~ok] = NO_VALUE
                self._legend, self.distinct = None, len(steps)
                return colours
            classes = np.searchsorted(steps, np.where(ok, reached, -np.inf), side="right")
            labels = ["none"] + [f"{self.time_attr} {step:g}" for step in steps]
        palette = self._palette(len(labels) - 1)
        colours = palette[classes]
        colours[~ok] = NO_VALUE
        counts = np.bincount(classes[ok], minlength=len(labels))
        self._legend = [(palette[k], f"{label} ({counts[k]} {unit if counts[k] != 1 else unit[:-1]})")
                        for k, label in enumerate(labels) if counts[k]]
        self._mappable = None
        self.distinct = int((counts > 0).sum())
        if (~ok).any():
            missing = int((~ok).sum())
            self._legend.append((NO_VALUE, f"no result ({missing} {unit if missing != 1 else unit[:-1]})"))
        return colours

    @staticmethod
    def _palette(levels: int) -> np.ndarray:
        """Grey for class 0 (below the first rung), then light to dark for further ones."""
        from matplotlib import colormaps

        ramp = colormaps["viridis_r"](np.linspace(0.15, 1.0, levels) if levels > 1 else [0.65])
        return np.vstack([[0.8, 0.8, 0.8, 1.0], ramp])

    def explain(self, figure, ax, title: str) -> None:
        """The legend (classes) or colourbar (a continuous range) of the last :meth:`colour`, beside ``ax``."""
        from matplotlib.lines import Line2D

        if self._legend is None:
            figure.colorbar(self._mappable, ax=ax, label=title, pad=0.01)
            return
        handles = [Line2D([], [], color=colour, lw=4) for colour, _ in self._legend]
        ax.legend(handles, [label for _, label in self._legend], title=title, loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=8, frameon=False)
