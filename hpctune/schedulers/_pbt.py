"""Population based training (Jaderberg et al., 2017, "Population Based Training of Neural Networks").

The trials of the experiment are the population; they train side by side. Every
``perturbation_interval`` (in ``time_attr`` units) a trial is ranked against the others by its
latest result. One in the bottom ``quantile_fraction`` *exploits* a trial of the top quantile: it
goes on from that trial's newest checkpoint (never its own older one) with that trial's
hyperparameters, *explored*: each mutable hyperparameter is resampled from its domain with
``resample_probability``, else a number is multiplied by one of ``perturbation_factors`` (0.8 or
1.2) and kept in its bounds, and a ``choice``/``grid`` value moves to a neighbour in its list. A
trial with no checkpoint yet is never a donor.

Asynchronous (the default): each trial is ranked when it reaches its interval, against the latest
results of the others. Synchronous (``synch: true``): every trial pauses at each interval; when the
whole population has arrived, the bottom quantile exploits the top one, and all go on (the round
of the PBT paper's Figure 1; with fewer workers than trials this also time-slices the population).
A round's recipients start first, each from its donor's checkpoint of that round; a donor that
arrived last pauses too, so that it does not train on before they have copied it.

The exploit itself is the controller's (:class:`~hpctune.schedulers.SchedulerDecision`): the
donor's checkpoint is copied into the recipient's folder at once, so the donor may go on and
delete its own. A custom explore step: subclass and override :meth:`PopulationBasedTraining.explore`
(with a ``name`` of its own, so a resumed experiment builds it again).

Ranking costs O(n log n) in the live trials at each perturbation (not at every result): PBT
populations are tens to hundreds of trials.
"""
from __future__ import annotations

import copy
import math
from collections import deque

import numpy as np

from ..enums import Decision
from ..errors import SpecError
from ..space import Choice, Domain, RandInt, SampleFrom, _Continuous, flatten, unflatten
from ..rng_state import rng_from_json, rng_to_json
from ._base import SCHEDULERS, Scheduler, SchedulerDecision
from ._rungs import check_number, check_time_attr, time_value

__all__ = ["PopulationBasedTraining"]


