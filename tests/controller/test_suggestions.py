"""A model-based searcher's suggestions are computed off the path of results (hpctune.controller.suggestions):
under the MPI backend no result waits on a model fit, the searcher still hears every result in
order before its next suggestion, and a suggestion made before a snapshot or a crash is the one
the trial gets after a resume."""
from __future__ import annotations

import os
import shutil
import time

import pytest

import hpctune
from hpctune.enums import Decision, SegmentEnd, TrialState
from hpctune.searchers import FINISHED, SEARCHERS, Searcher
from hpctune.store import load_experiment

from sim_driver import SimDriver, make_controller

SPACE = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": 9}
ASHA = {"type": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3}


@pytest.fixture
def slow_model():
    """A searcher class whose suggestions take ``fit_s`` seconds and come from the operating
    system's entropy (never reproducible from its state), logging what it hears; registered for
    one test only (the registry's coverage test sees hpctune's own). With ``epochs_step``, trial k
    runs ``epochs_step * k`` more epochs than the space says, so that no two trials end together."""

    class SlowModel(Searcher):
        name = "test-slow-model"
        fits_model = True

        def __init__(self, *, fit_s: float = 0.2, background: bool = True, epochs_step: int = 0):
            self.fit_s = fit_s
            self.epochs_step = epochs_step
            self.fits_model = background
            self.heard: list = []

        def suggest(self, trial_id):
            if trial_id >= self.num_samples:
                return FINISHED
            time.sleep(self.fit_s)
            self.heard.append(("suggest", trial_id))
            x, y = (int.from_bytes(os.urandom(4), "little") / 2 ** 32 for _ in range(2))
            constants = {key: value for key, value in self.space.items() if isinstance(value, (int, float))}
            if self.epochs_step:
                constants["epochs"] += self.epochs_step * trial_id
            return {**constants, "x": x, "y": y}

        def replay_suggestion(self, trial_id, config):
            self.heard.append(("replay", trial_id))

        def on_trial_result(self, trial_id, result):
            self.heard.append(("result", trial_id, result["training_iteration"]))

        def on_trial_complete(self, trial_id, result, error=False):
            self.heard.append(("complete", trial_id))

    yield SlowModel
    del SEARCHERS._classes[SlowModel.name]


def _background_controller(folder, searcher, num_samples=6, scheduler=ASHA):
    controller = make_controller(folder, scheduler, searcher=searcher, space=SPACE, num_samples=num_samples)
    controller.suggest_in_background()
    return controller


