"""Contained failures: a trial's process dying fails that trial, never its worker rank."""
from __future__ import annotations

import re
import socket

import pytest

import hpctune

pytestmark = pytest.mark.mpi


def _spec(tmp_path, how: str, max_failures: int) -> str:
    path = tmp_path / f"{how}.yaml"
    path.write_text(f"name: {how}{max_failures}\ntrainable: trainable_fixtures:dies\nmetric: loss\nnum_samples: 3\n"
                    f"space: {{how: {how}}}\nmax_failures: {max_failures}\nstorage: {tmp_path / 'runs'}\n")
    return str(path)


@pytest.mark.parametrize("how, reason", [("exit", "trial process exited with code 3"),
                                         ("segv", "trial process killed by signal SIGSEGV (11)")])
def test_dying_trial_process_fails_only_its_trial(run_cli, tmp_path, how, reason):
    done = run_cli("run", _spec(tmp_path, how, 0), "--workers", "2")
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / f"{how}0")
    assert list(analysis.trials.state) == ["ERROR"] * 3
    assert list(analysis.trials.error) == [reason] * 3
    assert reason in done.stderr
    # the same two worker ranks ran all three trials: they survived each death
    assert set(analysis.segments["rank"]) == {1, 2} and len(analysis.segments) == 3


@pytest.mark.parametrize("how", ["exit", "segv"])
def test_dying_trial_process_is_retried_from_its_checkpoint(run_cli, tmp_path, how):
    done = run_cli("run", _spec(tmp_path, how, 1), "--workers", "2")
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / f"{how}1")
    assert set(analysis.trials.state) == {"TERMINATED"} and set(analysis.trials.num_failures) == {1}
    for _, rows in analysis.results.groupby("trial_id"):
        assert list(rows.training_iteration) == [1, 2, 3]
        assert list(rows.attempt_start) == [0, 1, 1]


@pytest.mark.parametrize("launcher", ["spawn", "mpiexec"])
def test_a_trainable_that_workers_cannot_import_ends_the_run_at_start_with_one_line(run_cli, tmp_path, launcher):
    spec = tmp_path / "login.yaml"
    spec.write_text(f"name: login\ntrainable: login_only:train\nmetric: loss\nnum_samples: 4\n"
                    f"space: {{x: 1}}\nstorage: {tmp_path / 'runs'}\n")
    if launcher == "spawn":
        done = run_cli("run", str(spec), "--workers", "2")
    else:
        done = run_cli("run", str(spec), mpi_ranks=3)
    assert done.returncode == 1, done.stderr
    folder = tmp_path / "runs" / "login"
    errors = [line for line in done.stderr.splitlines() if line.startswith("hpctune: error:")]
    assert len(errors) == 1 and re.fullmatch(
        rf"hpctune: error: worker rank [12] on {re.escape(socket.gethostname())} cannot import the trainable "
        r"'login_only:train': cannot import 'login_only': ModuleNotFoundError: No module named "
        rf"'a_module_only_the_login_node_has'; continue it with 'hpctune resume {re.escape(str(folder))}'",
        errors[0]), done.stderr
    analysis = hpctune.Analysis(folder)
    assert analysis.num_results == 0 and analysis.status == "interrupted"  # no trial failed one by one
