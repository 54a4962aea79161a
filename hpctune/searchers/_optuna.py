"""Searchers backed by Optuna's samplers (the optional extra ``hpctune[optuna]``, imported lazily).

``tpe`` (the HyperOpt algorithm of the Tune paper), ``gp``, ``cmaes``, ``qmc`` and ``optuna``
(any sampler of ``optuna.samplers`` by class name, ``{type: optuna, sampler: NSGAIISampler, ...}``)
drive an in-memory Optuna study through ask and tell: each suggestion is an ``ask`` with the
space's distributions (:mod:`hpctune.searchers._optuna_space`), each finished trial a ``tell``.
``grid`` domains stay hpctune's: they are crossed outside the sampler, as the random searcher
does, and ``num_samples`` repeats the grid.

Repeatable and resumable: each ask draws a fresh seed for the sampler from the searcher's own
generator (samplers whose sequence follows one seed, such as QMC, keep the experiment's), so what
the searcher suggests follows from its seed and the study's trials alone. Its state is those
trials (params, state, value, the sampler's system attributes), so a snapshot rebuilds the study,
and on resume a trial added after the snapshot is put back with the config the journal recorded
(:meth:`OptunaSearcher.replay_suggestion`), never asked again.
"""
from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np

from ..errors import SpecError
from ..space import Grid, GridPoints, sample_config
from ..rng_state import rng_from_json, rng_to_json
from ._base import FINISHED, SEARCHERS, Searcher, check_seed
from ._fidelity import RungObservations
from ._optuna_options import check_sampler_needs, check_sampler_options
from ._optuna_space import OptunaSpace

__all__ = ["OptunaSearcher", "TPESearcher", "GPSearcher", "CmaEsSearcher", "QMCSearcher"]

_ONE_SEED = {"QMCSampler", "GridSampler", "BruteForceSampler"}
"""Samplers whose suggestions form one sequence drawn from their seed: built once, never reseeded."""
_MODEL_SAMPLERS = {"TPESampler", "GPSampler"}
"""Samplers that fit a model on the study's finished trials and keep nothing else: under a
multi-fidelity scheduler they are fitted on one rung's observations (:mod:`._fidelity`)."""


