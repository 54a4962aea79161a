"""What a model-based searcher learns from a multi-fidelity scheduler's rungs (BOHB-style).

Under ``asha``, ``sha`` or ``hyperband`` most trials stop at a low rung. Telling the model only
their last value, as if each had run to the end, mixes budgets: a trial stopped after 1 epoch
looks as bad as its loss after 1 epoch. Instead each result at a rung's budget is kept as an
observation *at that budget*, and each suggestion fits the model on the highest budget that has
enough observations (Falkner et al., 2018, "BOHB"), with the trials still waiting for their first
rung as pending (the sampler's constant liar keeps parallel suggestions apart).
"""
from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["RungObservations"]


class RungObservations:
    """Observations per rung budget, the params of every suggestion, and the study a fit uses.

    Args:
        attr: the result field that counts the budget (the scheduler's ``time_attr``).
        levels: the rung budgets, ascending.
        min_points: observations a budget needs before the model is fitted on it.
    """

    def __init__(self, attr: str, levels: list, min_points: int):
        self.attr = attr
        self.levels = sorted(levels)
        self.min_points = min_points
        self.values: dict = {level: {} for level in self.levels}  # budget -> {trial id: value}
        self.params: dict[int, dict] = {}                          # trial id -> its Optuna params
        self.reported: set[int] = set()                            # trials with a result at some rung

    def asked(self, trial_id: int, params: dict) -> None:
        self.params[trial_id] = params

    def observe(self, trial_id: int, result: dict, value: float | None) -> None:
        """A result: kept if it is at a rung's budget and its value is a finite number."""
        budget = result.get(self.attr)
        if budget in self.values and value is not None and math.isfinite(value) and trial_id in self.params:
            self.values[budget][trial_id] = value
            self.reported.add(trial_id)

    def fit_level(self):
        """The highest budget with at least ``min_points`` observations, else the lowest one."""
        for level in reversed(self.levels):
            if len(self.values[level]) >= self.min_points:
                return level
        return self.levels[0]

    def study_at(self, level, new_study: Callable, distributions: dict, ranked_below: int | None = None):
        """A fresh in-memory study holding the observations at ``level`` as finished trials and the
        trials with no result yet as running ones (pending evaluations).

        ``ranked_below`` (+1 when smaller values are better, -1 when larger are): also hold the
        trials that stopped below ``level``, ranked after every trial observed there (a higher rung
        reached first, then the value there), and give every finished trial its rank as its value.
        The trials that reach a rung above the lowest are the ones the scheduler promoted, the good
        ones; fitted on them alone, a model that splits good from bad (TPE) learns to avoid the
        region they share. With the stopped trials below them it learns what the rungs decided.
        For samplers that only rank values (TPE); a regression model (GP) needs real values.
        """
        from optuna.trial import TrialState, create_trial

        study = new_study()
        seen = self.values[level]
        if ranked_below is None:
            finished = list(seen.items())
        else:
            below = [rung for rung in self.levels if rung <= level]
            keys = {}
            for tid in self.reported:
                top = next((rung for rung in reversed(below) if tid in self.values[rung]), None)
                if top is not None:
                    keys[tid] = (-top, ranked_below * self.values[top][tid])
            ranked = sorted(keys, key=keys.__getitem__)
            finished = [(tid, float(rank) * ranked_below) for rank, tid in enumerate(ranked)]
        trials = [create_trial(params=self.params[tid], distributions=distributions, value=value)
                  for tid, value in finished]
        trials += [create_trial(state=TrialState.RUNNING, params=params, distributions=distributions)
                   for tid, params in self.params.items() if tid not in self.reported and tid not in seen]
        study.add_trials(trials)
        return study

    def state_dict(self) -> dict:
        return {"values": [[level, [[tid, value] for tid, value in seen.items()]] for level, seen in self.values.items()],
                "params": [[tid, params] for tid, params in self.params.items()], "reported": sorted(self.reported)}

    def load_state_dict(self, state: dict) -> None:
        saved = {level: seen for level, seen in state["values"]}
        self.values = {level: {int(tid): float(value) for tid, value in saved.get(level, [])} for level in self.levels}
        self.params = {int(tid): params for tid, params in state["params"]}
        self.reported = set(state["reported"])
