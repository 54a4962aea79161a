"""Population based training (Jaderberg et al., 2017, "Population Based Training of Neural Networks").

The trials of the experiment are the population; they train side by side. Every
``perturbation_interval`` (in ``time_attr`` units) a trial is ranked against the others by its
latest result. One in the bottom ``quantile_fraction`` *exploits* a trial of the top quantile: it
goes on from that trial's newest checkpoint (never its own older one) with that trial's
hyperparameters, *explored*: each mutable hyperparameter is resampled from its domain with
``resample_probability``, else a number is multiplied by one of ``perturbation_factors`` (0.8 or
1.2) and kept in its bounds, and a ``choice``/``grid`` value moves to a neighbour in its list. A
trial with no checkpoint yet is never a donor. A recipient's next ranking counts from the donor's
last one (its weights come from there), not from its own.

Asynchronous (the default): each trial is ranked when it reaches its interval, against the latest
results of the others. With fewer workers than trials the population time-shares the workers at
the intervals (the PBT paper's asynchronous setting): a trial that reaches its interval while a
member waits for a worker that has trained no further (or while the searcher may still add one)
pauses there, and the least-trained waiting member (by ``time_attr``) runs next; so no trial is
ranked against, or copies, members far ahead of it. A pause comes with a checkpoint: a trial whose
results carry none is asked for one (``hpctune.checkpoint_requested()``) at the result before its
interval, and one that still reports without pauses at its first later result that has one. Until
the searcher says it has no more trials, a trial at its interval pauses to let a new member start;
with as many workers as trials that happens at the first interval only (the trial that paused
runs again at once).

Synchronous (``synch: true``): every trial pauses at each interval; when the
whole population has arrived, the bottom quantile exploits the top one, and all go on (the round
of the PBT paper's Figure 1; with fewer workers than trials this also time-slices the population).
A round's recipients start first, each from its donor's checkpoint of that round; a donor that
arrived last pauses too, so that it does not train on before they have copied it.

The exploit itself is the controller's (:class:`~hpctune.schedulers.SchedulerDecision`): the
donor's checkpoint is copied into the recipient's folder at once, so the donor may go on and
delete its own. A custom explore step: subclass and override :meth:`PopulationBasedTraining.explore`
(with a ``name`` of its own, so a resumed experiment builds it again).

Ranking costs O(n log n) in the live trials at each perturbation (not at every result), choosing
the next trial O(n) in the waiting ones: PBT populations are tens to hundreds of trials.
"""
from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Mapping

import numpy as np