def _wait_ready(controller, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not controller.suggestion_ready:
        assert time.monotonic() < deadline, "no suggestion within 10 s"
        time.sleep(0.005)


def test_a_result_is_answered_while_the_next_suggestion_is_computed_and_the_searcher_hears_it_before_the_next(
        tmp_path, slow_model):
    controller = _background_controller(tmp_path, slow_model(fit_s=0.5), scheduler="fifo")
    searcher = controller.searcher  # built from the description, as a spec's would be
    controller.on_workers_joined(1)
    assert controller.take_launches() == [] and not controller.is_finished  # trial 0 is being suggested
    _wait_ready(controller)
    controller.on_suggestion()
    (launch,) = controller.take_launches()
    controller.placed(launch.trial_id, [1])
    controller.on_workers_joined(1)  # a second rank: trial 1 is asked for, 0.5 s of fitting
    started = time.monotonic()
    decision = controller.on_result(0, {"training_iteration": 1, "loss": 0.5})
    answered = time.monotonic() - started
    assert answered < 0.25, f"the result waited {answered:.2f} s for the model fit"
    assert decision == Decision.CONTINUE and not controller.suggestion_ready
    assert ("result", 0, 1) not in searcher.heard  # queued: the searcher is busy suggesting trial 1
    _wait_ready(controller)
    controller.on_suggestion()
    assert [launch.trial_id for launch in controller.take_launches()] == [1]
    controller.placed(1, [2])
    controller.on_result(0, {"training_iteration": 2, "loss": 0.4})
    controller.on_segment_end(0, SegmentEnd.COMPLETED)  # frees a rank: trial 2 is asked for
    _wait_ready(controller)
    assert searcher.heard == [("suggest", 0), ("suggest", 1), ("result", 0, 1), ("result", 0, 2),
                              ("complete", 0), ("suggest", 2)]
    kinds = [record["k"] for record in _records(controller)]
    assert kinds.count("add") == 2  # trial 2 joins only when the backend takes its suggestion


def _records(controller):
    controller.store.flush()
    return load_experiment(controller.store.folder).records_after_snapshot


def test_a_suggestion_made_before_a_snapshot_goes_to_its_trial_after_a_resume(tmp_path, slow_model):
    controller = _background_controller(tmp_path / "a", slow_model(fit_s=0.01))
    controller.on_workers_joined(1)
    _wait_ready(controller)  # trial 0's config exists, no trial has it yet
    controller.store.flush()
    state = controller.state_dict()
    suggested = state["pending_suggestion"]
    assert suggested["trial"] == 0
    controller.store.write_snapshot(state, [], "running")
    view = load_experiment(controller.store.folder)
    fresh = make_controller(tmp_path / "b", ASHA, searcher=slow_model(fit_s=0.01), space=SPACE, num_samples=6)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    fresh.on_workers_joined(1)
    (launch,) = fresh.take_launches()
    assert launch.trial_id == 0 and launch.task.config == suggested["config"]
    assert fresh.searcher.heard == []  # its state already held the suggestion: it is not asked again


def test_a_run_with_background_suggestions_resumes_with_every_recorded_config_in_its_place(tmp_path, slow_model):
    """The journal says where each trial joined (its add record), whenever its suggestion was
    computed: replay puts every trial there, with its recorded config, and the experiment goes on."""
    controller = _background_controller(tmp_path / "a", slow_model(fit_s=0.002), num_samples=10)
    driver = SimDriver(controller, workers=3).start()
    assert not driver.run(max_events=12)
    controller.store.flush()
    view = load_experiment(controller.store.folder)
    assert sum(record["k"] == "add" for record in view.records_after_snapshot) >= 4
    fresh = make_controller(tmp_path / "b", ASHA, searcher=slow_model(fit_s=0.002), space=SPACE, num_samples=10)
    fresh.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    shutil.copytree(controller.store.root / "trials", fresh.store.root / "trials", dirs_exist_ok=True)
    assert {tid: t.config for tid, t in fresh.trials.items()} == {tid: t.config for tid, t in controller.trials.items()}
    lost = {tid for tid, t in controller.trials.items() if t.state.name == "RUNNING"}
    assert {tid: (t.state, t.iteration) for tid, t in fresh.trials.items() if tid not in lost} == \
        {tid: (t.state, t.iteration) for tid, t in controller.trials.items() if tid not in lost}
    fresh.suggest_in_background()
    driver.resume_with(fresh)
    assert driver.run()
    fresh.finalize()
    assert len(fresh.trials) == 10  # asha leaves the trials it did not promote paused at their rung
    assert fresh.counts[TrialState.RUNNING] == fresh.counts[TrialState.PENDING] == 0
    assert fresh.counts[TrialState.TERMINATED] >= 1


@pytest.mark.parametrize("background", [True, False])
def test_on_mpi_ranks_no_result_waits_on_a_model_fit(tmp_path, slow_model, background):
    """Two trials on two worker ranks while the searcher takes 1.5 s per suggestion: computed in
    the background, a trial's report is answered in well under that; asked inline (the contrast,
    what the background thread prevents), some report waits through a whole fit. The trials run
    14, 21 and 28 epochs: when trial 0 ends, trial 1 is still reporting while the third is suggested
    (trials that ended together would leave no report to wait, inline or not)."""
    from trainable_fixtures import reports_waits

    analysis = hpctune.run(reports_waits, space={"x": hpctune.uniform(0, 1), "epochs": 14, "sleep": 0.1},
                           metric="loss", num_samples=3, searcher=slow_model(fit_s=1.5, background=background, epochs_step=7),
                           storage=str(tmp_path), name="waits", backend="mpi", workers=2, verbose=0)
    assert analysis.status == "finished" and list(analysis.trials.state) == ["TERMINATED"] * 3
    assert sorted(analysis.results.groupby("trial_id").training_iteration.max()) == [14, 21, 28]
    longest = analysis.results.waited.max()
    if background:
        assert longest < 0.5, f"a report waited {longest:.2f} s"
    else:
        assert longest > 1.0, f"inline, the longest wait was only {longest:.2f} s"
