"""The command line: exit codes, output, and nothing written for bad input."""
from __future__ import annotations

import os
import subprocess

import h5py
import pytest

import hpctune
from conftest import BIN, _env
from hpctune.cli import commands as cli


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


def _listing(folder):
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("scheduler, line", [
    ("fifo", "Rungs: scheduler 'fifo' has no rungs"),
    ("{type: pbt, perturbation_interval: 2}", "Rungs: scheduler 'pbt' has no rungs"),
    ("{type: asha, grace_period: 1, max_t: 3, reduction_factor: 3}",
     "Rungs (milestone: trials that reached it): 1: 3, 3: 1"),
])
def test_analyze_rungs_of_every_scheduler(run_cli, tmp_path, scheduler, line):
    """fifo and pbt have no rungs: said in one line (it was a TypeError traceback)."""
    assert run_cli("run", _spec(tmp_path, scheduler=scheduler), "--backend", "local").returncode == 0
    done = run_cli("analyze", str(tmp_path / "runs" / "cli"), "--rungs")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == line and done.stderr == ""


@pytest.fixture
def no_trials(run_cli, tmp_path):
    """An experiment whose time budget ran out before its first trial: finished, with no trial."""
    spec = _spec(tmp_path, name="empty", time_budget_s="0.000001",
                 scheduler="{type: asha, grace_period: 1, max_t: 3, reduction_factor: 3}")
    done = run_cli("run", spec, "--backend", "local")
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "runs" / "empty"
    assert len(hpctune.Analysis(folder).trials) == 0
    return folder


def test_an_experiment_without_trials_analyzed(run_cli, no_trials):
    rungs = run_cli("analyze", str(no_trials), "--rungs")
    assert rungs.returncode == 0, rungs.stderr
    assert rungs.stdout.splitlines()[-1] == "Rungs (milestone: trials that reached it): 1: 0, 3: 0"
    for args in (["analyze", str(no_trials), "--lineage", "0"], ["replay", str(no_trials), "0"]):
        done = run_cli(*args)
        where = "--lineage" if args[0] == "analyze" else "trial"
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr.splitlines() == [f"hpctune: error: {where}: no trial 0 in {no_trials} (it has no trials yet)"]
    assert sorted(path.name for path in no_trials.parent.iterdir()) == ["empty"]  # no replay experiment either


@pytest.mark.parametrize("target, message", [
    ("missing/x.csv", "folder {tmp}/missing does not exist"),
    (".", "{tmp} is a folder; name the file to write"),
    ("cli.yaml/x.csv", "{tmp}/cli.yaml is a file, not a folder"),
    ("/sys/x.csv", "cannot write in /sys: permission denied"),  # EACCES even for root
])
def test_analyze_csv_that_cannot_be_written_is_one_line_before_any_output(finished_experiment, run_cli, tmp_path,
                                                                          target, message):
    before = _listing(tmp_path)
    done = run_cli("analyze", str(finished_experiment), "--csv", str(tmp_path / target) if target[0] != "/" else target)
    assert (done.returncode, done.stdout) == (2, "")  # refused before the long output
    assert done.stderr.splitlines() == [f"hpctune: error: --csv: {message.format(tmp=tmp_path)}"]
    assert _listing(tmp_path) == before


def test_analyze_csv_replaces_the_file_whole(finished_experiment, run_cli, tmp_path):
    csv = tmp_path / "rows.csv"
    csv.write_text("old\n")
    done = run_cli("analyze", str(finished_experiment), "--csv", str(csv))
    assert done.returncode == 0, done.stderr
    assert csv.read_text().splitlines()[0].startswith("loss,") and len(csv.read_text().splitlines()) == 10
    assert oct(csv.stat().st_mode & 0o777) == oct(0o666 & ~_umask())  # an ordinary file, not mkstemp's 0600
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cli.yaml", "rows.csv", "runs"]  # no temporary left


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("target, message", [
    ("cli.yaml", "{tmp}/cli.yaml is a file, not a folder"),
    ("cli.yaml/plots", "{tmp}/cli.yaml is a file, not a folder"),
    ("/sys/hpctune-plots", "cannot write in /sys: permission denied"),
])
def test_plot_out_that_cannot_be_written_is_one_line(finished_experiment, run_cli, tmp_path, target, message):
    pytest.importorskip("matplotlib")
    before = _listing(tmp_path)
    done = run_cli("plot", str(finished_experiment), "--out", str(tmp_path / target) if target[0] != "/" else target)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"hpctune: error: --out: {message.format(tmp=tmp_path)}"]
    assert _listing(tmp_path) == before


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
