"""End to end on real MPI ranks: mpiexec -n 3 and -n 5, spawned workers, pause and resume."""
from __future__ import annotations

import pandas as pd
import pytest

import hpctune

pytestmark = pytest.mark.mpi


def _spec(tmp_path, **extra) -> str:
    lines = {"name": "e2e", "trainable": "trainable_fixtures:quick", "metric": "loss", "num_samples": 4,
             "space": "{x: {uniform: [0, 1]}, epochs: 5}", "storage": str(tmp_path / "runs"), **extra}
    path = tmp_path / "spec.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return str(path)


def _assert_contiguous(results: pd.DataFrame) -> None:
    for trial_id, rows in results.groupby("trial_id"):
        iterations = sorted(rows.training_iteration)
        assert iterations == list(range(1, len(iterations) + 1)), (trial_id, iterations)


@pytest.mark.parametrize("ranks", [3, 5])
def test_mpiexec_cli(run_cli, tmp_path, ranks):
    done = run_cli("run", _spec(tmp_path), mpi_ranks=ranks)
    assert done.returncode == 0, done.stderr
    assert f"{ranks - 1} worker ranks (mpiexec)" in done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / "e2e")
    assert len(analysis.trials) == 4 and set(analysis.trials.state) == {"TERMINATED"}
    assert len(analysis.results) == 4 * 5
    assert set(analysis.results["rank"]) <= set(range(1, ranks))
    _assert_contiguous(analysis.results)
    for column in ("trial_id", "training_iteration", "time_this_iter_s", "time_total_s", "timestamp", "rank",
                   "hostname"):
        assert analysis.results[column].notna().all(), column


def test_spawned_workers_python_script(run_python, tmp_path):
    done = run_python("tests/scripts/main_function.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    # six tiny trials: a worker takes work once it has imported the trainable, so one may run them all
    assert done.stdout.strip() in ("BEST 3 6 [1, 2]", "BEST 3 6 [1]", "BEST 3 6 [2]")


def test_same_script_under_mpiexec(run_python, tmp_path):
    done = run_python("tests/scripts/main_function.py", str(tmp_path), mpi_ranks=5)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("BEST") == 1  # only the coordinator gets an Analysis
    assert "BEST 3 6 [" in done.stdout


def test_every_trial_paused_at_three_resumes_from_its_checkpoint(run_python, tmp_path):
    done = run_python("tests/scripts/pause_resume.py", str(tmp_path), mpi_ranks=3)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "pause")
    results = analysis.results
    assert len(analysis.trials) == 6 and set(analysis.trials.state) == {"TERMINATED"}
    _assert_contiguous(results)
    assert (results.groupby("trial_id").training_iteration.max() == 7).all()
    before = results[results.training_iteration <= 3]
    after = results[results.training_iteration > 3]
    assert (before.resumed_from == 0).all()
    assert (after.resumed_from == 3).all()  # each resumption started from the iteration-3 checkpoint
    pauses = analysis.decisions[analysis.decisions.decision == "PAUSE"]
    assert sorted(pauses.trial_id) == list(range(6)) and set(pauses.training_iteration) == {3}
    segments = analysis.segments
    assert (segments.groupby("trial_id").size() == 2).all()
    assert set(segments.how) == {"PAUSED", "COMPLETED"}
