"""Resume replays recorded outcomes: a trial added after the last snapshot gets, on replay, the
config the journal recorded for it, never a new suggestion; a searcher that suggests again the
same (random, grid) ends where it was, so the run goes on as an uninterrupted one."""
from __future__ import annotations

import os
import shutil

import pytest

from hpctune.searchers import FINISHED, SEARCHERS, Searcher
from hpctune.store import load_experiment

from sim_driver import SimDriver, make_controller

SPACE = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": 9}


ASHA = {"type": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3}


def _crash_and_resume(tmp_path, searcher: str, space: dict, snapshot_at: int, crash_at: int):
    """Run to event ``snapshot_at``, snapshot, run on to ``crash_at`` (journal only), then restore a
    fresh controller from the folder as ``hpctune resume`` does. Returns (driver, old, fresh)."""
    controller = make_controller(tmp_path / "a", ASHA, searcher=searcher, space=space, num_samples=10)
    driver = SimDriver(controller, workers=3).start()
    assert not driver.run(max_events=snapshot_at)
    controller.store.flush()
    controller.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), "running")
    assert not driver.run(max_events=crash_at)
    controller.store.flush()
    view = load_experiment(controller.store.folder)
    assert any(record["k"] == "add" for record in view.records_after_snapshot)  # trials added after it
    fresh = make_controller(tmp_path / "b", ASHA, searcher=searcher, space=space, num_samples=10)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    shutil.copytree(controller.store.root / "trials", fresh.store.root / "trials", dirs_exist_ok=True)
    return driver, controller, fresh


@pytest.fixture
def entropy_searcher():
    """A searcher that suggests from the operating system's entropy, never the same twice whatever
    its state; defined (so registered) for one test only: the registry's coverage test sees hpctune's."""

    class EntropySearcher(Searcher):
        name = "test-entropy"

        def __init__(self):
            pass

        def suggest(self, trial_id):
            if trial_id >= self.num_samples:
                return FINISHED
            x, y = (int.from_bytes(os.urandom(4), "little") / 2 ** 32 for _ in range(2))
            return {"x": x, "y": y, "epochs": 9}

    yield EntropySearcher.name
    del SEARCHERS._classes[EntropySearcher.name]


def test_replay_gives_each_trial_the_config_the_journal_recorded_even_from_a_searcher_that_never_repeats(
        tmp_path, entropy_searcher):
    driver, old, fresh = _crash_and_resume(tmp_path, entropy_searcher, SPACE, snapshot_at=5, crash_at=15)
    assert len(old.trials) > len(load_experiment(old.store.folder).restored_trials())
    assert {tid: trial.config for tid, trial in fresh.trials.items()} == \
        {tid: trial.config for tid, trial in old.trials.items()}


@pytest.mark.parametrize("searcher", ["random", "grid"])
def test_after_a_replay_a_deterministic_searcher_goes_on_as_an_uninterrupted_run(tmp_path, searcher):
    space = SPACE if searcher == "random" else {"x": {"grid": [0.1, 0.5, 0.9]}, "y": {"choice": [0.2, 0.4]},
                                                 "epochs": 9}
    reference = SimDriver(make_controller(tmp_path / "ref", ASHA, searcher=searcher, space=space,
                                          num_samples=10), workers=3).start()
    assert reference.run()
    reference.controller.finalize()
    total = reference.events
    driver, _, fresh = _crash_and_resume(tmp_path, searcher, space, snapshot_at=total // 4, crash_at=total // 2)
    driver.resume_with(fresh)
    assert driver.run()
    fresh.finalize()
    assert {tid: trial.config for tid, trial in fresh.trials.items()} == \
        {tid: trial.config for tid, trial in reference.controller.trials.items()}
    assert driver.final_results() == reference.final_results()
