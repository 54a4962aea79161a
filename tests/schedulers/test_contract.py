"""One contract for every registered scheduler and for the searchers: lifecycle and state round trip.

Each case drives the real Controller (real ExperimentStore in tmp_path) with the
synthetic driver of ``tests/sim_driver.py``.
"""
from __future__ import annotations

import inspect
import json
import shutil

import pytest

from hpctune.errors import SpecError
from hpctune.schedulers import SCHEDULERS, build_scheduler
from hpctune.searchers import SEARCHERS
from hpctune.store import load_experiment

from conftest import NEEDS_TORCH
from sim_driver import SimDriver, json_round_trip, make_controller, restored_controller

SCHEDULER_CASES = {
    "fifo": "fifo",
    "sha": {"type": "sha", "grace_period": 1, "max_t": 9, "reduction_factor": 3},
    "asha": {"type": "asha", "grace_period": 1, "max_t": 9, "reduction_factor": 3},
    "asha-brackets2": {"type": "asha", "max_t": 9, "brackets": 2},
    "asha-stop": {"type": "asha", "max_t": 9, "stop_variant": True},
    "hyperband": {"type": "hyperband", "max_t": 9, "reduction_factor": 3},
    "median": {"type": "median", "grace_period": 2, "min_samples_required": 3},
    "pbt": {"type": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5},
    "pbt-synch": {"type": "pbt", "perturbation_interval": 3, "synch": True},
}
LINEAGE = ("pbt",)
"""Schedulers whose trials go on from other trials' checkpoints: their iterations continue the donor's."""
SEARCHER_CASES = {
    "random": "random",
    "grid": "grid",
    "tpe": {"type": "tpe", "n_startup_trials": 4},
    "gp": {"type": "gp", "n_startup_trials": 4},
    "cmaes": "cmaes",
    "qmc": "qmc",
    "optuna": {"type": "optuna", "sampler": "NSGAIISampler", "population_size": 4},
}
GRID_SPACE = {"x": {"grid": [0.1, 0.3, 0.5, 0.9]}, "y": {"choice": [0.0, 0.5, 1.0]}, "epochs": 9}


def _kind(case) -> str:
    return case if isinstance(case, str) else case["type"]


def _built_in(registry) -> set[str]:
    """The names hpctune registers itself (test modules register schedulers of their own when imported)."""
    return {name for name in registry.names() if registry.get(name).__module__.startswith("hpctune.")}


def test_every_registered_scheduler_and_searcher_is_covered():
    assert {_kind(c) for c in SCHEDULER_CASES.values()} == _built_in(SCHEDULERS)
    assert set(SEARCHER_CASES) == _built_in(SEARCHERS)


def _cases():
    for name, scheduler in SCHEDULER_CASES.items():
        yield pytest.param(scheduler, "random", None, id=f"{name}+random")
    for name, searcher in SEARCHER_CASES.items():
        marks = [NEEDS_TORCH] if name == "gp" else []
        yield pytest.param("fifo", searcher, GRID_SPACE, id=f"fifo+{name}-gridspace", marks=marks)
        yield pytest.param(SCHEDULER_CASES["asha"], searcher, GRID_SPACE, id=f"asha+{name}-gridspace", marks=marks)


def _check_lifecycle(driver: SimDriver, status: str) -> None:
    controller = driver.controller
    assert controller.is_finished
    assert status == "finished"
    assert controller.trials, "no trial ran"
    for trial in controller.trials.values():
        assert trial.state.name in ("TERMINATED", "ERROR"), (trial.trial_id, trial.state, trial.end_reason)
    if controller.scheduler.name in LINEAGE:
        return  # a trial's iterations go on from its donors' (tests/schedulers/test_pbt.py)
    for trial_id, iterations in driver.iterations().items():
        assert iterations == list(range(1, len(iterations) + 1)), (trial_id, iterations)
        assert controller.trials[trial_id].iteration == iterations[-1]
    for trial_id, rank, start in driver.launches:
        assert start == 0 or start in driver.iterations()[trial_id], "resumed from a checkpoint it never reported"


@pytest.mark.parametrize("workers", [2, 3, 5])
@pytest.mark.parametrize("scheduler,searcher,space", list(_cases()))
def test_lifecycle(tmp_path, scheduler, searcher, space, workers):
    controller = make_controller(tmp_path, scheduler, searcher, space=space)
    driver = SimDriver(controller, workers=workers).start()
    assert driver.run()
    _check_lifecycle(driver, controller.finalize())
    # the store holds the same, contiguous iterations (read back as a reader does: snapshot, parts, journal)
    controller.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), "finished")
    columns = load_experiment(controller.store.folder).results
    stored: dict[int, list] = {}
    for trial_id, iteration in zip(columns["trial_id"], columns["training_iteration"]):
        stored.setdefault(trial_id, []).append(iteration)
    assert stored == driver.iterations()


