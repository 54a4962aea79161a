"""PNG plots of an experiment folder: ``hpctune plot DIR`` and :func:`write_plots`.

Everything is read through :class:`hpctune.Analysis`, from the experiment's own files only (no
MPI, no import of the trainable), so a copy of the folder taken home plots the same, and an
experiment still running plots the consistent prefix Analysis reads. Nothing is written to the
experiment folder except the PNGs themselves when ``out`` is left at its default
(``<folder>/plots``).

matplotlib is an optional extra (``pip install 'hpctune[plot]'``), imported on first use. The
figures are drawn on matplotlib's Agg canvas directly (``matplotlib.figure.Figure``), never through
``pyplot``: no display is needed and the caller's own matplotlib backend is left alone. Each
figure has a fixed size (:data:`SIZES` inches at :data:`DPI`), so a PNG's pixel size never depends
on its content. The plots (docs/plots.md says how to read them):

- ``best_so_far.png``: the best value of the metric so far, against wall time and against the
  results reported (training iterations summed over all trials);
- ``learning_curves.png``: every trial's metric against ``training_iteration``, coloured by the
  rung (or iteration) it reached;
- ``rank_timelines.png``: each worker rank busy (a bar per run of a trial) or idle over time;
- ``pbt_schedules.png``: PBT only: each trial's hyperparameters over ``training_iteration``, and
  which trial copied which;
- ``configs.png``: the trials' configs as parallel coordinates, coloured by their best value.
"""
from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from ._common import DPI, SIZES, PlotData, PlotSkipped, save

__all__ = ["write_plots", "PLOTS", "SIZES", "DPI", "PlotSkipped"]

PLOTS = ("best_so_far", "learning_curves", "rank_timelines", "pbt_schedules", "configs")
"""The plots :func:`write_plots` draws, in order; each is written as ``<name>.png``."""


def write_plots(folder, out: str | os.PathLike | None = None, *, skipped: list | None = None,
                names: Iterable[str] | None = None) -> list[Path]:
    """Write the PNG plots of an experiment; returns the files written, in :data:`PLOTS` order.

    Args:
        folder: the experiment folder (``runs/<name>``), or an :class:`hpctune.Analysis` of it.
        out: the folder to write into (made if needed); default ``<folder>/plots``. An existing
            file of the same name is replaced (atomically: a reader never sees half a PNG).
        skipped: if given, a plot that has nothing to show appends ``"<name>.png: <why>"`` here;
            otherwise that line is printed on stderr.
        names: draw only these of :data:`PLOTS`.

    Raises:
        ImportError: matplotlib is not installed.
        FileNotFoundError: ``folder`` holds no experiment.
        ValueError: a name in ``names`` is not one of :data:`PLOTS`.
    """
    importlib.import_module("matplotlib")  # fails first, before anything is read

    from ..analysis import Analysis

    chosen = list(PLOTS if names is None else names)
    unknown = [name for name in chosen if name not in PLOTS]
    if unknown:
        raise ValueError(f"no plot named {', '.join(unknown)} (plots: {', '.join(PLOTS)})")
    analysis = folder if isinstance(folder, Analysis) else Analysis(folder)
    out = Path(out) if out is not None else analysis.path / "plots"
    data = PlotData(analysis)
    written = []
    for name in PLOTS:
        if name not in chosen:
            continue
        try:
            figure = _drawer(name)(data)
        except PlotSkipped as exc:
            line = f"{name}.png: {exc}"
            if skipped is None:
                print(f"hpctune: skipped {line}", file=sys.stderr)
            else:
                skipped.append(line)
            continue
        out.mkdir(parents=True, exist_ok=True)
        written.append(save(figure, out / f"{name}.png"))
    return written


def _drawer(name: str):
    if name in ("best_so_far", "learning_curves"):
        from . import _curves as module
    elif name == "rank_timelines":
        from . import _ranks as module
    elif name == "pbt_schedules":
        from . import _pbt as module
    else:
        from . import _configs as module
    return getattr(module, name)
