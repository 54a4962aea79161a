"""The command line: exit codes, output, and nothing written for bad input."""
from __future__ import annotations

import os
import subprocess

import h5py
import pytest

import hpctune
from conftest import BIN, _env
from hpctune import cli


def _spec(tmp_path, name="cli", **extra) -> str:
    fields = {"name": name, "trainable": "trainable_fixtures:quick", "metric": "loss", "num_samples": 3,
              "space": "{x: {uniform: [0, 1]}, epochs: 3}", "storage": str(tmp_path / "runs"), **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return str(path)


@pytest.mark.mpi
def test_run_prints_progress_best_table_and_hdf5_path(run_cli, tmp_path):
    done = run_cli("run", _spec(tmp_path), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "2 worker ranks (spawned)" in done.stderr
    assert "3/3 finished" in done.stderr
    assert "Best trials by loss (min):" in done.stdout
    path = tmp_path / "runs" / "cli" / "experiment.h5"
    assert f"Results: {path.relative_to(tmp_path) if False else path}" in done.stdout
    with h5py.File(path, "r") as f:  # plain h5py reads it
        assert f.attrs["status"] == "finished"
        assert len(f["results/trial_id"]) == 9
        assert sorted(f["trials/state"].asstr()[()]) == ["TERMINATED"] * 3


def test_local_backend_class_api_and_status_analyze(run_cli, tmp_path):
    spec = _spec(tmp_path, trainable="trainable_fixtures:Counter", space="{x: {uniform: [0, 1]}, epochs: 4}")
    done = run_cli("run", spec, "--backend", "local")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "runs" / "cli"
    status = run_cli("status", str(folder))
    assert status.returncode == 0
    assert "cli: finished, 3 trials, 12 results" in status.stdout
    assert "TERMINATED 3" in status.stdout
    csv = tmp_path / "all.csv"
    analyze = run_cli("analyze", str(folder), "--top", "2", "--csv", str(csv))
    assert analyze.returncode == 0
    assert f"wrote 12 result rows to {csv}" in analyze.stdout
    assert len(csv.read_text().splitlines()) == 13
    analysis = hpctune.Analysis(folder)
    best = analysis.best_result
    assert best["loss"] == min(analysis.results.loss) and best["training_iteration"] == 4
    assert analysis.best_config == {"x": analysis.trials.set_index("trial_id").loc[analysis.best_trial_id, "config/x"],
                                    "epochs": 4}


@pytest.mark.parametrize("extra, line", [
    ({"space": "{lr: {loguniform: [0, 1]}}"}, "hpctune: error: space.lr.loguniform: low must be > 0"),
    ({"scheduler": "{type: fifo, speed: 3}"}, "hpctune: error: scheduler.speed: unknown option of scheduler 'fifo' (known: none)"),
    ({"mode": "best"}, "hpctune: error: mode: must be 'min' or 'max', got 'best'"),
])
def test_bad_spec_one_line_exit_2_nothing_written(run_cli, tmp_path, extra, line):
    done = run_cli("run", _spec(tmp_path, **extra))
    assert done.returncode == 2
    assert done.stderr.strip() == line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, line", [
    (["run"], "hpctune: error: command line: the following arguments are required: spec"),
    (["run", "x.yaml", "--workers", "0"], "hpctune: error: command line: argument --workers: expected a positive integer, got '0'"),
    (["frobnicate"], "hpctune: error: command line: argument command: invalid choice: 'frobnicate' (choose from "),
    (["run", "missing.yaml"], "hpctune: error: missing.yaml: cannot read spec file (No such file or directory)"),
    (["status", "/nonexistent"], "hpctune: error: /nonexistent: is not an hpctune experiment (no experiment.h5)"),
])
def test_bad_command_line(run_cli, tmp_path, args, line):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.strip().startswith(line)


@pytest.fixture
def finished_experiment(run_cli, tmp_path):
    done = run_cli("run", _spec(tmp_path), "--backend", "local")
    assert done.returncode == 0, done.stderr
    return tmp_path / "runs" / "cli"


@pytest.mark.parametrize("unbuffered", ["1", ""], ids=["unbuffered", "buffered"])
@pytest.mark.parametrize("command", ["status", "analyze"])
def test_reader_of_stdout_gone_is_quiet(finished_experiment, command, unbuffered):
    # `hpctune status DIR | head -1` with head already gone: the read end is closed before hpctune
    # starts, so every write fails (with head itself it depends on who is faster)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([str(BIN / "hpctune"), command, str(finished_experiment)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env=_env({"PYTHONUNBUFFERED": unbuffered}))
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")  # exit 1, as Python's docs on SIGPIPE do


def test_broken_pipe_not_on_stdout_is_not_hidden(monkeypatch):
    # e.g. the socket to a trial process: a bug to show, not a reader of stdout gone
    def broken(args):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setitem(cli._COMMANDS, "status", broken)
    with pytest.raises(BrokenPipeError):
        cli.main(["status", "anywhere"])


def test_second_run_with_same_name_is_refused(run_cli, tmp_path):
    spec = _spec(tmp_path)
    assert run_cli("run", spec, "--backend", "local").returncode == 0
    again = run_cli("run", spec, "--backend", "local")
    assert again.returncode == 2
    folder = tmp_path / "runs" / "cli"
    assert again.stderr.strip() == (f"hpctune: error: name: {folder} already holds an experiment; "
                                    f"continue it with 'hpctune resume {folder}' or choose another name")


def test_metric_never_reported_is_bad_input(run_cli, tmp_path):
    done = run_cli("run", _spec(tmp_path, trainable="trainable_fixtures:wrong_metric"), "--backend", "local")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == ("hpctune: error: metric: 'loss' was never reported by the "
                                                    "trainable (it reported: accuracy)")
    assert not (tmp_path / "runs" / "cli").exists()


@pytest.mark.mpi
def test_trial_error_is_stored_shown_and_retried(run_cli, tmp_path):
    spec = _spec(tmp_path, trainable="trainable_fixtures:fails_at_two", num_samples=2)
    done = run_cli("run", spec, "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "failed (ERROR)" in done.stderr and "ValueError: boom in trial" in done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / "cli")
    assert set(analysis.trials.state) == {"ERROR"}
    assert all("ValueError: boom in trial" in e for e in analysis.trials.error)
    with h5py.File(tmp_path / "runs" / "cli" / "experiment.h5", "r") as f:
        assert "Traceback" in f["trials/error"].asstr()[0]

    retry = run_cli("run", _spec(tmp_path, name="retry", trainable="trainable_fixtures:fails_at_two",
                                 num_samples=2, max_failures=1), "--workers", "2")
    assert retry.returncode == 0, retry.stderr
    assert "failed, retrying from its last checkpoint" in retry.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / "retry")
    assert set(analysis.trials.state) == {"TERMINATED"} and set(analysis.trials.num_failures) == {1}
    for _, rows in analysis.results.groupby("trial_id"):
        assert list(rows.training_iteration) == [1, 2, 3]
        assert list(rows.attempt_start) == [0, 1, 1]  # the retry started from the iteration-1 checkpoint
