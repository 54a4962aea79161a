"""Population based training: quantiles, explore within every domain, exploit from the newest
checkpoint of a donor that has one (on the simulator and the synthetic driver), and its options."""
from __future__ import annotations

import json

import numpy as np
import pytest

from hpctune.errors import SpecError
from hpctune.schedulers import PopulationBasedTraining, build_scheduler
from hpctune.space import parse_space

from sim_driver import SimDriver, make_controller
from simulated import launches_of, simulated


def _pbt(space: dict | None = None, **options) -> PopulationBasedTraining:
    pbt = PopulationBasedTraining(**options)
    pbt.set_space(parse_space(space or {"x": {"uniform": [0, 1]}}))
    pbt.setup("loss", "min", seed=0)
    return pbt


@pytest.mark.parametrize("scores, fraction, bottom, top", [
    ({t: float(t) for t in range(8)}, 0.25, [0, 1], [6, 7]),          # larger is better
    ({t: float(t) for t in range(8)}, 0.5, [0, 1, 2, 3], [4, 5, 6, 7]),
    ({0: 3.0, 1: 1.0, 2: 2.0}, 0.25, [1], [0]),                        # at least one each from two on
    ({0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}, 0.25, [3], [0]),                # ties: the older trial ranks higher
    ({5: -np.inf, 6: 0.5}, 0.5, [5], [6]),                             # no result yet (NaN metric) is worst
    ({4: 1.0}, 0.25, [], []),                                          # one trial: nobody to copy
])
def test_quantiles_of_hand_made_populations(scores, fraction, bottom, top):
    assert _pbt(quantile_fraction=fraction).quantiles(scores) == (bottom, top)


SPACE = {
    "lr": {"loguniform": [1e-4, 1e-1]}, "momentum": {"uniform": [0.5, 0.99]}, "batch": {"quniform": [16, 256, 16]},
    "decay": {"qloguniform": [1e-6, 1e-2, 1e-6]}, "layers": {"randint": [1, 5]},
    "opt": {"name": {"choice": ["sgd", "adam", "rmsprop"]}, "beta": 0.9},
    "width": {"grid": [32, 64, 128, 256]}, "epochs": 20,
}


@pytest.mark.parametrize("resample", [0.0, 0.25, 1.0])
def test_explore_stays_in_bounds_for_every_domain(resample):
    pbt = _pbt(SPACE, resample_probability=resample, perturbation_factors=[0.5, 3.0])
    rng = np.random.default_rng(1)
    edges = [{"lr": 1e-4, "momentum": 0.99, "batch": 256, "decay": 1e-6, "layers": 4,
              "opt": {"name": "rmsprop", "beta": 0.9}, "width": 256, "epochs": 20},
             {"lr": 1e-1, "momentum": 0.5, "batch": 16, "decay": 1e-2, "layers": 1,
              "opt": {"name": "sgd", "beta": 0.9}, "width": 32, "epochs": 20}]
    choices = ["sgd", "adam", "rmsprop"]
    for config in edges * 300:
        new = pbt.explore(config, rng)
        assert 1e-4 <= new["lr"] <= 1e-1 and 0.5 <= new["momentum"] <= 0.99
        assert 16 <= new["batch"] <= 256 and new["batch"] % 16 == 0
        assert 1e-6 <= new["decay"] <= 1e-2 and abs(new["decay"] / 1e-6 - round(new["decay"] / 1e-6)) < 1e-6
        assert new["layers"] in range(1, 5) and isinstance(new["layers"], int)
        assert new["width"] in (32, 64, 128, 256) and new["opt"]["name"] in choices
        assert new["epochs"] == 20 and new["opt"]["beta"] == 0.9  # constants never change
        if resample == 0.0:  # perturbed: a list's value moves to a neighbour at most
            assert abs(choices.index(new["opt"]["name"]) - choices.index(config["opt"]["name"])) <= 1
            assert abs([32, 64, 128, 256].index(new["width"]) - [32, 64, 128, 256].index(config["width"])) <= 1
        assert config["lr"] in (1e-4, 1e-1)  # the donor's config is not changed in place


