"""Optuna-backed searchers: the space mapping, distinct parallel suggestions, resume equal to an
uninterrupted run (snapshot and journal replay), a SIGKILL and resume on real ranks, and the errors."""
from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest

import hpctune
from hpctune.errors import SpecError
from hpctune.searchers import build_searcher
from hpctune.searchers._optuna_space import OptunaSpace, value_at
from hpctune.space import parse_space, sample_config
from hpctune.store import load_experiment

from conftest import NEEDS_TORCH
from sim_driver import SimDriver, make_controller
from simulated import default_metric, iterations_of, simulated

EVERY_DOMAIN = {
    "lr": {"loguniform": [1e-4, 1.0]},
    "drop": {"uniform": [0.0, 0.5]},
    "width": {"quniform": [16, 256, 16]},
    "decay": {"quniform": [0.0, 0.1, 0.025]},
    "batch": {"qloguniform": [8, 512, 1]},
    "warm": {"qloguniform": [1.0, 100.0, 0.5]},
    "layers": {"randint": [1, 5]},
    "act": {"choice": ["relu", "tanh", None, [1, 2], {"kind": "gelu"}]},
    "seed": {"grid": [0, 1]},
    "opt": {"name": {"choice": ["sgd", "adam"]}, "beta": {"uniform": [0.8, 0.99]}},
    "tag": "constant",
    "epochs": 3,
}


def test_every_domain_maps_onto_an_optuna_distribution_and_back():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    space = OptunaSpace(parse_space(EVERY_DOMAIN))
    d = space.distributions
    assert d["lr"] == FloatDistribution(1e-4, 1.0, log=True)
    assert d["drop"] == FloatDistribution(0.0, 0.5)
    assert d["width"] == IntDistribution(16, 256, step=16)
    assert d["decay"] == FloatDistribution(0.0, 0.1, step=0.025)
    assert d["batch"] == IntDistribution(8, 512, log=True)
    assert d["warm"] == FloatDistribution(1.0, 100.0, log=True)  # rounded to 0.5 afterwards
    assert d["layers"] == IntDistribution(1, 4)                    # randint's high is excluded
    assert d["act"] == CategoricalDistribution([0, 1, 2, 3, 4])    # positions: any value may be a choice
    assert d["opt/name"] == CategoricalDistribution([0, 1]) and d["opt/beta"] == FloatDistribution(0.8, 0.99)
    assert set(d) == {"lr", "drop", "width", "decay", "batch", "warm", "layers", "act", "opt/name", "opt/beta"}
    rng = np.random.default_rng(0)
    for _ in range(200):  # hpctune's own samples go to params and come back unchanged
        config = sample_config(parse_space(EVERY_DOMAIN), {}, rng)
        values = space.values_of(space.params_of(config))
        assert values == {name: value_at(config, name) for name in d}
        for name, value in space.params_of(config).items():
            assert d[name]._contains(d[name].to_internal_repr(value)), (name, value)


@pytest.mark.parametrize("searcher", ["tpe", pytest.param("gp", marks=NEEDS_TORCH), "cmaes", "qmc",
                                      {"type": "optuna", "sampler": "RandomSampler"}])
def test_every_suggestion_stays_in_its_domain(searcher):
    built = build_searcher(searcher)
    built.setup(parse_space(EVERY_DOMAIN), "loss", "min", num_samples=6, seed=3)
    configs = []
    for trial_id in range(12):
        config = built.suggest(trial_id)
        configs.append(config)
        built.on_trial_result(trial_id, {"loss": config["drop"] + config["layers"], "training_iteration": 1})
        built.on_trial_complete(trial_id, {"loss": 0.0})
    assert built.suggest(12) is hpctune.searchers.FINISHED  # 6 samples x a grid of 2
    assert [c["seed"] for c in configs] == [0, 1] * 6
    for config in configs:
        assert 1e-4 <= config["lr"] <= 1.0 and 0 <= config["drop"] <= 0.5
        assert config["width"] % 16 == 0 and 16 <= config["width"] <= 256 and isinstance(config["width"], int)
        assert abs(config["decay"] / 0.025 - round(config["decay"] / 0.025)) < 1e-9
        assert isinstance(config["batch"], int) and 8 <= config["batch"] <= 512
        assert config["warm"] % 0.5 == 0 and 1.0 <= config["warm"] <= 100.0
        assert config["layers"] in (1, 2, 3, 4)
        assert config["act"] in EVERY_DOMAIN["act"]["choice"]
        assert config["opt"]["name"] in ("sgd", "adam") and 0.8 <= config["opt"]["beta"] <= 0.99
        assert config["tag"] == "constant" and config["epochs"] == 3


