"""Smaller defects found by trying to break hpctune: each test failed before its fix."""
from __future__ import annotations

import os
import subprocess

import pytest

import hpctune

from conftest import BIN, _env
from trainable_fixtures import text_metric


def _files(folder):
    """Every file below ``folder`` with its size and modification time."""
    return {(p, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_metric_reported_as_text_fails_the_trial_with_a_clear_message(tmp_path):
    analysis = hpctune.run(text_metric, space={}, metric="loss", num_samples=1, storage=str(tmp_path),
                           name="text", backend="local", verbose=0)
    (error,) = analysis.trials.error
    assert analysis.trials.state[0] == "ERROR"
    assert error.rstrip().endswith("TypeError: hpctune.report(): the metric 'loss' must be a number, got '0.4' (str)")
    assert list(analysis.results.loss) == [0.5]


def test_stop_key_never_reported_warns_once(run_cli, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ntrainable: trainable_fixtures:quick\nmetric: loss\nnum_samples: 3\n"
                    "space: {x: 0.5, epochs: 3}\nstop: {accuracy: 0.9, training_iteration: 2}\n"
                    f"storage: {tmp_path}\n")
    done = run_cli("run", str(spec), "--backend", "local")
    assert done.returncode == 0, done.stderr
    warning = ("[hpctune s] warning: stop.accuracy: the first result has no 'accuracy' (it reported: loss); "
               "this criterion stops only trials that report it")
    assert done.stderr.splitlines().count(warning) == 1
    assert set(hpctune.Analysis(tmp_path / "s").trials.training_iteration) == {2}  # the other key still stops


def test_resume_of_a_finished_experiment_touches_nothing(run_cli, tmp_path):
    spec = tmp_path / "f.yaml"
    spec.write_text(f"name: f\ntrainable: trainable_fixtures:quick\nmetric: loss\nnum_samples: 2\n"
                    f"space: {{x: 0.5, epochs: 2}}\nstorage: {tmp_path}\n")
    assert run_cli("run", str(spec), "--backend", "local").returncode == 0
    folder = tmp_path / "f"
    before = _files(folder)
    done = run_cli("resume", str(folder))  # MPI backend: it would spawn workers
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[0] == f"[hpctune f] {folder} is finished; nothing to resume"
    assert "worker ranks" not in done.stderr
    assert "Experiment f: finished, 2 trials" in done.stdout
    assert _files(folder) == before


def test_racing_cli_runs_leave_one_experiment_and_one_line_each(tmp_path):
    spec = tmp_path / "r.yaml"
    spec.write_text(f"name: r\ntrainable: trainable_fixtures:quick\nmetric: loss\nnum_samples: 1\n"
                    f"space: {{x: 0.5, epochs: 1}}\nstorage: {tmp_path}\n")
    runs = [subprocess.Popen([str(BIN / "hpctune"), "run", str(spec), "--backend", "local"], env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = [(run.wait(timeout=120), run.stderr.read()) for run in runs]
    assert sorted(code for code, _ in outcomes).count(0) == 1
    folder = tmp_path / "r"
    allowed = {f"hpctune: error: name: {folder} already holds an experiment; continue it with 'hpctune resume "
               f"{folder}' or choose another name", f"hpctune: error: {folder}: is in use by a running hpctune "
               "coordinator"}
    for code, stderr in outcomes:
        if code:
            assert code == 2 and stderr.strip().splitlines()[-1] in allowed, stderr
    assert sorted(os.listdir(tmp_path)) == ["r", "r.yaml"]


def reports_a_reserved_key(config):
    hpctune.report({"loss": 0.5, config["key"]: 7})


@pytest.mark.parametrize("key", ["trial_id", "training_iteration", "gpus", "config/x"])
def test_a_metric_named_like_a_reserved_column_fails_the_trial_naming_it(tmp_path, key):
    """It overwrote hpctune's own column (trial_id 7 in the results), or was dropped from the trials table
    (config/x): now the trial fails with one line naming the key, and no row is written."""
    analysis = hpctune.run(reports_a_reserved_key, space={"key": key, "x": 0.25}, metric="loss", num_samples=1,
                           storage=str(tmp_path), name="reserved", backend="local", verbose=0)
    (error,) = analysis.trials.error
    assert list(analysis.trials.state) == ["ERROR"] and analysis.num_results == 0
    assert error.rstrip().splitlines()[-1] == (
        f"ValueError: hpctune.report(): {key!r} is a reserved name (hpctune sets trial_id, training_iteration, "
        "time_this_iter_s, time_total_s, timestamp, rank, hostname and gpus in every result, and config/... are the "
        "config's columns); report it under another name")


def test_replay_of_a_simulated_experiment_is_one_line(run_cli, tmp_path):
    (tmp_path / "curves.py").write_text("def curve(config, iteration):\n    return {'loss': config['x'] / iteration}, 1.0\n")
    spec = tmp_path / "sim.yaml"
    spec.write_text("name: sim\ntrainable: nowhere:train\nmetric: loss\nnum_samples: 2\nspace: {x: {uniform: [0, 1]}}\n"
                    f"stop: {{training_iteration: 2}}\nstorage: {tmp_path / 'runs'}\n")
    assert run_cli("run", str(spec), "--backend", "sim", "--surrogate", "curves:curve", "--workers", "2",
                   cwd=tmp_path).returncode == 0
    folder = tmp_path / "runs" / "sim"
    done = run_cli("replay", str(folder), "0", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"hpctune: error: {folder}: is a simulation (hpctune run --backend sim): its "
                                        "trials trained no model, so there is none to train again"]
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["sim"]


def always_nan(config):
    for _ in range(2):
        hpctune.report({"loss": float("nan")})


def test_plan_from_a_pilot_whose_metric_is_always_nan_says_so(run_cli, tmp_path):
    """It said "metric: 'loss' was never reported by the trainable (it reported: nothing)"."""
    hpctune.run(always_nan, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=3, storage=str(tmp_path),
                name="nan", backend="local", verbose=0)
    spec = tmp_path / "plan.yaml"
    spec.write_text("name: planned\ntrainable: nowhere:train\nmetric: loss\nnum_samples: 8\n"
                    "space: {x: {uniform: [0, 1]}}\n")
    done = run_cli("plan", str(spec), "--pilot", str(tmp_path / "nan"), "--workers", "1,2")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"hpctune: error: --pilot: {tmp_path / 'nan'} reported 'loss' 6 time(s), never "
                                        "as a finite number (NaN or infinite each time): nothing to rank its replayed "
                                        "trials by"]
