"""The ``trials`` table of a snapshot: one row per trial, enough to restore every :class:`Trial`.

Columns: the trial's scalar fields (``trial_id``, ``state``, ``iteration``,
``num_failures``, ``time_total_s``, ``checkpoint``, ``checkpoint_iteration``,
``checkpoint_time_s``, ``end_reason``, ``error``, ``best_score``: its best
value of the metric, larger is better, so ``-value`` in ``min`` mode and ``-inf`` if none,
``best_iteration``), its structured
fields as JSON (``config_json``, ``last_result_json``,
``checkpoint_history_json``: ``[path, iteration, time_total_s]`` per checkpoint kept, plain
paths in snapshots written before hpctune kept each one's iteration), and one ``config/<name>``
column per leaf of the config for readers (a conditional space gives each trial its own leaves; the
others are missing there).
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

import h5py
import numpy as np

from ..enums import TrialState
from ..space import flatten
from ..trial import Trial
from .journal import to_jsonable
from .tables import STRING, Columns, column_array, write_table

__all__ = ["trials_to_columns", "trials_from_columns", "trial_rows", "write_trials", "history_entries"]

_CHUNK = 4096
"""Trials whose JSON texts exist at once while a snapshot is written."""

_SCALARS = ("trial_id", "iteration", "num_failures", "time_total_s", "checkpoint", "checkpoint_iteration",
            "checkpoint_time_s", "end_reason", "error", "best_score", "best_iteration")
_JSON = ("config", "last_result", "checkpoint_history")


_ENCODER = json.JSONEncoder(default=to_jsonable)  # one for all rows, not one per value


def _dumps(value) -> str:
    return _ENCODER.encode(value)


def trials_to_columns(trials: list[Trial], json_columns: bool = True) -> Columns:
    """The trials table of ``trials``, built column by column (no per-trial row dicts).

    Args:
        json_columns: include the JSON columns (:func:`write_trials` writes them in chunks instead).
    """
    columns: Columns = {}
    for name in _SCALARS:
        columns[name] = column_array([getattr(trial, name) for trial in trials])
    columns["state"] = column_array([trial.state.name for trial in trials])
    for name in _JSON if json_columns else ():
        columns[f"{name}_json"] = np.asarray([_dumps(getattr(trial, name)) for trial in trials], dtype=object)
    # a flat config is its own leaves: no copy of every config for each snapshot
    leaves = [trial.config if not any(isinstance(v, Mapping) for v in trial.config.values()) else flatten(trial.config)
              for trial in trials]
    names: dict[str, None] = {}
    for flat in leaves:
        names.update(dict.fromkeys(flat))
    for name in names:
        columns[f"config/{name}"] = column_array([flat.get(name) for flat in leaves])
    return columns


def write_trials(parent: h5py.Group, key: str, trials: list[Trial]) -> None:
    """Write the trials table; its JSON columns (most of its bytes) are made and written
    ``_CHUNK`` trials at a time, so a snapshot of many trials needs little memory beyond the file."""
    group = write_table(parent, key, columns=trials_to_columns(trials, json_columns=False))
    for name in _JSON:
        data = group.create_dataset(f"{name}_json", shape=(len(trials),), dtype=STRING)
        data.attrs["name"] = f"{name}_json"
        for start in range(0, len(trials), _CHUNK):
            chunk = trials[start:start + _CHUNK]
            data[start:start + len(chunk)] = np.asarray([_dumps(getattr(trial, name)) for trial in chunk], dtype=object)


def _value(array: np.ndarray, i: int):
    value = array[i]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


_ITERATION_IN_NAME = re.compile(r"(?:checkpoint_(\d+)|exploit_\d+_(\d+))\.h5$")
"""The iteration in the name of a checkpoint hpctune named (``checkpoint_000017.h5``, ``exploit_000002_18.h5``)."""


def history_entries(history: list, checkpoint: str | None, iteration: int, time_s: float) -> list[list]:
    """A trial's checkpoint history as ``[path, iteration, time_total_s]`` entries.

    Snapshots written before hpctune kept each checkpoint's iteration hold plain paths: the newest
    (``checkpoint``) takes ``iteration`` and ``time_s``; an older one, the iteration in its name
    and a time in proportion to it (none was recorded). A name without an iteration gives None
    (such a checkpoint is never gone back to, see :mod:`hpctune.controller.checkpoints`).
    """
    entries = []
    for entry in history:
        if not isinstance(entry, str):
            entries.append(list(entry))
        elif entry == checkpoint:
            entries.append([entry, iteration, time_s])
        else:
            found = _ITERATION_IN_NAME.search(entry)
            it = int(found.group(1) or found.group(2)) if found else None
            estimate = (time_s or 0.0) * it / iteration if it is not None and iteration > 0 else 0.0
            entries.append([entry, it, estimate])
    return entries


def trials_from_columns(columns: Columns) -> list[Trial]:
    """Rebuild the :class:`Trial` objects a snapshot holds (for resume)."""
    length = len(columns["trial_id"]) if "trial_id" in columns else 0
    trials = []
    for i in range(length):
        fields = {name: _value(columns[name], i) for name in _SCALARS}
        fields.update({name: json.loads(columns[f"{name}_json"][i]) for name in _JSON})
        fields["state"] = TrialState[columns["state"][i]]
        for name in ("iteration", "num_failures", "checkpoint_iteration", "best_iteration"):
            fields[name] = int(fields[name])
        if fields["best_score"] is None:  # -inf is stored as is; NaN never is
            fields["best_score"] = float("-inf")
        fields["end_reason"] = fields["end_reason"] or ""
        fields["checkpoint_history"] = history_entries(fields["checkpoint_history"], fields["checkpoint"],
                                                       fields["checkpoint_iteration"], fields["checkpoint_time_s"])
        trials.append(Trial(**fields))
    return trials


def trial_rows(columns: Columns) -> dict[int, dict]:
    """Readers' view of the trials table: trial id -> the fields a reader shows (JSON parsed)."""
    length = len(columns["trial_id"]) if "trial_id" in columns else 0
    rows = {}
    for i in range(length):
        trial_id = int(columns["trial_id"][i])
        rows[trial_id] = {"trial_id": trial_id, "state": columns["state"][i],
                          "iteration": int(columns["iteration"][i]),
                          "num_failures": int(columns["num_failures"][i]),
                          "end_reason": _value(columns["end_reason"], i) or "",
                          "error": _value(columns["error"], i),
                          "config": json.loads(columns["config_json"][i]),
                          "last_result": json.loads(columns["last_result_json"][i]),
                          "best_score": float(columns["best_score"][i]),
                          "best_iteration": int(columns["best_iteration"][i])}
    return rows