def test_suggestions_for_many_idle_workers_at_once_differ():
    """16 asks with no result in between, after 20 finished trials (TPE past its random start-up):
    the constant liar keeps them apart."""
    searcher = build_searcher("tpe")
    space = parse_space({"x": {"uniform": [-5.0, 5.0]}, "y": {"uniform": [-5.0, 5.0]}})
    searcher.setup(space, "loss", "min", num_samples=100, seed=0)
    for trial_id in range(20):
        config = searcher.suggest(trial_id)
        searcher.on_trial_result(trial_id, {"loss": config["x"] ** 2 + config["y"] ** 2})
        searcher.on_trial_complete(trial_id, {})
    burst = [searcher.suggest(trial_id) for trial_id in range(20, 36)]
    points = {(round(c["x"], 6), round(c["y"], 6)) for c in burst}
    assert len(points) == 16
    assert min(np.hypot(a[0] - b[0], a[1] - b[1]) for a in points for b in points if a != b) > 1e-3


ASHA = {"type": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3}
SPACE = {"x": {"uniform": [0.0, 1.0]}, "y": {"loguniform": [0.01, 1.0]}, "epochs": 9}


@pytest.mark.parametrize("searcher", [{"type": "tpe", "n_startup_trials": 4}, "cmaes"])
def test_after_a_crash_resume_suggests_what_an_uninterrupted_run_suggests(tmp_path, searcher):
    """A snapshot, then events only in the journal, then a crash: the restored controller replays
    the journal (recorded configs, not new asks) and from then on every suggestion, and every
    decision, equals the uninterrupted run's."""
    reference = SimDriver(make_controller(tmp_path / "ref", ASHA, searcher=searcher, space=SPACE,
                                          num_samples=24), workers=3).start()
    assert reference.run()
    reference.controller.finalize()
    total = reference.events
    controller = make_controller(tmp_path / "a", ASHA, searcher=searcher, space=SPACE, num_samples=24)
    driver = SimDriver(controller, workers=3).start()
    assert not driver.run(max_events=total // 3)
    controller.store.flush()
    controller.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), "running")
    assert not driver.run(max_events=2 * total // 3)
    controller.store.flush()
    view = load_experiment(controller.store.folder)
    assert sum(record["k"] == "add" for record in view.records_after_snapshot) >= 3
    fresh = make_controller(tmp_path / "b", ASHA, searcher=searcher, space=SPACE, num_samples=24)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    shutil.copytree(controller.store.root / "trials", fresh.store.root / "trials", dirs_exist_ok=True)
    driver.resume_with(fresh)
    assert driver.run()
    fresh.finalize()
    assert len(fresh.trials) == 24
    assert {tid: t.config for tid, t in fresh.trials.items()} == \
        {tid: t.config for tid, t in reference.controller.trials.items()}
    assert driver.log == reference.log and driver.final_results() == reference.final_results()


def test_a_tpe_run_killed_and_resumed_on_mpi_ranks_keeps_every_recorded_config_and_finishes(tmp_path, run_cli):
    from conftest import kill_run, start_run, wait_until

    spec = tmp_path / "tpekill.yaml"
    spec.write_text("name: tpekill\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 12\n"
                    "space: {x: {uniform: [-2, 2]}, epochs: 6, sleep: 0.05}\n"
                    "searcher: {type: tpe, n_startup_trials: 3}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    folder = tmp_path / "runs" / "tpekill"
    process = start_run(spec, "spawn")
    try:
        # SIGKILL once TPE is past its start-up and trials run
        wait_until(folder, lambda run: len(run.trials) >= 6, "6 trials not started", timeout=120)
    finally:
        kill_run(spec)
        process.wait(timeout=30)
    before = hpctune.Analysis(folder)
    assert before.status == "interrupted"
    recorded = {int(t.trial_id): t["config/x"] for _, t in before.trials.iterrows()}
    done = run_cli("resume", str(folder), "--workers", "2")
    assert done.returncode == 0, done.stderr
    after = hpctune.Analysis(folder)
    assert after.status == "finished" and len(after.trials) == 12
    assert {tid: x for tid, x in zip(after.trials.trial_id, after.trials["config/x"]) if tid in recorded} == recorded
    for _, rows in after.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, 7))
    assert len(set(after.trials["config/x"])) == 12