@SCHEDULERS.register
class PopulationBasedTraining(Scheduler):
    """Exploit the best trials' checkpoints and explore around their hyperparameters.

    Args:
        perturbation_interval: ``time_attr`` units between two rankings of a trial.
        quantile_fraction: the share of the population in the bottom (which exploits) and the top
            (which is exploited) quantiles; at most 0.5.
        resample_probability: the chance that a hyperparameter is drawn again from its domain
            instead of being perturbed.
        perturbation_factors: what a number is multiplied by (one of them at random).
        hyperparam_mutations: the names (``a/b`` for nested ones) of the hyperparameters to explore;
            default: every domain of the space (constants never change).
        synch: wait for the whole population at each interval (see the module's docstring).
        time_attr: the reported value that counts time.
    """

    name = "pbt"

    def __init__(self, *, perturbation_interval: float = 5, quantile_fraction: float = 0.25,
                 resample_probability: float = 0.25, perturbation_factors: list | tuple = (0.8, 1.2),
                 hyperparam_mutations: list | None = None, synch: bool = False,
                 time_attr: str = "training_iteration"):
        check_number("perturbation_interval", perturbation_interval, 0)
        if perturbation_interval <= 0:
            raise SpecError("perturbation_interval", f"must be > 0, got {perturbation_interval}")
        check_number("quantile_fraction", quantile_fraction, 0)
        if not 0 < quantile_fraction <= 0.5:
            raise SpecError("quantile_fraction", f"must be in (0, 0.5], got {quantile_fraction}")
        check_number("resample_probability", resample_probability, 0)
        if resample_probability > 1:
            raise SpecError("resample_probability", f"must be in [0, 1], got {resample_probability}")
        if (not isinstance(perturbation_factors, (list, tuple)) or not perturbation_factors
                or not all(isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and f > 0
                           for f in perturbation_factors)):
            raise SpecError("perturbation_factors", f"expected a list of positive numbers, got {perturbation_factors!r}")
        if hyperparam_mutations is not None and (not isinstance(hyperparam_mutations, (list, tuple)) or not all(
                isinstance(name, str) and name for name in hyperparam_mutations)):
            raise SpecError("hyperparam_mutations", f"expected a list of hyperparameter names, got "
                                                    f"{hyperparam_mutations!r}")
        if not isinstance(synch, bool):
            raise SpecError("synch", f"expected true or false, got {synch!r}")
        check_time_attr(time_attr)
        self.perturbation_interval = perturbation_interval
        self.quantile_fraction = quantile_fraction
        self.resample_probability = resample_probability
        self.perturbation_factors = [float(f) for f in perturbation_factors]
        self.hyperparam_mutations = list(hyperparam_mutations) if hyperparam_mutations is not None else None
        self.synch = synch
        self.time_attr = time_attr
        self._mutable: dict[str, Domain] = {}
        self._live: set[int] = set()               # added, not finished
        self._configs: dict[int, dict] = {}        # trial_id -> its config at its latest result
        self._with_checkpoint: set[int] = set()    # trials that have reported a checkpoint: possible donors
        self._queue: deque[int] = deque()          # trials added and not yet started
        self._latest: dict[int, float] = {}        # trial_id -> score of its latest result
        self._last_perturbation: dict[int, float] = {}
        self._waiting: set[int] = set()            # synch: paused at the current round's boundary
        self._released: deque[int] = deque()       # synch: paused trials of a completed round, to run again
        self._planned: dict[int, SchedulerDecision] = {}  # synch: where a trial starts its next round
        self._exploits = 0
        self._all_added = False                    # synch: a round completes only with the whole population
        self._rng = np.random.default_rng(0)

    # -- set-up -----------------------------------------------------------------------------
    def setup(self, metric: str, mode: str, seed: int = 0) -> None:
        super().setup(metric, mode, seed)
        self._rng = np.random.default_rng([seed, 0x9B7])

    def set_space(self, space: dict) -> None:
        """The experiment's search space: what :meth:`explore` may change, and within which bounds.

        Raises:
            SpecError: a name in ``hyperparam_mutations`` that is not a domain of the space.
        """
        domains = {name: value for name, value in flatten(space).items() if isinstance(value, Domain)}
        names = self.hyperparam_mutations if self.hyperparam_mutations is not None else list(domains)
        unknown = [name for name in names if name not in domains]
        if unknown:
            raise SpecError("scheduler.hyperparam_mutations", f"{unknown[0]!r} is not a domain of the space "
                                                              f"(domains: {', '.join(domains) or 'none'})")
        self._mutable = {name: domains[name] for name in names}

    # -- events ------------------------------------------------------------------------------
    def on_trial_add(self, trial):
        self._live.add(trial.trial_id)
        self._queue.append(trial.trial_id)

    def on_trial_result(self, trial, result):
        tid = trial.trial_id
        now = time_value(result, self.time_attr)
        self._latest[tid] = self.score(result)
        self._configs[tid] = trial.config
        if trial.checkpoint is not None:  # the controller took this result's checkpoint first
            self._with_checkpoint.add(tid)
        last = self._last_perturbation.setdefault(tid, 0.0)
        if now - last < self.perturbation_interval:
            return Decision.CONTINUE
        self._last_perturbation[tid] = now
        if self.synch:
            return self._arrive(tid)
        lower, upper = self.quantiles(self._population())
        if tid not in lower:
            return Decision.CONTINUE
        donor = self._donor(upper, exclude=tid)
        if donor is None:
            return Decision.CONTINUE
        return self._exploit(tid, donor)

    def on_trial_complete(self, trial, result):
        self._forget(trial.trial_id)

    def on_no_more_trials(self):
        self._all_added = True
        if self._round_complete():  # the last trial added arrived before the search said it was the last
            self._complete_round()

    def on_trial_error(self, trial):
        self._forget(trial.trial_id)

    def choose_trial_to_run(self, trials):
        trial = self.first_pending(self._queue, trials)
        if trial is not None:
            return trial
        for tid in list(self._released):  # in order; one still running (pausing) stays until it has ended
            trial = trials.get(tid)
            if trial is None or trial.state.is_finished:
                self._released.remove(tid)
            elif self.is_runnable(trial):
                self._released.remove(tid)
                return trial
        return None

    def starting_point(self, trial):
        """Synch: a trial of the bottom quantile starts its next round from its donor's checkpoint."""
        return self._planned.pop(trial.trial_id, None)

    # -- the population ------------------------------------------------------------------
    def quantiles(self, scores: dict[int, float]) -> tuple[list[int], list[int]]:
        """``(bottom, top)``: the trial ids of the two quantiles of ``scores`` (trial -> score, larger
        is better), each ``quantile_fraction`` of them, at least one each from two trials on; ties
        broken by trial id (the older trial ranks higher)."""
        if len(scores) < 2:
            return [], []
        ranked = sorted(scores, key=lambda tid: (scores[tid], -tid))  # worst first
        count = max(1, int(len(ranked) * self.quantile_fraction))
        return ranked[:count], ranked[-count:]

    def explore(self, config: dict, rng: np.random.Generator) -> dict:
        """A perturbed copy of ``config`` (see the module's docstring); override for another explore step."""
        flat = flatten(copy.deepcopy(config))
        for name, domain in self._mutable.items():
            if name in flat:
                flat[name] = self._explore_value(flat[name], domain, rng, config)
        return unflatten(flat)

    def _explore_value(self, value, domain: Domain, rng: np.random.Generator, config: dict):
        if isinstance(domain, SampleFrom) or rng.random() < self.resample_probability:
            return domain.sample(rng, config)
        if isinstance(domain, Choice):  # a neighbour in the list (grid included)
            if value not in domain.choices:
                return domain.sample(rng, config)
            index = domain.choices.index(value) + (1 if rng.random() < 0.5 else -1)
            return domain.choices[min(max(index, 0), len(domain.choices) - 1)]
        factor = self.perturbation_factors[int(rng.integers(len(self.perturbation_factors)))]
        if isinstance(domain, RandInt):
            return int(min(max(round(value * factor), domain.low), domain.high - 1))
        if isinstance(domain, _Continuous):
            moved = min(max(value * factor, domain.low), domain.high)
            if domain.q is not None:
                moved = min(max(round(moved / domain.q) * domain.q, domain.low), domain.high)
                if isinstance(domain.q, int) and isinstance(domain.low, int):
                    moved = int(moved)
            return moved
        return value

    def _population(self) -> dict[int, float]:
        return {tid: score for tid, score in self._latest.items() if tid in self._live}

    def _donor(self, upper: list[int], exclude: int) -> int | None:
        """A trial of the top quantile with a checkpoint (never one without), at random."""
        donors = [tid for tid in upper if tid != exclude and tid in self._with_checkpoint]
        if not donors:
            return None
        return donors[int(self._rng.integers(len(donors)))]

    def _exploit(self, recipient: int, donor: int) -> SchedulerDecision:
        """``recipient`` goes on from ``donor``'s newest checkpoint with its explored config."""
        self._exploits += 1
        config = self.explore(self._configs[donor], self._rng)
        self._configs[recipient] = config
        return SchedulerDecision(Decision.CONTINUE, config=config, checkpoint_of=donor)

    def _forget(self, tid: int) -> None:
        self._live.discard(tid)
        self._latest.pop(tid, None)
        self._configs.pop(tid, None)
        self._with_checkpoint.discard(tid)
        self._waiting.discard(tid)
        self._planned.pop(tid, None)
        if self._round_complete():  # it was the one the others waited for
            self._complete_round()

    # -- synchronous rounds ----------------------------------------------------------------
    def _arrive(self, tid: int):
        """Pause at the round's boundary; the last to arrive ranks the population and goes on at
        once, unless it is a donor of this round: then it pauses too, so that its newest checkpoint
        is still the round's when its recipients start."""
        self._waiting.add(tid)
        if not self._round_complete():
            return Decision.PAUSE
        donors = self._complete_round(arriving=tid)
        if tid in self._planned:
            return self._planned.pop(tid)  # a recipient: it goes on from its donor's checkpoint now
        if tid in donors:
            self._released.append(tid)  # after the recipients
            return Decision.PAUSE
        return Decision.CONTINUE

    def _round_complete(self) -> bool:
        """Every trial of the population waits at the boundary (and no more will be added: with
        fewer workers than trials, the first ones pause at the first boundary until all have started)."""
        return self._all_added and bool(self._waiting) and not self._live - self._waiting

    def _complete_round(self, arriving: int | None = None) -> set[int]:
        """Every live trial is at the boundary: the bottom quantile exploits the top one (at its
        next start, :meth:`starting_point`), and the paused ones are released, recipients first
        (each takes its donor's checkpoint before the donor trains on). Returns the donors."""
        lower, upper = self.quantiles(self._population())
        donors = set()
        for recipient in lower:
            donor = self._donor(upper, exclude=recipient)
            if donor is not None:
                self._planned[recipient] = self._exploit(recipient, donor)
                donors.add(donor)
        others = self._waiting - {arriving}
        self._released.extend(sorted(others & set(self._planned)) + sorted(others - set(self._planned)))
        self._waiting.clear()
        return donors

    def why_no_growth(self) -> str | None:
        if self.synch:
            return ("with synch: true its rounds rank the whole population at the same iteration, and a trial "
                    "added now would start at iteration 0")
        return None

    # -- state ---------------------------------------------------------------------------------
    def describe_progress(self) -> str:
        return f"{self._exploits} exploit(s)"

    def state_dict(self):
        return {"queue": list(self._queue), "live": sorted(self._live),
                "latest": [[t, _enc(s)] for t, s in self._latest.items()],
                "configs": [[t, c] for t, c in self._configs.items()], "with_checkpoint": sorted(self._with_checkpoint),
                "last_perturbation": [[t, v] for t, v in self._last_perturbation.items()],
                "waiting": sorted(self._waiting), "released": list(self._released),
                "planned": [[t, d.checkpoint_of, d.config] for t, d in self._planned.items()],
                "exploits": self._exploits, "all_added": self._all_added, "rng": rng_to_json(self._rng)}

    def load_state_dict(self, state):
        self._queue = deque(state["queue"])
        self._live = set(state["live"])
        self._latest = {t: _dec(s) for t, s in state["latest"]}
        self._configs = {t: c for t, c in state["configs"]}
        self._with_checkpoint = set(state["with_checkpoint"])
        self._last_perturbation = {t: v for t, v in state["last_perturbation"]}
        self._waiting = set(state["waiting"])
        self._released = deque(state["released"])
        self._planned = {t: SchedulerDecision(Decision.CONTINUE, config=config, checkpoint_of=donor)
                         for t, donor, config in state["planned"]}
        self._exploits = state["exploits"]
        self._all_added = state.get("all_added", True)
        self._rng.bit_generator.state = rng_from_json(state["rng"])


def _enc(value: float):
    return None if value == -math.inf else value


def _dec(value) -> float:
    return -math.inf if value is None else value
