"""The ``sim`` backend: virtual workers on a virtual clock, surrogates, the experiment folder it writes."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

import hpctune
from hpctune.reporting.analysis import Analysis
from hpctune.errors import SpecError
from hpctune.backends.sim.simulation import simulate
from hpctune.spec import spec_from_dict
from hpctune.store import ExperimentStore
from hpctune.backends.sim.surrogates import FunctionSurrogate, RecordedSurrogate

ASHA = {"type": "asha", "grace_period": 1, "max_t": 9, "reduction_factor": 3}


def crossing(config, iteration):
    """Curves that cross; iteration times 1 + x virtual seconds."""
    return {"loss": abs(config["x"] - 0.3) + (0.2 + config["y"]) / iteration}, 1.0 + round(config["x"], 3)


def constant(config, iteration):
    """Every iteration 2 s; the loss a number, not a dict."""
    return config["x"] / iteration, 2.0


def make_spec(tmp_path, scheduler=ASHA, num_samples=40, seed=0, stop=None, **extra):
    raw = {"name": "sim", "trainable": "nowhere:train", "metric": "loss", "mode": "min",
           "num_samples": num_samples, "space": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}},
           "scheduler": scheduler, "seed": seed, "stop": stop, "storage": str(tmp_path), **extra}
    return spec_from_dict(raw, check_trainable=False)


def test_the_same_seed_gives_the_same_events_and_another_seed_other_ones(tmp_path):
    surrogate = FunctionSurrogate(crossing, "loss")
    runs = [simulate(make_spec(tmp_path, seed=seed), surrogate, 7, keep_records=True, log=True)
            for seed in (0, 0, 1)]
    first, again, other = runs
    assert first.store.records == again.store.records  # every record, times included
    assert first.log == again.log and len(first.log) == first.outcome.results > 40
    assert first.outcome == again.outcome
    assert first.store.records != other.store.records
    times = [t for t, *_ in first.log]
    assert times == sorted(times)


def test_a_function_surrogate_sets_the_virtual_times_exactly(tmp_path):
    """FIFO, 6 trials of 3 iterations of 2 s, 1.5 s start-up, on 4 workers: two waves of 7.5 s."""
    def timed(config, iteration):
        return {"loss": config["x"]}, 2.0
    timed.start_up_s = 1.5
    timed.max_iterations = 3
    sim = simulate(make_spec(tmp_path, scheduler="fifo", num_samples=6), FunctionSurrogate(timed, "loss"), 4,
                   keep_records=True, log=True)
    assert sim.outcome.makespan_s == pytest.approx(15.0)
    assert sim.outcome.busy_rank_s == pytest.approx(6 * 7.5)
    assert sim.outcome.utilization == pytest.approx(45 / 60)
    assert [t for t, trial, it, _ in sim.log if trial == 0] == pytest.approx([3.5, 5.5, 7.5])
    launches = [(r["trial"], r["rank"], r["t"]) for r in sim.store.records if r["k"] == "launch"]
    assert launches == [(0, 1, 0.0), (1, 2, 0.0), (2, 3, 0.0), (3, 4, 0.0), (4, 1, 7.5), (5, 2, 7.5)]
    ends = [r["how"] for r in sim.store.records if r["k"] == "end"]
    assert ends == ["COMPLETED"] * 6


def test_a_plain_number_is_the_metric_and_an_end_delay_holds_the_rank(tmp_path):
    def paused_late(config, iteration):
        return config["x"] / iteration, 2.0
    paused_late.end_delay_s = 0.5
    sim = simulate(make_spec(tmp_path, num_samples=9), FunctionSurrogate(paused_late, "loss"), 1, log=True)
    trials = sim.controller.trials
    assert all(trial.last_result["loss"] == trial.config["x"] / trial.iteration for trial in trials.values())
    # one worker: every result 2 s after the previous, plus 0.5 s after each pause before the next start
    gaps = {round(b[0] - a[0], 9) for a, b in zip(sim.log, sim.log[1:])}
    assert gaps <= {2.0, 2.5} and 2.5 in gaps


def test_a_surrogate_that_returns_nonsense_is_refused_in_one_line(tmp_path):
    spec = make_spec(tmp_path, scheduler="fifo", num_samples=1, stop={"training_iteration": 2})
    with pytest.raises(SpecError, match=r"^surrogate: bad must return \(metrics, seconds\), returned 0.5 "
                                        r"\(trial 0, iteration 1\)$"):
        simulate(spec, FunctionSurrogate(lambda c, i: 0.5, "loss", name="bad"), 1)
    with pytest.raises(SpecError, match=r"^surrogate: neg returned -1 seconds for trial 0's iteration 1; "
                                        r"expected a number >= 0$"):
        simulate(spec, FunctionSurrogate(lambda c, i: (0.5, -1), "loss", name="neg"), 1)
    with pytest.raises(SpecError, match=r"^surrogate: nothing ends a simulated trial"):
        simulate(make_spec(tmp_path, scheduler="fifo", num_samples=1), FunctionSurrogate(constant, "loss"), 1)


def test_multi_rank_trials_take_their_ranks_together(tmp_path):
    spec = make_spec(tmp_path, scheduler="fifo", num_samples=5, stop={"training_iteration": 2},
                     resources={"ranks_per_trial": 2})
    sim = simulate(spec, FunctionSurrogate(constant, "loss"), 5, keep_records=True)
    launches = [(r["trial"], r.get("ranks"), r["t"]) for r in sim.store.records if r["k"] == "launch"]
    assert launches[:2] == [(0, [1, 2], 0.0), (1, [3, 4], 0.0)]  # rank 5 alone cannot take a trial
    assert sim.outcome.makespan_s == pytest.approx(3 * 4.0)
    assert sim.outcome.busy_rank_s == pytest.approx(5 * 2 * 4.0)


def test_pbt_exploits_in_simulation_with_checkpoints_by_name_only(tmp_path):
    spec = make_spec(tmp_path, scheduler={"type": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.25,
                                          "hyperparam_mutations": ["y"]},
                     num_samples=8, stop={"training_iteration": 12})
    sim = simulate(spec, FunctionSurrogate(crossing, "loss"), 4, keep_records=True)
    exploits = [r for r in sim.store.records if r["k"] == "exploit"]
    assert exploits and all(r["donor"] != r["trial"] for r in exploits)
    assert all(t.iteration == 12 for t in sim.controller.trials.values())
    assert not Path(spec.experiment_dir).exists()  # in memory: nothing written


def test_a_simulated_copy_of_a_finished_model_trains_nothing_and_its_exploit_is_undone(tmp_path):
    """Synchronous PBT ranks the population at iteration 12, the last: a recipient's run starts at the
    limit, ends at once with no result (as a trainable's loop does), and the exploit is undone."""
    def twelve(config, iteration):  # its own end, not a stop criterion: the scheduler sees iteration 12
        return crossing(config, iteration)
    twelve.max_iterations = 12
    spec = make_spec(tmp_path, scheduler={"type": "pbt", "perturbation_interval": 4, "synch": True,
                                          "hyperparam_mutations": ["y"]}, num_samples=8)
    sim = simulate(spec, FunctionSurrogate(twelve, "loss"), 4, keep_records=True)
    records = sim.store.records
    last = {r["trial"] for r in records if r["k"] == "exploit" and r["it"] == 12}
    undone = {r["trial"]: r for r in records if r["k"] == "undo_exploit"}
    assert last and set(undone) == last
    for trial_id, record in undone.items():
        trial = sim.controller.trials[trial_id]
        assert (trial.iteration, trial.config) == (12, record["config"])  # its own model, its own config
    assert max(r["row"]["training_iteration"] for r in records if r["k"] == "result") == 12


def test_the_snapshot_interval_counts_on_the_injected_clock(tmp_path):
    now = [100.0]
    store = ExperimentStore(tmp_path / "e", {"name": "e", "metric": "m", "mode": "min"}, snapshot_interval=10.0,
                            clock=lambda: now[0])
    try:
        assert not store.snapshot_due()
        now[0] = 109.9
        assert not store.snapshot_due()
        now[0] = 110.0
        assert store.snapshot_due()
        store.write_snapshot({}, [], "running")
        assert not store.snapshot_due()  # taken at virtual 110, however long it took in wall time
        now[0] = 120.0
        assert store.snapshot_due()
    finally:
        store.close()


@pytest.fixture
def surrogate_module(tmp_path):
    (tmp_path / "surrogate_curves.py").write_text(
        "def crossing(config, iteration):\n"
        "    return {'loss': abs(config['x'] - 0.3) + (0.2 + config['y']) / iteration}, 1.0 + round(config['x'], 3)\n"
        "crossing.start_up_s = 1.5\n")
    spec = tmp_path / "simspec.yaml"
    spec.write_text(f"name: simulated\ntrainable: not_importable_here:train\nmetric: loss\nnum_samples: 300\n"
                    f"space: {{x: {{uniform: [0, 1]}}, y: {{uniform: [0, 1]}}}}\n"
                    f"scheduler: {{type: asha, grace_period: 1, max_t: 9, reduction_factor: 3}}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    return spec


def test_a_simulation_from_the_cli_is_an_ordinary_experiment_folder(run_cli, tmp_path, surrogate_module):
    done = run_cli("run", str(surrogate_module), "--backend", "sim", "--surrogate", "surrogate_curves:crossing",
                   "--workers", "25", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "a simulation on 25 virtual workers, trials from surrogate_curves:crossing" in done.stderr
    folder = tmp_path / "runs" / "simulated"
    analysis = Analysis(folder)
    assert analysis.status == "finished" and len(analysis.trials) == 300
    assert analysis.spec["simulation"] == {"surrogate": "surrogate_curves:crossing", "workers": 25}
    assert sorted(analysis.results["rank"].unique()) == list(range(1, 26))
    assert set(analysis.trials.training_iteration) == {1, 3, 9}  # asha's rungs
    assert analysis.rung_counts() == [(1, 300), (3, 100), (9, 33)]
    assert analysis.segments.start.min() == 0.0  # virtual seconds
    first = analysis.results.sort_values("timestamp").iloc[0]
    assert first.timestamp == pytest.approx(1.5 + first.time_this_iter_s)  # start-up, then one iteration
    assert not any((folder / "trials").iterdir())  # checkpoints are names only
    assert list((folder / "journal").iterdir()) == []
    shown = run_cli("analyze", str(folder), "--rungs", cwd=tmp_path)
    assert shown.returncode == 0 and "trial_id" in shown.stdout, shown.stderr
    again = run_cli("run", str(surrogate_module), "--backend", "sim", "--surrogate", "surrogate_curves:crossing",
                    "--workers", "25", "--name", "again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    same = Analysis(tmp_path / "runs" / "again").results
    assert same.drop(columns="trial_id").equals(analysis.results.drop(columns="trial_id"))
    refused = run_cli("resume", str(folder), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"hpctune: error: {folder}: is a simulation (hpctune run --backend sim): "
                                      "run it again under another name instead of resuming it")


@pytest.mark.parametrize("args, message", [
    (["--backend", "sim"], "surrogate: the sim backend needs a surrogate: --surrogate module:function or "
                           "--surrogate runs/PILOT (an experiment whose curves and times to replay)"),
    (["--surrogate", "surrogate_curves:crossing"], "--surrogate: needs --backend sim"),
    (["--backend", "sim", "--surrogate", "surrogate_curves:nothing"],
     "surrogate: 'surrogate_curves' has no attribute 'nothing'"),
    (["--backend", "sim", "--surrogate", "nowhere"], "surrogate: 'nowhere' is neither an experiment folder nor a "
                                                     "'module:function'"),
])
def test_bad_simulation_arguments_are_one_line_and_write_nothing(run_cli, tmp_path, surrogate_module, args, message):
    done = run_cli("run", str(surrogate_module), *args, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"hpctune: error: {message}"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_simulation_under_an_mpi_launcher_is_refused_on_every_rank(run_cli, tmp_path, surrogate_module):
    done = run_cli("run", str(surrogate_module), "--backend", "sim", "--surrogate", "surrogate_curves:crossing",
                   mpi_ranks=2, cwd=tmp_path)
    assert done.returncode != 0
    expected = ("hpctune: error: backend: sim runs in one process, not on MPI ranks (this launcher started 2): "
                "run it without mpiexec/srun, with --workers for the virtual ones")
    assert done.stderr.count(expected) == 2, done.stderr  # once from each rank (their lines may interleave)
    assert not (tmp_path / "runs").exists()


def test_nothing_ending_a_trial_is_refused_before_the_folder_is_made(run_cli, tmp_path, surrogate_module):
    surrogate_module.write_text(surrogate_module.read_text().replace(
        "scheduler: {type: asha, grace_period: 1, max_t: 9, reduction_factor: 3}", "scheduler: fifo"))
    done = run_cli("run", str(surrogate_module), "--backend", "sim", "--surrogate", "surrogate_curves:crossing",
                   cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("hpctune: error: surrogate: nothing ends a simulated trial")
    assert not (tmp_path / "runs" / "simulated").exists()


def test_a_recorded_experiment_replays_its_curves_and_times_and_the_nearest_config(tmp_path):
    def pilot_curve(config, iteration):
        return {"loss": config["x"] + 1.0 / iteration, "acc": 1 - config["x"]}, 0.5 + config["x"]
    pilot_curve.start_up_s = 0.75
    pilot_curve.end_delay_s = 0.25
    hpctune.run("nowhere:train", space={"x": hpctune.grid([0.1, 0.5, 0.9])}, metric="loss", backend="sim",
                surrogate=pilot_curve, workers=2, storage=str(tmp_path), name="pilot", verbose=0,
                scheduler={"type": "asha", "grace_period": 1, "max_t": 4, "reduction_factor": 2})
    recorded = RecordedSurrogate(tmp_path / "pilot")
    pilot = Analysis(tmp_path / "pilot")
    assert recorded.start_up_median == pytest.approx(0.75) and recorded.end_delay_median == pytest.approx(0.25)
    assert recorded.joins == {1: 0.0, 2: 0.0} and recorded.join_s(7) == 0.0
    for row in pilot.results.itertuples():  # the same trial and config: what it recorded, exactly
        config = {"x": [0.1, 0.5, 0.9][row.trial_id]}
        metrics, seconds = recorded.step(row.trial_id, config, row.training_iteration)
        assert metrics == {"loss": row.loss, "acc": row.acc}
        assert seconds == pytest.approx(0.5 + config["x"])
    # a config it never ran: the nearest recorded one that reached the iteration asked
    reached = pilot.trials.set_index("trial_id").training_iteration
    best = int(reached.idxmax())
    metrics, _ = recorded.step(99, {"x": 0.52}, 1)
    assert metrics["loss"] == pytest.approx(0.5 + 1.0)
    metrics, seconds = recorded.step(99, {"x": 0.52}, int(reached.max()))
    x = [0.1, 0.5, 0.9][best]
    assert metrics["loss"] == pytest.approx(x + 1.0 / reached.max()) and seconds == pytest.approx(0.5 + x)
    # past every recorded curve: the longest curve's last values
    metrics, _ = recorded.step(99, {"x": 0.52}, 50)
    assert metrics["loss"] == pytest.approx(x + 1.0 / reached.max())
    assert math.isclose(recorded.start_up_s(99, {"x": 0.52}, 7), 0.75)


def test_a_surrogate_object_and_the_python_api(tmp_path):
    analysis = hpctune.run("nowhere:train", space={"x": hpctune.uniform(0, 1), "y": hpctune.uniform(0, 1)},
                           metric="loss", num_samples=30, scheduler=ASHA, backend="sim",
                           surrogate=FunctionSurrogate(crossing, "loss"), workers=3, storage=str(tmp_path),
                           name="api", verbose=0)
    assert analysis.status == "finished" and len(analysis.trials) == 30
    assert analysis.spec["simulation"]["surrogate"].endswith("crossing")
    with pytest.raises(SpecError, match=r"^surrogate: only the sim backend runs a surrogate \(backend is 'local'\)$"):
        hpctune.run("nowhere:train", space={"x": 1}, metric="loss", backend="local", surrogate=crossing,
                    storage=str(tmp_path), name="nope", verbose=0)



def test_a_live_policy_s_new_config_reaches_the_next_iteration(tmp_path):
    def flat(config, iteration):
        return {"loss": 1.0, "seen_x": config["x"]}, 1.0
    spec = make_spec(tmp_path, scheduler="fifo", num_samples=3, stop={"training_iteration": 9},
                     policy={"type": "plateau_lr", "key": "x", "patience": 2, "factor": 0.5})
    sim = simulate(spec, FunctionSurrogate(flat, "loss"), 3, keep_records=True)
    rows = [r["row"] for r in sim.store.records if r["k"] == "result"]
    changes = [r for r in sim.store.records if r["k"] == "config"]
    assert len(changes) >= 3  # the loss never improves: every trial's x is lowered, more than once
    assert all(row["seen_x"] == row["config/x"] for row in rows)  # each iteration trained with the x in force
    for trial in sim.controller.trials.values():
        seen = [row["seen_x"] for row in rows if row["trial_id"] == trial.trial_id]
        assert seen[-1] < seen[0] and seen[-1] == trial.config["x"]


def test_a_rank_s_warm_up_is_paid_once_per_rank_and_read_back_as_the_rank_s(tmp_path):
    """A pilot whose first run on each rank takes 3 s more: the recording keeps those 3 s as the
    ranks' warm-up, not as the first iteration of the two trials that happened to run first."""
    def steady(config, iteration):
        return {"loss": config["x"] + 1.0 / iteration}, 1.0
    steady.warm_up_s = 3.0
    steady.max_iterations = 2
    spec = make_spec(tmp_path, scheduler="fifo", num_samples=6)
    pilot = simulate(spec, FunctionSurrogate(steady, "loss"), 2, keep_records=True)
    assert pilot.outcome.makespan_s == pytest.approx(3.0 + 3 * 2.0)  # 3 trials a rank, the warm-up once
    hpctune.run("nowhere:train", space={"x": hpctune.uniform(0, 1), "y": hpctune.uniform(0, 1)}, metric="loss",
                num_samples=6, scheduler="fifo", backend="sim", surrogate=steady, workers=2, storage=str(tmp_path),
                name="warm", verbose=0)
    recorded = RecordedSurrogate(tmp_path / "warm")
    assert recorded.warm_ups == {1: pytest.approx(3.0), 2: pytest.approx(3.0)}
    assert all(trial.seconds[1] == pytest.approx(1.0) for trial in recorded.trials.values())
    replay = simulate(spec, recorded, 4)  # two more ranks: each warms up for the recording's median
    assert replay.outcome.makespan_s == pytest.approx(3.0 + 2 * 2.0)


@pytest.fixture
def failing_surrogates(tmp_path):
    """Surrogates that fail as trainables do: by raising, by reporting a metric that is no number,
    by interrupting the run (SIGINT to itself, as a Ctrl-C would)."""
    (tmp_path / "failing_surrogates.py").write_text(
        "import os, signal\n"
        "def flaky(config, iteration):\n"
        "    if config['x'] > 0.5 and iteration == 2:\n"
        "        raise ValueError(f\"x too large: {config['x']}\")\n"
        "    return {'loss': config['x'] / iteration}, 1.0\n"
        "def stringy(config, iteration):\n"
        "    return {'loss': 'low'}, 1.0\n"
        "def ctrl_c(config, iteration):\n"
        "    if iteration == 2:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return {'loss': config['x']}, 1.0\n")
    spec = tmp_path / "failing.yaml"
    spec.write_text(f"name: failing\ntrainable: not_importable_here:train\nmetric: loss\nnum_samples: 4\nseed: 0\n"
                    f"space: {{x: {{uniform: [0, 1]}}}}\nstop: {{training_iteration: 3}}\nmax_failures: 1\n"
                    f"storage: {tmp_path / 'runs'}\n")
    return spec


def test_a_surrogate_that_raises_fails_its_trial_and_max_failures_retries_it(run_cli, tmp_path, failing_surrogates):
    done = run_cli("run", str(failing_surrogates), "--backend", "sim", "--surrogate", "failing_surrogates:flaky",
                   "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "trial 0 failed, retrying from its last checkpoint:" in done.stderr
    analysis = Analysis(tmp_path / "runs" / "failing")
    trials = analysis.trials.set_index("trial_id")
    assert analysis.status == "finished"
    assert trials["config/x"][0] > 0.5 and all(trials["config/x"][1:] <= 0.5)  # seed 0: only trial 0 fails
    assert list(trials.state) == ["ERROR", "TERMINATED", "TERMINATED", "TERMINATED"]
    assert trials.num_failures[0] == 2  # failed, retried once (max_failures: 1), failed again
    assert trials.error[0].rstrip().endswith(f"ValueError: x too large: {trials['config/x'][0]}")
    assert list(trials.training_iteration) == [1, 3, 3, 3]
    runs = analysis.segments[analysis.segments.trial_id == 0]
    # each run fails when iteration 2 would start: iteration 1's second after the run's start
    assert list(runs.how) == ["ERROR", "ERROR"] and list(runs.end - runs.start) == [1.0, 0.0]


def test_a_metric_that_is_no_number_fails_the_trial(run_cli, tmp_path, failing_surrogates):
    done = run_cli("run", str(failing_surrogates), "--backend", "sim", "--surrogate", "failing_surrogates:stringy",
                   "--workers", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    analysis = Analysis(tmp_path / "runs" / "failing")
    assert list(analysis.trials.state) == ["ERROR"] * 4 and analysis.results.empty
    assert list(analysis.trials.error) == [
        f"failing_surrogates:stringy reported the metric 'loss' as 'low' (str), not a number (trial {t}, iteration 1)"
        for t in range(4)]


def test_more_ranks_per_trial_than_virtual_workers_is_refused_before_the_folder_is_made(
        run_cli, tmp_path, failing_surrogates):
    failing_surrogates.write_text(failing_surrogates.read_text() + "resources: {ranks_per_trial: 3}\n")
    done = run_cli("run", str(failing_surrogates), "--backend", "sim", "--surrogate", "failing_surrogates:flaky",
                   "--workers", "2", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, "hpctune: error: resources.ranks_per_trial: 3 ranks per trial, "
                                                 "but this run has 2 worker ranks\n")
    assert not (tmp_path / "runs").exists()
    spec = make_spec(tmp_path, scheduler="fifo", num_samples=2, stop={"training_iteration": 2},
                     resources={"ranks_per_trial": 3})
    with pytest.raises(SpecError, match=r"^resources.ranks_per_trial: 3 ranks per trial, but this run has 2 worker "
                                        r"ranks$"):
        simulate(spec, FunctionSurrogate(constant, "loss"), 2)


def test_an_interrupted_simulation_says_it_is_never_resumed(run_cli, tmp_path, failing_surrogates):
    done = run_cli("run", str(failing_surrogates), "--backend", "sim", "--surrogate", "failing_surrogates:ctrl_c",
                   "--workers", "2", cwd=tmp_path)
    folder = Path("runs") / "failing"
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (f"hpctune: simulation interrupted; {tmp_path / folder} keeps what was "
                                            "simulated until then (a simulation is never resumed: run it again under "
                                            "another name)")
    assert Analysis(tmp_path / folder).status == "interrupted"


class _BrokenJoins(FunctionSurrogate):
    def join_s(self, rank):
        raise ZeroDivisionError("a bug of the surrogate's, not of one trial")


def test_a_simulation_that_fails_leaves_no_folder_and_its_name_runs_again(tmp_path):
    common = dict(space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=2, stop={"training_iteration": 2},
                  backend="sim", workers=2, storage=str(tmp_path), name="again", verbose=0)
    with pytest.raises(ZeroDivisionError):
        hpctune.run("nowhere:train", surrogate=_BrokenJoins(constant, "loss"), **common)
    assert not (tmp_path / "again").exists()
    analysis = hpctune.run("nowhere:train", surrogate=FunctionSurrogate(constant, "loss"), **common)
    assert analysis.status == "finished" and list(analysis.trials.state) == ["TERMINATED"] * 2