@pytest.mark.parametrize("raw, message", [
    ({"type": "optuna", "sampler": "TurboSampler"}, "searcher.sampler: unknown Optuna sampler 'TurboSampler' (known: "),
    ({"type": "tpe", "n_startup": 3}, "searcher.n_startup: unknown option of TPESampler (known: seed, multi_fidelity, "
                                      "consider_prior, "),
    ({"type": "optuna", "sampler": "QMCSampler", "scrambled": True},
     "searcher.scrambled: unknown option of QMCSampler (known: seed, multi_fidelity, sampler, qmc_type, scramble, "
     "independent_sampler, warn_asynchronous_seeding, warn_independent_sampling)"),
    ({"type": "cmaes", "use_separable_cma": True, "with_margin": True},
     "searcher.use_separable_cma: CmaEsSampler: Currently, we do not support `use_separable_cma=True` and "
     "`with_margin=True`."),
    ({"type": "tpe", "sampler": "GPSampler"}, "searcher.sampler: 'tpe' always uses TPESampler; use type: optuna for another"),
    ({"type": "tpe", "seed": 3, "n_startup_trials": 2}, None),
])
def test_bad_searcher_options_are_one_line_naming_the_option(raw, message):
    if message is None:
        assert build_searcher(raw).describe() == raw
        return
    with pytest.raises(SpecError) as caught:
        build_searcher(raw)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


OBJECT_OPTIONS = {"independent_sampler", "constraints_func", "gamma", "weights", "source_trials", "mutation",
                  "crossover", "elite_population_selection_strategy", "child_generation_strategy",
                  "after_trial_strategy", "base_sampler", "reference_points"}
"""The options of Optuna's samplers that (also) take a Python object: a spec can give them null at most
(reference_points also takes a list of lists)."""


def test_every_option_of_every_optuna_sampler_has_a_type_the_checks_know():
    """A sampler option whose annotation the checks do not read would be refused whatever its value:
    each one is a plain type, a list, a mapping, or one of the known Python-object options."""
    import inspect

    import optuna

    from hpctune.searchers._optuna_options import annotation_kinds

    with_objects = set()
    for name in dir(optuna.samplers):
        sampler = getattr(optuna.samplers, name)
        if name.startswith("Base") or not (isinstance(sampler, type)
                                           and issubclass(sampler, optuna.samplers.BaseSampler)):
            continue
        for option, parameter in inspect.signature(sampler.__init__).parameters.items():
            if option in ("self", "seed") or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            assert isinstance(parameter.annotation, str), (name, option)
            if "object" in annotation_kinds(parameter.annotation):
                with_objects.add(option)
    assert with_objects == OBJECT_OPTIONS


def test_without_optuna_installed_the_error_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna -> ImportError
    with pytest.raises(SpecError) as caught:
        build_searcher("tpe")
    assert str(caught.value) == "searcher.type: needs Optuna, an optional extra: pip install 'hpctune[optuna]'"


def test_under_asha_every_rung_result_reaches_the_model_with_its_budget(tmp_path):
    """tpe + asha (rungs at 1, 3 and 9 iterations): each trial's value at each rung it reached is
    an observation at that budget; a trial stopped at rung 1 is not told as if it had finished."""
    simulation = simulated(tmp_path, ASHA, searcher={"type": "tpe", "n_startup_trials": 4}, space=SPACE,
                           num_samples=30, workers=3)
    assert simulation.outcome.status == "finished"
    controller = simulation.controller
    rungs = controller.searcher._rungs
    assert rungs is not None and rungs.attr == "training_iteration" and rungs.levels == [1, 3, 9]
    for level in (1, 3, 9):
        expected = {tid: default_metric(trial.config, level) for tid, trial in controller.trials.items()
                    if level in iterations_of(simulation)[tid]}
        assert rungs.values[level] == pytest.approx(expected)
    assert len(rungs.values[1]) == 30 > len(rungs.values[3]) > len(rungs.values[9]) >= 1
    assert rungs.min_points == 4  # max(2 dimensions + 2, n_startup_trials)


