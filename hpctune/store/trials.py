"""The ``trials`` table of a snapshot: one row per trial, enough to restore every :class:`Trial`.

Columns: the trial's scalar fields (``trial_id``, ``state``, ``iteration``,
``num_failures``, ``time_total_s``, ``checkpoint``, ``checkpoint_iteration``,
``checkpoint_time_s``, ``end_reason``, ``error``, ``rank``), its structured
fields as JSON (``config_json``, ``last_result_json``,
``checkpoint_history_json``), and one ``config/<name>`` column per leaf of the
config for readers (a conditional space gives each trial its own leaves; the
others are missing there).
"""
from __future__ import annotations

import json
import math

import numpy as np

from ..enums import TrialState
from ..space import flatten
from ..trial import Trial
from .journal import to_jsonable
from .tables import Columns, column_array

__all__ = ["trials_to_columns", "trials_from_columns", "trial_rows"]

_SCALARS = ("trial_id", "iteration", "num_failures", "time_total_s", "checkpoint", "checkpoint_iteration",
            "checkpoint_time_s", "end_reason", "error", "rank")
_JSON = ("config", "last_result", "checkpoint_history")


_ENCODER = json.JSONEncoder(default=to_jsonable)  # one for all rows, not one per value


def _dumps(value) -> str:
    return _ENCODER.encode(value)


def trials_to_columns(trials: list[Trial]) -> Columns:
    """The trials table of ``trials``, built column by column (no per-trial row dicts)."""
    columns: Columns = {}
    for name in _SCALARS:
        columns[name] = column_array([getattr(trial, name) for trial in trials])
    columns["state"] = column_array([trial.state.name for trial in trials])
    for name in _JSON:
        columns[f"{name}_json"] = np.asarray([_dumps(getattr(trial, name)) for trial in trials], dtype=object)
    leaves = [flatten(trial.config) for trial in trials]
    names: dict[str, None] = {}
    for flat in leaves:
        names.update(dict.fromkeys(flat))
    for name in names:
        columns[f"config/{name}"] = column_array([flat.get(name) for flat in leaves])
    return columns


def _value(array: np.ndarray, i: int):
    value = array[i]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def trials_from_columns(columns: Columns) -> list[Trial]:
    """Rebuild the :class:`Trial` objects a snapshot holds (for resume)."""
    length = len(columns["trial_id"]) if "trial_id" in columns else 0
    trials = []
    for i in range(length):
        fields = {name: _value(columns[name], i) for name in _SCALARS}
        fields.update({name: json.loads(columns[f"{name}_json"][i]) for name in _JSON})
        fields["state"] = TrialState[columns["state"][i]]
        for name in ("iteration", "num_failures", "checkpoint_iteration"):
            fields[name] = int(fields[name])
        fields["end_reason"] = fields["end_reason"] or ""
        trials.append(Trial(**fields))
    return trials


def trial_rows(columns: Columns) -> dict[int, dict]:
    """Readers' view of the trials table: trial id -> the fields a reader shows (config parsed)."""
    length = len(columns["trial_id"]) if "trial_id" in columns else 0
    rows = {}
    for i in range(length):
        trial_id = int(columns["trial_id"][i])
        rows[trial_id] = {"trial_id": trial_id, "state": columns["state"][i],
                          "iteration": int(columns["iteration"][i]),
                          "num_failures": int(columns["num_failures"][i]),
                          "end_reason": _value(columns["end_reason"], i) or "",
                          "error": _value(columns["error"], i),
                          "config": json.loads(columns["config_json"][i])}
    return rows
