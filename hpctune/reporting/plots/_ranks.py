"""Worker ranks over time: ``rank_timelines.png``, a bar for each run of a trial (a *segment*) on
each rank it used, coloured by the rung (or iteration) its trial reached during that run; the gaps
are the rank's idle time."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ._common import PlotData, PlotSkipped, Progress, new_figure, seconds_axis

__all__ = ["rank_timelines", "draw_rank_timelines", "segment_reached"]


def rank_timelines(data: PlotData):
    """Busy and idle time of every worker rank, from ``analysis.segments``.

    Raises:
        PlotSkipped: no trial has run yet (no segment).
    """
    segments = data.analysis.segments
    if segments.empty or "start" not in segments:
        raise PlotSkipped("no trial has run on a worker rank yet (no segments)")
    figure = new_figure("rank_timelines")
    ax = figure.subplots()
    progress = data.progress()
    summary = draw_rank_timelines(ax, segments, data.results if not data.results.empty else None, progress,
                                  data.time_attr)
    progress.explain(figure, ax, "run reached rung" if data.rungs else f"run reached {data.time_attr}")
    utilization = data.analysis.utilization()
    busy = f", utilisation {utilization:.1%}" if utilization is not None else ""
    ranks = f"{summary['ranks']} worker rank{'s' if summary['ranks'] != 1 else ''}"
    ax.set_title(f"{data.name}: {ranks}, {summary['segments']:,} runs of {summary['trials']:,} trials{busy} "
                 "(blank: idle)", fontsize=11)
    return figure


def draw_rank_timelines(ax, segments: pd.DataFrame, results: pd.DataFrame | None, progress: Progress,
                        time_attr: str = "training_iteration", t0: float | None = None) -> dict:
    """Draw ``segments`` (``Analysis.segments``) on ``ax``: per rank, one ``broken_barh`` call for all
    its bars. A run with no recorded end (running, or cut by a crash) reaches the last time the
    experiment recorded and is hatched; one that ended in an error has a red edge. ``t0``: the time
    shown as 0 (default: the first start). Returns counts for a title: ``ranks``, ``segments``,
    ``trials``."""
    start = segments["start"].to_numpy(dtype=float, na_value=np.nan)
    end = segments["end"].to_numpy(dtype=float, na_value=np.nan)
    last = np.nanmax(np.concatenate([start, end]))
    if results is not None and "timestamp" in results and len(results):
        last = max(last, float(np.nanmax(results["timestamp"].to_numpy(dtype=float, na_value=np.nan))))
    still_open = ~np.isfinite(end)
    end = np.where(still_open, last, end)
    t0 = float(np.nanmin(start)) if t0 is None else t0
    divisor, unit = seconds_axis(last - t0)
    reached = segment_reached(segments, results, time_attr)
    colours = progress.colour(reached, "runs")
    how = (np.array(["" if v is None or v != v else str(v) for v in segments["how"]], dtype=object)
           if "how" in segments else np.full(len(start), "", dtype=object))

    members = _segment_ranks(segments)
    rows = np.repeat(np.arange(len(segments)), members.map(len).to_numpy())
    ranks = np.concatenate(members.to_numpy()) if len(rows) else np.array([], dtype=int)
    left, width = (start[rows] - t0) / divisor, (end[rows] - start[rows]) / divisor
    many = len(rows) > 400 * max(1, len(np.unique(ranks)))
    for rank in np.unique(ranks):
        mine = ranks == rank
        ax.broken_barh(list(zip(left[mine], width[mine])), (rank - 0.4, 0.8), facecolors=colours[rows[mine]],
                       edgecolor="white", linewidth=0 if many else 0.4)
        for mask, style in ((still_open[rows] & mine, {"hatch": "///", "edgecolor": "black"}),
                            ((how[rows] == "ERROR") & mine, {"edgecolor": "red", "linewidth": 1.2})):
            if mask.any():
                ax.broken_barh(list(zip(left[mask], width[mask])), (rank - 0.4, 0.8), facecolors="none", **style)
    used = np.unique(ranks)
    if len(used):
        ax.set_ylim(used.min() - 0.7, used.max() + 0.7)
        if len(used) <= 40:
            ax.set_yticks(used)
    ax.set_xlim(0, (last - t0) / divisor * 1.01 or 1)
    ax.set_xlabel(f"time since the first run started ({unit})"
                  + ("; hatched: running or cut, no end recorded" if still_open.any() else "")
                  + ("; red edge: ended in an error" if (how == "ERROR").any() else ""))
    ax.set_ylabel("worker rank")
    ax.grid(axis="x", alpha=0.3)
    return {"ranks": len(used), "segments": len(segments), "trials": int(segments["trial_id"].nunique())}


def segment_reached(segments: pd.DataFrame, results: pd.DataFrame | None,
                    time_attr: str = "training_iteration") -> np.ndarray:
    """Per segment (in ``segments``' order), the highest ``time_attr`` its trial reported during it
    (the results of that trial from the segment's start on, up to its next segment's); NaN for a
    segment with no result. One ``merge_asof`` over all the results, no loop."""
    reached = np.full(len(segments), np.nan)
    if results is None or not len(results) or time_attr not in results or "timestamp" not in results:
        return reached
    rows = pd.DataFrame({"trial_id": results["trial_id"].to_numpy(),
                         "t": results["timestamp"].to_numpy(dtype=float, na_value=np.nan),
                         "value": pd.to_numeric(results[time_attr], errors="coerce").to_numpy(dtype=float)})
    rows = rows[np.isfinite(rows.t) & np.isfinite(rows.value)].sort_values("t", kind="stable")
    runs = pd.DataFrame({"trial_id": segments["trial_id"].to_numpy(),
                         "t": segments["start"].to_numpy(dtype=float, na_value=np.nan),
                         "segment": np.arange(len(segments))})
    runs = runs[np.isfinite(runs.t)].sort_values("t", kind="stable")
    if rows.empty or runs.empty:
        return reached
    rows["trial_id"] = rows["trial_id"].astype(np.int64)
    runs["trial_id"] = runs["trial_id"].astype(np.int64)
    matched = pd.merge_asof(rows, runs, on="t", by="trial_id", direction="backward").dropna(subset=["segment"])
    best = matched.groupby("segment")["value"].max()
    reached[best.index.to_numpy(dtype=int)] = best.to_numpy()
    return reached


def _segment_ranks(segments: pd.DataFrame) -> pd.Series:
    """Each segment's ranks as an int array (``ranks`` is ``"3,4"``; older experiments have ``rank`` only)."""
    if "ranks" in segments:
        text = segments["ranks"].fillna("").astype(str)
        fallback = segments["rank"].astype(str) if "rank" in segments else text
        text = text.where(text != "", fallback)
        return text.str.split(",").map(lambda parts: np.array([int(p) for p in parts if p.strip()], dtype=int))
    return segments["rank"].astype(int).map(lambda rank: np.array([rank], dtype=int))