def test_the_model_is_fitted_on_the_highest_rung_with_enough_observations():
    from hpctune.searchers._fidelity import RungObservations

    space = OptunaSpace(parse_space(SPACE))
    rungs = RungObservations("training_iteration", [9, 1, 3], min_points=3)
    for tid in range(6):
        rungs.asked(tid, {"x": tid / 10, "y": 0.5})
    for tid in range(5):
        rungs.observe(tid, {"training_iteration": 1, "loss": 1.0}, 1.0 + tid)
    for tid in range(3):
        rungs.observe(tid, {"training_iteration": 3, "loss": 1.0}, 0.5 + tid)
    rungs.observe(0, {"training_iteration": 9}, 0.1)
    rungs.observe(1, {"training_iteration": 4}, 0.2)    # not a rung's budget: not an observation
    rungs.observe(2, {"training_iteration": 9}, float("nan"))
    assert rungs.fit_level() == 3 and rungs.values[9] == {0: 0.1}
    study = rungs.study_at(3, lambda: __import__("optuna").create_study(), space.distributions)
    finished = {t.params["x"]: t.value for t in study.trials if t.state.name == "COMPLETE"}
    assert finished == {0.0: 0.5, 0.1: 1.5, 0.2: 2.5}
    assert [t.params["x"] for t in study.trials if t.state.name == "RUNNING"] == [0.5]  # no result yet: pending
    rungs.observe(1, {"training_iteration": 9}, 0.2)
    rungs.observe(3, {"training_iteration": 9}, 0.3)
    assert rungs.fit_level() == 9


def test_for_tpe_the_trials_stopped_below_the_fitted_rung_rank_after_every_trial_observed_there():
    """The trials that reached rung 3 are the ones the scheduler promoted: fitted on them alone, TPE
    would call half of them bad and steer away from where they all are. Ranked, the trials stopped
    at rung 1 come after them, by value; every finished trial's value is its rank."""
    from hpctune.searchers._fidelity import RungObservations

    space = OptunaSpace(parse_space(SPACE))
    rungs = RungObservations("training_iteration", [1, 3, 9], min_points=3)
    for tid in range(6):
        rungs.asked(tid, {"x": tid / 10, "y": 0.5})
    for tid, value in enumerate([1.0, 2.0, 3.0, 5.0, 4.0]):
        rungs.observe(tid, {"training_iteration": 1}, value)
    for tid in range(3):
        rungs.observe(tid, {"training_iteration": 3}, 0.5 + tid)
    rungs.observe(0, {"training_iteration": 9}, 0.1)  # above the fitted rung: counted at 3
    import optuna

    def ranks(direction):
        study = rungs.study_at(3, lambda: optuna.create_study(), space.distributions, direction)
        assert [t.params["x"] for t in study.trials if t.state.name == "RUNNING"] == [0.5]  # pending
        return {round(t.params["x"] * 10): t.value for t in study.trials if t.state.name == "COMPLETE"}

    assert ranks(1) == {0: 0.0, 1: 1.0, 2: 2.0, 4: 3.0, 3: 4.0}         # smaller is better
    assert ranks(-1) == {2: 0.0, 1: -1.0, 0: -2.0, 3: -3.0, 4: -4.0}    # larger is better


def test_multi_fidelity_false_tells_each_trial_s_last_value_when_it_ends(tmp_path):
    """The way of a widely used peer: asha's stop variant ends trials at low rungs, and each is told
    with its last value as if it had run to the end."""
    simulation = simulated(tmp_path, {**ASHA, "stop_variant": True}, space=SPACE, num_samples=12,
                           searcher={"type": "tpe", "multi_fidelity": False}, workers=3)
    assert simulation.outcome.status == "finished"
    searcher = simulation.controller.searcher
    assert searcher._rungs is None
    told = [t for t in searcher._study.trials if t.state.name == "COMPLETE"]
    assert len(told) == 12  # every trial, stopped at a low rung or not, as if it had finished


def test_the_readme_example_tpe_asha_runs_as_a_user_runs_it(tmp_path, run_cli):
    """``hpctune run examples/tpe_asha.yaml``: the digits MLP under tpe + asha on 2 worker ranks,
    suggestions in the background: 64 distinct configs, asha's rungs promoting up to 27 epochs."""
    done = run_cli("run", "examples/tpe_asha.yaml", "--storage", str(tmp_path), "--workers", "2", timeout=300)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "tpe_asha")
    assert analysis.status == "finished" and len(analysis.trials) == 64
    assert set(analysis.trials.state) == {"TERMINATED"}
    assert analysis.trials["config/lr"].nunique() == 64
    reached = analysis.results.groupby("trial_id").training_iteration.max()
    assert set(reached) <= {1, 3, 9, 27} and (reached == 27).any() and (reached == 1).sum() > 32