def import_optuna(where: str = "type"):
    """``optuna``, quiet; a one-line :class:`SpecError` naming ``where`` (within ``searcher.``) when it is
    not installed."""
    try:
        import optuna
    except ImportError:
        raise SpecError(where, "needs Optuna, an optional extra: pip install 'hpctune[optuna]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@contextlib.contextmanager
def _quiet():
    """Optuna's ExperimentalWarning (QMCSampler, enqueue_trial, ...) is for Optuna's own users, not ours."""
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        yield


@SEARCHERS.register
class OptunaSearcher(Searcher):
    """Any Optuna sampler, by its class name in ``optuna.samplers``; other options go to it.

    Args:
        sampler: the sampler's class name (``TPESampler``, ``CmaEsSampler``, ``NSGAIISampler``, ...).
        seed: overrides the experiment's seed for this searcher.
        multi_fidelity: under ``asha``/``sha``/``hyperband``, fit TPE or GP on the highest rung with
            enough observations, each result at a rung kept with its budget (BOHB-style); false:
            tell each trial's last value when it ends, whatever budget it reached.
        **options: the sampler's own options (``n_startup_trials``, ``multivariate``, ...), except ``seed``.
    """

    name = "optuna"
    sampler_name: str | None = None  # set by the named searchers below
    fits_model = True  # under the MPI backend, suggestions are computed on a thread (hpctune.controller.suggestions)

    def __init__(self, *, sampler: str | None = None, seed: int | None = None, multi_fidelity: bool = True,
                 **options):
        optuna = import_optuna()
        name = self.sampler_name or sampler or "TPESampler"
        if sampler is not None and self.sampler_name is not None:
            raise SpecError("sampler", f"{self.name!r} always uses {self.sampler_name}; use type: optuna for another")
        known = sorted(n for n in dir(optuna.samplers) if n.endswith("Sampler") and not n.startswith("Base"))
        sampler_class = getattr(optuna.samplers, name, None) if isinstance(name, str) else None
        if not (isinstance(sampler_class, type) and issubclass(sampler_class, optuna.samplers.BaseSampler)):
            raise SpecError("sampler", f"unknown Optuna sampler {name!r} (known: {', '.join(known)})")
        if "seed" in options:
            raise SpecError("seed", "give the searcher's seed as searcher.seed (each ask reseeds the sampler)")
        check_seed(seed)
        if not isinstance(multi_fidelity, bool):
            raise SpecError("multi_fidelity", f"expected true or false, got {multi_fidelity!r}")
        own = ["seed", "multi_fidelity"] + (["sampler"] if self.sampler_name is None else [])
        check_sampler_options(sampler_class, options, own)
        check_sampler_needs(sampler_class, "type" if self.sampler_name is not None else "sampler")
        self._sampler_class, self._sampler_options = sampler_class, dict(options)
        self._seed_override = seed
        self._multi_fidelity = multi_fidelity
        with warnings.catch_warnings():  # Optuna's deprecation warnings come when the experiment's sampler is built
            warnings.simplefilter("ignore")
            self._build_sampler(0)  # what the checks above cannot see (options that exclude each other)

    def set_space(self, space):
        """``x0`` (CMA-ES's start) must give every numeric hyperparameter the sampler sees a value in its
        domain: CMA-ES asserts it at its first sample, a trial into the run."""
        x0 = self._sampler_options.get("x0")
        if x0 is None:
            return
        import_optuna()
        from optuna.distributions import CategoricalDistribution

        numeric = {name: distribution for name, distribution in OptunaSpace(space).distributions.items()
                   if not isinstance(distribution, CategoricalDistribution) and not distribution.single()}
        for name in x0:
            if name not in numeric:
                raise SpecError(f"searcher.x0.{name}", f"not a numeric hyperparameter of the space "
                                                       f"(numeric: {', '.join(numeric) or 'none'})")
        for name, distribution in numeric.items():
            if name not in x0:
                raise SpecError("searcher.x0", f"gives no value for {name!r} (CMA-ES needs one for each of: "
                                               f"{', '.join(numeric)})")
            value = x0[name]
            inside = not isinstance(value, bool) and isinstance(value, (int, float)) and (
                distribution.low <= value <= distribution.high)
            if not inside:
                raise SpecError(f"searcher.x0.{name}", f"expected a number in [{distribution.low}, "
                                                       f"{distribution.high}], got {value!r}")

    # -- set-up ----------------------------------------------------------------------------
    def setup(self, space, metric, mode, num_samples, seed):
        super().setup(space, metric, mode, num_samples, seed)
        optuna = import_optuna()
        seed = self._seed_override if self._seed_override is not None else seed
        self._experiment_seed = seed
        self._seeds = np.random.default_rng([seed, 0x0A7])
        self._points = GridPoints(space, lambda domain: isinstance(domain, Grid))
        self._space = OptunaSpace(space)
        self._count = 0
        self._numbers: dict[int, int] = {}   # hpctune trial id -> Optuna trial number
        self._last: dict[int, float] = {}    # trial id -> its latest value of the metric
        self._direction = "minimize" if mode == "min" else "maximize"
        self._study = optuna.create_study(direction=self._direction, sampler=self._build_sampler(seed))
        self._rungs: RungObservations | None = None

    def set_fidelity(self, attr, levels):
        if self._multi_fidelity and self._sampler_class.__name__ in _MODEL_SAMPLERS:
            startup = self._sampler_options.get("n_startup_trials", 10)
            self._rungs = RungObservations(attr, levels, min_points=max(len(self._space.distributions) + 2, startup))

    def _build_sampler(self, seed: int):
        try:
            with _quiet():
                return self._sampler_class(seed=seed, **self._sampler_options)
        except TypeError as exc:
            option = next((o for o in self._sampler_options if f"'{o}'" in str(exc)), None)
            where = option or "sampler"
            raise SpecError(where, f"{self._sampler_class.__name__}: {exc}") from None
        except ImportError as exc:  # e.g. GPSampler without torch, CmaEsSampler without cmaes
            raise SpecError("type", f"{self._sampler_class.__name__} needs {exc.name or exc}: "
                                    f"pip install {exc.name or 'it'}") from None
        except ValueError as exc:
            option = next((o for o in self._sampler_options if o in str(exc)), None)
            raise SpecError(option or "sampler", f"{self._sampler_class.__name__}: {exc}") from None

    def total_trials(self):
        return self.num_samples * self._points.size

    # -- suggestions -----------------------------------------------------------------------
    def suggest(self, trial_id):
        if self._count >= self.total_trials():
            return FINISHED
        self._next_sampler()
        study = self._study
        if self._rungs is not None:  # a fresh study of the rung the model is fitted on
            ranked = (1 if self._direction == "minimize" else -1) if self._sampler_class.__name__ == "TPESampler" else None
            study = self._rungs.study_at(self._rungs.fit_level(), self._new_study, self._space.distributions, ranked)
        with _quiet():
            trial = study.ask(self._space.distributions)
        if self._rungs is not None:
            self._rungs.asked(trial_id, trial.params)
        return self._config_of(trial_id, trial)

    def replay_suggestion(self, trial_id, config):
        """The trial got ``config`` before the stop: put it in the study as it was asked then."""
        if self._count >= self.total_trials():
            return
        self._next_sampler()
        if self._rungs is not None:
            self._rungs.asked(trial_id, self._space.params_of(config))
            self._count += 1
            return
        with _quiet():
            self._study.enqueue_trial(self._space.params_of(config), skip_if_exists=False)
            self._config_of(trial_id, self._study.ask(self._space.distributions))

    def _next_sampler(self) -> None:
        seed = int(self._seeds.integers(2 ** 31))  # drawn for every ask, replayed or not
        if self._sampler_class.__name__ not in _ONE_SEED:
            self._study.sampler = self._build_sampler(seed)

    def _new_study(self):
        import optuna

        return optuna.create_study(direction=self._direction, sampler=self._study.sampler)

    def _config_of(self, trial_id: int, trial) -> dict:
        point = self._points[self._count % self._points.size]
        self._count += 1
        self._numbers[trial_id] = trial.number
        return sample_config(self.space, {**point, **self._space.values_of(trial.params)}, self._seeds)

    # -- results -----------------------------------------------------------------------------
    def on_trial_result(self, trial_id, result):
        value = result.get(self.metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self._last[trial_id] = float(value)
            if self._rungs is not None:
                self._rungs.observe(trial_id, result, float(value))

    def on_trial_complete(self, trial_id, result, error=False):
        from optuna.trial import TrialState

        if self._rungs is not None:  # its results at the rungs are what the model learns from
            self._last.pop(trial_id, None)
            return
        number = self._numbers.pop(trial_id, None)  # told once (never study.trials: it copies them all)
        if number is None:
            return
        value = self._last.pop(trial_id, None)
        if error or value is None or not math.isfinite(value):
            self._study.tell(number, state=TrialState.FAIL)
        else:
            self._study.tell(number, value)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self):
        trials = [[trial_id, number] for trial_id, number in self._numbers.items()]
        study = [{"params": t.params, "state": t.state.name, "value": t.value,
                  "system_attrs": t.system_attrs} for t in self._study.get_trials(deepcopy=False)]
        return {"count": self._count, "seeds": rng_to_json(self._seeds), "numbers": trials, "study": study,
                "study_attrs": self._study._storage.get_study_system_attrs(self._study._study_id),  # QMC's count
                "last": [[trial_id, value] for trial_id, value in self._last.items()],
                **({"rungs": self._rungs.state_dict()} if self._rungs is not None else {})}

    def load_state_dict(self, state):
        from optuna.trial import TrialState, create_trial

        self._count = state["count"]
        self._seeds.bit_generator.state = rng_from_json(state["seeds"])
        self._numbers = {int(trial_id): int(number) for trial_id, number in state["numbers"]}
        self._last = {int(trial_id): float(value) for trial_id, value in state["last"]}
        if self._rungs is not None and "rungs" in state:
            self._rungs.load_state_dict(state["rungs"])
        for key, value in state.get("study_attrs", {}).items():
            self._study._storage.set_study_system_attr(self._study._study_id, key, value)
        for saved in state["study"]:
            self._study.add_trial(create_trial(
                state=TrialState[saved["state"]], params=saved["params"], distributions=self._space.distributions,
                value=saved["value"] if saved["state"] == "COMPLETE" else None,
                system_attrs=saved["system_attrs"]))


@SEARCHERS.register
class TPESearcher(OptunaSearcher):
    """Optuna's TPE (Tree-structured Parzen Estimator, the HyperOpt algorithm); ``constant_liar``
    is on, so that suggestions for many idle workers at once differ."""

    name = "tpe"
    sampler_name = "TPESampler"


@SEARCHERS.register
class GPSearcher(OptunaSearcher):
    """Optuna's Gaussian-process Bayesian optimisation (``GPSampler``; needs PyTorch)."""

    name = "gp"
    sampler_name = "GPSampler"


@SEARCHERS.register
class CmaEsSearcher(OptunaSearcher):
    """Optuna's CMA-ES (``CmaEsSampler``; needs the ``cmaes`` package)."""

    name = "cmaes"
    sampler_name = "CmaEsSampler"


@SEARCHERS.register
class QMCSearcher(OptunaSearcher):
    """Optuna's quasi-Monte Carlo sequence (``QMCSampler``: scrambled Sobol by default)."""

    name = "qmc"
    sampler_name = "QMCSampler"