def test_only_the_named_hyperparameters_are_explored():
    pbt = _pbt(SPACE, hyperparam_mutations=["lr"], resample_probability=1.0)
    rng = np.random.default_rng(2)
    start = {"lr": 1e-3, "momentum": 0.9, "batch": 64, "decay": 1e-4, "layers": 2, "opt": {"name": "adam",
             "beta": 0.9}, "width": 64, "epochs": 20}
    changed = {key for _ in range(50) for key, value in pbt.explore(start, rng).items() if value != start[key]}
    assert changed == {"lr"}


@pytest.mark.parametrize("options, message", [
    ({"quantile_fraction": 0.7}, "quantile_fraction: must be in (0, 0.5], got 0.7"),
    ({"quantile_fraction": 0}, "quantile_fraction: must be in (0, 0.5], got 0"),
    ({"quantile_fraction": -0.25}, "quantile_fraction: must be in (0, 0.5], got -0.25"),  # said '>= 0' before
    ({"quantile_fraction": "a"}, "quantile_fraction: expected a number, got 'a'"),
    ({"perturbation_interval": 0}, "perturbation_interval: must be > 0, got 0"),
    ({"perturbation_interval": -2}, "perturbation_interval: must be > 0, got -2"),  # said '>= 0' before
    ({"perturbation_interval": float("inf")}, "perturbation_interval: expected a number, got inf"),
    ({"resample_probability": 2}, "resample_probability: must be in [0, 1], got 2"),
    ({"resample_probability": -0.5}, "resample_probability: must be in [0, 1], got -0.5"),  # said '>= 0' before
    ({"perturbation_factors": [0.8, -1]}, "perturbation_factors: expected a list of positive numbers, got [0.8, -1]"),
    ({"synch": "yes"}, "synch: expected true or false, got 'yes'"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(SpecError) as refused:
        build_scheduler({"type": "pbt", **options})
    assert str(refused.value) == f"scheduler.{message}"


@pytest.mark.parametrize("interval", ["0", "-2"])
def test_an_interval_out_of_bounds_is_one_line_whichever_side(run_cli, tmp_path, interval):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: bounds\ntrainable: trainable_fixtures:quick\nmetric: loss\nmode: min\nnum_samples: 2\n"
                    f"space: {{x: {{uniform: [0, 1]}}}}\nscheduler: {{type: pbt, perturbation_interval: {interval}}}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    done = run_cli("run", str(spec))
    assert (done.returncode, done.stderr) == (
        2, f"hpctune: error: scheduler.perturbation_interval: must be > 0, got {interval}\n")
    assert not (tmp_path / "runs").exists()  # nothing written


def test_a_mutation_that_is_not_a_domain_is_refused():
    with pytest.raises(SpecError) as refused:
        _pbt({"x": {"uniform": [0, 1]}, "epochs": 3}, hyperparam_mutations=["epochs"])
    assert str(refused.value) == "scheduler.hyperparam_mutations: 'epochs' is not a domain of the space (domains: x)"


def _journal(controller) -> list[dict]:
    controller.store.flush()
    records = []
    for path in sorted((controller.store.root / "journal").glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


@pytest.mark.parametrize("synch", [False, True])
def test_the_bottom_trials_go_on_from_the_newest_checkpoint_of_a_top_one(tmp_path, synch):
    """Read back from the records (the journal's, kept in memory by the simulator): at each exploit, the
    donor's newest checkpoint is the one copied."""
    simulation = simulated(tmp_path, {"type": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.25,
                                      "synch": synch}, num_samples=8, workers=8 if not synch else 3)
    controller = simulation.controller
    newest: dict[int, tuple] = {}
    exploits = []
    for record in simulation.store.records:
        if record["k"] == "result" and record["ckpt"]:
            newest[record["trial"]] = (record["row"]["training_iteration"], record["ckpt"])
        elif record["k"] == "exploit":
            exploits.append(record)
            assert record["donor"] != record["trial"]
            assert (record["it"], record["src"]) == newest[record["donor"]]  # the newest, never an older one
            assert record["ckpt"] == f"trials/{record['trial']:06d}/exploit_{record['donor']:06d}_{record['it']}.h5"
            newest[record["trial"]] = (record["it"], record["ckpt"])
    assert len(exploits) >= 3
    starts = [(trial_id, start) for trial_id, _, start in launches_of(simulation)]
    for record in exploits:  # each recipient's next segment started at the donor's iteration
        assert (record["trial"], record["it"]) in starts
    assert all(trial.state.name == "TERMINATED" for trial in controller.trials.values())
    assert controller.scheduler.describe_progress() == f"{len(exploits)} exploit(s)"


def test_every_trial_s_schedule_runs_from_iteration_0_to_its_end_through_its_donors(tmp_path):
    """The lineage table, read back by Analysis.schedule: contiguous stretches, each from a trial
    that trained those iterations, ending with the trial's last one."""
    import hpctune

    controller = make_controller(tmp_path, {"type": "pbt", "perturbation_interval": 2}, num_samples=8)
    driver = SimDriver(controller, workers=8).start()
    assert driver.run()
    status = controller.finalize()
    controller.store.flush()
    controller.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), status)
    controller.store.close()
    analysis = hpctune.Analysis(tmp_path / "sim")
    lineage = analysis.lineage
    assert (lineage.event == "add").sum() == 8 and (lineage.event == "exploit").sum() >= 3
    crossed = 0
    for trial_id, trial in controller.trials.items():
        schedule = analysis.schedule(trial_id)
        assert schedule.from_iteration.iloc[0] == 0 and schedule.to_iteration.iloc[-1] == trial.iteration
        assert list(schedule.from_iteration.iloc[1:]) == list(schedule.to_iteration.iloc[:-1])
        crossed += len(set(schedule.trial_id)) > 1
        for row in schedule.itertuples():  # each stretch was reported by the trial it names, with that config
            rows = analysis.results[(analysis.results.trial_id == row.trial_id)
                                    & (analysis.results.training_iteration > row.from_iteration)
                                    & (analysis.results.training_iteration <= row.to_iteration)]
            assert len(rows) >= row.to_iteration - row.from_iteration
    assert crossed >= 1


@pytest.mark.parametrize("workers, end_delay", [(4, 0.0), (4, 0.5), (2, 0.5), (1, 0.0)])
def test_synchronous_rounds_run_every_trial_to_its_end_with_exploits_only_at_round_boundaries(
        tmp_path, workers, end_delay):
    """Segments end a while after their PAUSE (as on real ranks): a trial released while it is
    still pausing is not forgotten (it was, and the run ended at the first rounds with every trial
    'not promoted'); a round's recipients copy their donor's checkpoint *of that round*; and the
    trials a round releases start on idle workers at once, not at the next segment end."""
    from hpctune.enums import TrialState

    interval, epochs = 2, 9
    controller = make_controller(tmp_path, {"type": "pbt", "perturbation_interval": interval,
                                            "quantile_fraction": 0.25, "synch": True}, num_samples=4)
    idle_while_released = []

    def no_worker_idles_while_a_released_trial_waits(driver):
        pbt = driver.controller.scheduler
        waiting = [tid for tid in pbt._released if driver.controller.trials[tid].state == TrialState.PAUSED]
        if waiting and driver._idle:
            idle_while_released.append((driver.now, waiting, list(driver._idle)))

    driver = SimDriver(controller, workers=workers, end_delay=end_delay,
                       on_event=no_worker_idles_while_a_released_trial_waits).start()
    assert driver.run()
    controller.finalize()
    assert {tid: (trial.state.name, trial.iteration) for tid, trial in controller.trials.items()} == {
        tid: ("TERMINATED", epochs) for tid in range(4)}
    exploits = [record for record in _journal(controller) if record["k"] == "exploit"]
    assert len(exploits) >= 3
    assert all(record["it"] % interval == 0 for record in exploits), [record["it"] for record in exploits]
    for iterations in driver.iterations().values():  # each iteration once, through to the end
        assert sorted(set(iterations)) == iterations and iterations[-1] == epochs
    assert idle_while_released == []