from ..enums import Decision
from ..errors import SpecError
from ..space import Domain, flatten, unflatten
from ..rng_state import rng_from_json, rng_to_json
from ..trial import Trial
from ._base import SCHEDULERS, Scheduler, SchedulerDecision
from ._pbt_explore import explored_value
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
        _check_range("perturbation_interval", perturbation_interval, "> 0", lambda v: v > 0)
        _check_range("quantile_fraction", quantile_fraction, "in (0, 0.5]", lambda v: 0 < v <= 0.5)
        _check_range("resample_probability", resample_probability, "in [0, 1]", lambda v: 0 <= v <= 1)
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
        self._time: dict[int, float] = {}          # live trial -> how far it trained (time_attr; a copy's: the donor's)
        self._checkpoint_time: dict[int, float] = {}  # trial -> time_attr of the result with its newest checkpoint
        self._parked: dict[int, None] = {}         # async: paused at an interval for a waiting member, oldest first
        self._pause_at_checkpoint: set[int] = set()  # async: to pause at its next result with a checkpoint
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
        previous = self._time.get(tid)
        self._time[tid] = now
        self._parked.pop(tid, None)  # it runs
        self._latest[tid] = self.score(result)
        self._configs[tid] = trial.config
        if trial.checkpoint is not None:  # the controller took this result's checkpoint first
            self._with_checkpoint.add(tid)
        carries_checkpoint = trial.checkpoint is not None and trial.checkpoint_iteration == trial.iteration
        if carries_checkpoint:
            self._checkpoint_time[tid] = now
        last = self._last_perturbation.setdefault(tid, 0.0)
        if now - last < self.perturbation_interval:
            return self._before_interval(tid, now, previous, last, carries_checkpoint)
        self._last_perturbation[tid] = now
        if self.synch:
            return self._arrive(tid)
        return self._at_interval(tid, now, carries_checkpoint)

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
            self._queue.popleft()  # it starts now: no longer a member waiting for a worker
            return trial
        if not self.synch:
            return self._least_trained_parked(trials)
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
                flat[name] = explored_value(flat[name], domain, rng, config, self.resample_probability,
                                            self.perturbation_factors)
        return unflatten(flat)

    def _population(self) -> dict[int, float]:
        return {tid: score for tid, score in self._latest.items() if tid in self._live}

    def _donor(self, upper: list[int], exclude: int) -> int | None:
        """A trial of the top quantile with a checkpoint (never one without), at random."""
        donors = [tid for tid in upper if tid != exclude and tid in self._with_checkpoint]
        if not donors:
            return None
        return donors[int(self._rng.integers(len(donors)))]

    def _exploit(self, recipient: int, donor: int) -> SchedulerDecision:
        """``recipient`` goes on from ``donor``'s newest checkpoint with its explored config; it has
        trained as far as that checkpoint, and its next ranking counts from the donor's last one."""
        self._exploits += 1
        config = self.explore(self._configs[donor], self._rng)
        self._configs[recipient] = config
        self._last_perturbation[recipient] = self._last_perturbation.get(donor, 0.0)
        self._time[recipient] = self._checkpoint_time.get(donor, self._time.get(donor, 0.0))
        return SchedulerDecision(Decision.CONTINUE, config=config, checkpoint_of=donor)

    def _forget(self, tid: int) -> None:
        self._live.discard(tid)
        self._latest.pop(tid, None)
        self._configs.pop(tid, None)
        self._with_checkpoint.discard(tid)
        self._time.pop(tid, None)
        self._checkpoint_time.pop(tid, None)
        self._parked.pop(tid, None)
        self._pause_at_checkpoint.discard(tid)
        self._waiting.discard(tid)
        self._planned.pop(tid, None)
        if self._round_complete():  # it was the one the others waited for
            self._complete_round()

    def _before_interval(self, tid: int, now: float, previous: float | None, last: float,
                         carries_checkpoint: bool) -> Decision | SchedulerDecision:
        """Between two intervals: a trial due to pause pauses at its first result with a checkpoint;
        one whose results carry none is asked for one with its result that reaches the interval
        (one step of ``time_attr`` as its last), where it may pause."""
        if tid in self._pause_at_checkpoint and carries_checkpoint:
            return self._pause_if_others_wait(tid, now)
        step = None if previous is None else now - previous
        if not carries_checkpoint and step is not None and now + step - last >= self.perturbation_interval:
            return SchedulerDecision(Decision.CONTINUE, checkpoint_now=True)
        return Decision.CONTINUE

    # -- asynchronous: sharing the workers at the intervals ------------------------------------
    def _at_interval(self, tid: int, now: float, carries_checkpoint: bool) -> Decision | SchedulerDecision:
        """Rank ``tid`` (at its interval): one of the bottom quantile exploits a top one; then it
        pauses if a member waits for a worker (with a checkpoint: the copy, its own, or its next)."""
        self._pause_at_checkpoint.discard(tid)
        lower, upper = self.quantiles(self._population())
        donor = self._donor(upper, exclude=tid) if tid in lower else None
        if donor is not None:
            decision = self._exploit(tid, donor)
            if not self._others_wait(self._time[tid]):
                return decision  # it goes on from the copy at once
            self._parked[tid] = None  # it waits, the copy its newest checkpoint
            return SchedulerDecision(Decision.PAUSE, config=decision.config, checkpoint_of=donor)
        if not self._others_wait(now):
            return Decision.CONTINUE
        if carries_checkpoint:
            self._parked[tid] = None
            return Decision.PAUSE
        self._pause_at_checkpoint.add(tid)  # pausing now would lose what it trained since its last one
        return SchedulerDecision(Decision.CONTINUE, checkpoint_now=True)

    def _pause_if_others_wait(self, tid: int, now: float) -> Decision:
        self._pause_at_checkpoint.discard(tid)
        if not self._others_wait(now):
            return Decision.CONTINUE
        self._parked[tid] = None
        return Decision.PAUSE

    def _others_wait(self, now: float) -> bool:
        """A member of the population waits for a worker and has trained no further than ``now``:
        one the searcher may still add, one added and never started, or one paused at an interval."""
        if not self._all_added or self._queue:
            return True
        return any(self._time[tid] <= now for tid in self._parked)

    def _least_trained_parked(self, trials: Mapping[int, Trial]) -> Trial | None:
        """The paused member that has trained least (the longest waiting of equals), once the
        searcher has added every member (before, a new one, which has trained least, starts)."""
        if not self._all_added:
            return None
        chosen = None
        for tid in list(self._parked):  # oldest first: ties go to the one that waited longest
            trial = trials.get(tid)
            if trial is None or trial.state.is_finished:
                del self._parked[tid]
            elif self.is_runnable(trial) and (chosen is None or self._time[tid] < self._time[chosen]):
                chosen = tid  # one still running (pausing) waits until it has ended
        if chosen is None:
            return None
        del self._parked[chosen]
        return trials[chosen]

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
                "time": [[t, v] for t, v in self._time.items()],
                "checkpoint_time": [[t, v] for t, v in self._checkpoint_time.items()],
                "parked": list(self._parked), "pause_at_checkpoint": sorted(self._pause_at_checkpoint),
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
        self._time = {t: v for t, v in state.get("time", ())}
        self._checkpoint_time = {t: v for t, v in state.get("checkpoint_time", ())}
        self._parked = dict.fromkeys(state.get("parked", ()))
        self._pause_at_checkpoint = set(state.get("pause_at_checkpoint", ()))
        self._waiting = set(state["waiting"])
        self._released = deque(state["released"])
        self._planned = {t: SchedulerDecision(Decision.CONTINUE, config=config, checkpoint_of=donor)
                         for t, donor, config in state["planned"]}
        self._exploits = state["exploits"]
        self._all_added = state.get("all_added", True)
        self._rng.bit_generator.state = rng_from_json(state["rng"])


def _check_range(name: str, value, bounds: str, inside) -> None:
    """One message for a value out of range, on either side: ``must be <bounds>, got <value>``."""
    check_number(name, value, -math.inf)  # a finite number
    if not inside(value):
        raise SpecError(name, f"must be {bounds}, got {value}")


def _enc(value: float):
    return None if value == -math.inf else value


def _dec(value) -> float:
    return -math.inf if value is None else value
