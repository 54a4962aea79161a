"""Population based training: ``pbt_schedules.png``.

One panel per hyperparameter that changed: each trial's value over ``training_iteration`` (a
horizontal stretch per config it trained with, coloured by the trial's best value of the metric,
darker is better); at each exploit a dashed line goes from the donor's value to the value the
receiver went on with, at the donor's iteration it copied. The last panel is the lineage itself:
one row per trial, its stretches of iterations, and an arrow from donor to receiver at each exploit.

The schedule comes from ``Analysis.lineage`` (``add``: the first config, ``config``: a change while
it ran, ``exploit``: went on from the donor's checkpoint of ``training_iteration``); a stretch ends
at the last iteration the trial reported before its next lineage event (``Analysis.results``).
"""
from __future__ import annotations

import json
from bisect import bisect_right

import numpy as np

from ._common import PlotData, PlotSkipped, new_figure, value_colours
from ...space import flatten

__all__ = ["pbt_schedules"]

MAX_PANELS = 5
"""Hyperparameters shown at most (those that changed most often first)."""


def pbt_schedules(data: PlotData):
    """Each trial's hyperparameters over ``training_iteration``, and which trial copied which.

    Raises:
        PlotSkipped: not a PBT experiment (scheduler not ``pbt`` and no exploit recorded), no
            lineage, or no hyperparameter ever changed.
    """
    from matplotlib.collections import LineCollection

    lineage = data.analysis.lineage
    exploited = bool(not lineage.empty and (lineage["event"] == "exploit").any())
    if data.scheduler_type != "pbt" and not exploited:
        raise PlotSkipped(f"not a PBT experiment (scheduler {data.scheduler_type}, no exploit in the lineage)")
    if lineage.empty:
        raise PlotSkipped("no lineage recorded (no trial yet, or written before hpctune recorded one)")
    stretches, exploits = _schedule(lineage, data.results)
    params = _changing(stretches)
    if not params:
        raise PlotSkipped("no hyperparameter changed in any trial (no exploit or explore yet)")
    shown = params[:MAX_PANELS]

    trial_ids = sorted({s["trial"] for s in stretches})
    row_of = {trial: i for i, trial in enumerate(trial_ids)}
    best = data.best.reindex(trial_ids).to_numpy(dtype=float)
    colours, mappable = value_colours(best, data.mode)
    colour_of = {trial: colours[i] for i, trial in enumerate(trial_ids)}
    width = 1.6 if len(trial_ids) <= 30 else 0.8

    figure = new_figure("pbt_schedules")
    axes = figure.subplots(len(shown) + 1, 1, sharex=True, squeeze=False)[:, 0]
    for ax, name in zip(axes, shown):
        place, labels, log = _scale([s["config"].get(name) for s in stretches], name in data.log_scaled)
        lines, line_colours, jumps = [], [], []
        previous = {}
        for s in stretches:
            y = place(s["config"].get(name))
            if s["event"] == "config" and s["trial"] in previous:  # changed while it ran: joined up
                lines.append([(s["from"], previous[s["trial"]]), (s["from"], y)])
                line_colours.append(colour_of[s["trial"]])
            lines.append([(s["from"], y), (max(s["to"], s["from"]), y)])
            line_colours.append(colour_of[s["trial"]])
            previous[s["trial"]] = y
        for e in exploits:
            jumps.append([(e["it"], place(e["donor_config"].get(name))), (e["it"], place(e["config"].get(name)))])
        ax.add_collection(LineCollection(lines, colors=line_colours, linewidths=width))
        if jumps:
            ax.add_collection(LineCollection(jumps, colors="black", linewidths=0.8, linestyles="--", alpha=0.6))
            ax.scatter([j[1][0] for j in jumps], [j[1][1] for j in jumps], s=12, color="black", zorder=3)
        if log:
            ax.set_yscale("log")
        if labels:
            ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.autoscale_view()
        ax.set_ylabel(name + (" (log)" if log else ""), fontsize=9)
        ax.grid(alpha=0.3)

    ax = axes[-1]
    lines = [[(s["from"], row_of[s["trial"]]), (max(s["to"], s["from"]), row_of[s["trial"]])] for s in stretches]
    ax.add_collection(LineCollection(lines, colors=[colour_of[s["trial"]] for s in stretches], linewidths=width * 2))
    if exploits:
        arrows = [[(e["it"], row_of[e["donor"]]), (e["it"], row_of[e["trial"]])] for e in exploits
                  if e["donor"] in row_of]
        ax.add_collection(LineCollection(arrows, colors="black", linewidths=0.9, alpha=0.8))
        for marker, up in (("^", True), ("v", False)):  # the arrowhead at the receiver, pointing away from the donor
            heads = [a[1] for a in arrows if (a[1][1] > a[0][1]) == up]
            if heads:
                ax.scatter([h[0] for h in heads], [h[1] for h in heads], s=30, color="black", zorder=3,
                           marker=marker)
    ax.autoscale_view()
    ax.set_ylim(-0.7, len(trial_ids) - 0.3)
    if len(trial_ids) <= 30:
        ax.set_yticks(range(len(trial_ids)), [str(t) for t in trial_ids], fontsize=7)
    ax.set_ylabel("trial (lineage)", fontsize=9)
    ax.set_xlabel("training_iteration")
    ax.grid(alpha=0.3)
    ax.set_title("lineage: an arrow from the donor's row to the receiver's at each exploit, at the iteration copied",
                 fontsize=9, loc="left")
    figure.colorbar(mappable, ax=list(axes), pad=0.01,
                    label=f"the trial's best {data.metric} ({'lower' if data.mode == 'min' else 'higher'} is better)")
    more = f"; {len(params) - len(shown)} more not shown" if len(params) > len(shown) else ""
    figure.suptitle(f"{data.name}: PBT, each trial's hyperparameters by training_iteration, {len(exploits)} exploits "
                    f"(dashed: the donor's value to the receiver's new one){more}", fontsize=11)
    return figure