@pytest.mark.parametrize("scheduler,searcher,space", list(_cases()))
def test_lifecycle_with_pauses_in_flight(tmp_path, scheduler, searcher, space):
    """Segment ends arrive after other workers' events, as on real ranks."""
    controller = make_controller(tmp_path, scheduler, searcher, space=space)
    driver = SimDriver(controller, workers=4, end_delay=0.25).start()
    assert driver.run()
    _check_lifecycle(driver, controller.finalize())


@pytest.mark.parametrize("scheduler,searcher,space", list(_cases()))
def test_state_round_trip(tmp_path, scheduler, searcher, space):
    kwargs = {"scheduler": scheduler, "searcher": searcher, "space": space}
    reference = SimDriver(make_controller(tmp_path / "a", **kwargs), workers=3).start()
    assert reference.run()
    reference.controller.finalize()
    total = reference.events
    for cut in (total // 4, total // 2, 3 * total // 4):
        driver = SimDriver(make_controller(tmp_path / f"b{cut}", **kwargs), workers=3).start()
        assert not driver.run(max_events=cut)
        old = driver.controller
        state = old.state_dict()
        # strict JSON: no NaN/Infinity, no tuples or int keys surviving the trip
        json.dumps(old.scheduler.state_dict(), allow_nan=False)
        json.dumps(old.searcher.state_dict(), allow_nan=False)
        assert json_round_trip(old.scheduler.state_dict()) == old.scheduler.state_dict()
        fresh = restored_controller(tmp_path / f"c{cut}", state, list(old.trials.values()), **kwargs)
        # the checkpoints too, as a resumed experiment has them (PBT copies them)
        shutil.copytree(old.store.root / "trials", fresh.store.root / "trials", dirs_exist_ok=True)
        assert fresh.scheduler is not old.scheduler and fresh.searcher is not old.searcher
        assert fresh.scheduler.state_dict() == json_round_trip(old.scheduler.state_dict())
        driver.resume_with(fresh)
        assert driver.run()
        status = fresh.finalize()
        _check_lifecycle(driver, status)
        assert driver.log == reference.log, f"decisions differ after a restore at event {cut}"
        assert driver.final_results() == reference.final_results()
        assert fresh.scheduler.describe_progress() == reference.controller.scheduler.describe_progress()


@pytest.mark.parametrize("scheduler,searcher,space", list(_cases()))
def test_errors_still_finish(tmp_path, scheduler, searcher, space):
    controller = make_controller(tmp_path, scheduler, searcher, space=space)
    failing = {(1, 1), (4, 1), (6, 2)}
    driver = SimDriver(controller, workers=3, fail=failing).start()
    assert driver.run()
    _check_lifecycle(driver, controller.finalize())
    errored = {t for t, trial in controller.trials.items() if trial.state.name == "ERROR"}
    assert {1, 4} <= errored <= {1, 4, 6}


@pytest.mark.parametrize("scheduler,searcher,space", list(_cases()))
def test_retried_failure_resumes_from_checkpoint(tmp_path, scheduler, searcher, space):
    controller = make_controller(tmp_path, scheduler, searcher, space=space, max_failures=1)
    driver = SimDriver(controller, workers=3, fail={(0, 1), (2, 1)}).start()
    assert driver.run()
    _check_lifecycle(driver, controller.finalize())
    assert all(trial.state.name == "TERMINATED" for trial in controller.trials.values())


@pytest.mark.parametrize("case", [c for c in SCHEDULER_CASES.values() if c != "fifo"])
def test_bad_options_name_the_option(case):
    kind = _kind(case)
    bad = {"time_attr": "", "grace_period": -1, "reduction_factor": 1, "max_t": 0, "brackets": 0,
           "min_samples_required": 0, "stop_variant": "yes"}
    params = inspect.signature(type(build_scheduler(kind)).__init__).parameters
    for option, value in bad.items():
        if option not in params:
            continue
        try:
            build_scheduler({"type": kind, option: value})
        except SpecError as error:
            assert error.where == f"scheduler.{option}"
            assert "\n" not in error.what
        else:
            pytest.fail(f"{kind} accepted {option}={value!r}")
