"""Opening an experiment (hpctune.api): a finished one resumed keeps everything and touches no
file, a folder that is no experiment is refused in one line, and runs racing for one name leave one
experiment and one line each for the others."""
from __future__ import annotations

import os
import subprocess

import hpctune

from conftest import BIN, _env
from trainable_fixtures import quick


def _run(tmp_path, **changes):
    kwargs = dict(space={"x": hpctune.uniform(0, 1), "epochs": 2}, metric="loss", num_samples=2,
                  storage=str(tmp_path), name="r", backend="local", verbose=0)
    kwargs.update(changes)
    return hpctune.run(quick, **kwargs)


def test_resume_of_a_finished_experiment_keeps_it_and_adds_nothing(tmp_path):
    first = _run(tmp_path)
    again = _run(tmp_path, resume=True)
    assert len(again.trials) == 2 and len(again.results) == len(first.results) == 4
    assert list(again.trials.trial_id) == [0, 1]


def test_resume_of_a_folder_that_is_no_experiment(run_cli, tmp_path):
    (tmp_path / "notexp").mkdir()
    done = run_cli("resume", str(tmp_path / "notexp"))
    assert done.returncode == 2
    assert done.stderr.strip() == f"hpctune: error: {tmp_path / 'notexp'}: is not an hpctune experiment (no experiment.h5)"


def _files(folder):
    """Every file below ``folder`` with its size and modification time."""
    return {(p, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


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