def _schedule(lineage, results) -> tuple[list[dict], list[dict]]:
    """The stretches (``trial``, ``event``, ``from``, ``to``, ``config``: flat) every trial trained,
    in lineage order, and the exploits (``trial``, ``donor``, ``it``, ``config``, ``donor_config``)."""
    reported: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if not results.empty:
        table = results[["trial_id", "timestamp", "training_iteration"]].sort_values(["trial_id", "timestamp"],
                                                                                     kind="stable")
        for trial, rows in table.groupby("trial_id", sort=False):
            reported[int(trial)] = (rows["timestamp"].to_numpy(dtype=float), rows["training_iteration"].to_numpy(float))
    events: dict[int, list] = {}
    for row in lineage.sort_values("t", kind="stable").itertuples(index=False):
        events.setdefault(int(row.trial_id), []).append(row)
    history: dict[int, tuple[list[float], list[dict]]] = {}  # per trial: event times, configs
    stretches, pending = [], []
    for trial, rows in events.items():
        times, configs = [], []
        config: dict = {}
        stamps, iterations = reported.get(trial, (np.array([]), np.array([])))
        for k, row in enumerate(rows):
            if isinstance(row.config_json, str) and row.config_json:
                config = {key: value for key, value in flatten(json.loads(row.config_json)).items()
                          if isinstance(value, (int, float, str, bool)) or value is None}
            begin = 0.0 if row.event == "add" else float(row.training_iteration)
            until = float(rows[k + 1].t) if k + 1 < len(rows) else np.inf
            inside = iterations[(stamps >= float(row.t)) & (stamps < until)]
            end = float(inside.max()) if inside.size else begin
            stretches.append({"trial": trial, "event": row.event, "from": begin, "to": end, "config": config,
                              "t": float(row.t)})
            times.append(float(row.t))
            configs.append(config)
            if row.event == "exploit":
                pending.append({"trial": trial, "donor": int(row.donor), "it": begin, "config": config,
                                "t": float(row.t)})
        history[trial] = (times, configs)
    exploits = []
    for e in pending:  # the donor's config when it was copied
        times, configs = history.get(e["donor"], ([], []))
        at = bisect_right(times, e["t"]) - 1
        exploits.append({**e, "donor_config": configs[at] if at >= 0 else {}})
    stretches.sort(key=lambda s: s["t"])
    return stretches, exploits


def _changing(stretches: list[dict]) -> list[str]:
    """The hyperparameters that take more than one value, the most often changed first."""
    values: dict[str, set] = {}
    changes: dict[str, int] = {}
    last: dict[tuple, object] = {}
    for s in stretches:
        for key, value in s["config"].items():
            values.setdefault(key, set()).add(repr(value))
            if (s["trial"], key) in last and last[s["trial"], key] != value:
                changes[key] = changes.get(key, 0) + 1
            last[s["trial"], key] = value
    names = [key for key, seen in values.items() if len(seen) > 1]
    return sorted(names, key=lambda key: -changes.get(key, 0))


def _scale(values: list, log: bool):
    """``(place, labels, log)``: where a value goes on its panel's y axis; category labels (strings,
    booleans) or None for numbers; whether the axis is logarithmic (``log``: a log-uniform domain)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        log = log and min(present) > 0
        return (lambda v: np.nan if v is None else float(v)), None, log
    labels = sorted({str(v) for v in present})
    index = {label: i for i, label in enumerate(labels)}
    return (lambda v: np.nan if v is None else float(index[str(v)])), labels, False
