"""Slurm, for real (a one-node Slurm on loopback, ``scripts/local-slurm.sh``): the batch templates,
and an experiment that outlives its allocations by checkpointing, pausing and requeueing itself."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import hpctune

from conftest import BIN, REPO, _env, assert_finished, slow_counter_spec
from hpctune.slurm.job import job_state
from slurm_jobs import wait_until_ended

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _sbatch(tmp_path: Path, spec: Path, *options: str) -> str:
    done = subprocess.run(["sbatch", "--parsable", "--ntasks-per-node=3", f"--output={tmp_path / 'job.out'}",
                           *options, str(REPO / "slurm" / "cpu.sbatch"), spec.name], cwd=tmp_path,
                          env=_env({"HPCTUNE_VENV": str(Path(os.environ.get("VIRTUAL_ENV", REPO / ".venv"))),
                                    "HPCTUNE_PROGRESS_INTERVAL": "5"}),
                          capture_output=True, text=True, check=True)
    return done.stdout.strip().split(";")[0]


@pytest.mark.timeout(700)
def test_an_experiment_longer_than_its_allocations_requeues_itself_until_it_is_done(tmp_path, slurm):
    """1-minute allocations (hpctune stops 15 s before each end): 6 trials x 30 s on 2 worker ranks
    need three of them."""
    job_id = _sbatch(tmp_path, slow_counter_spec(tmp_path, "week", num_samples=6, epochs=60, sleep=0.5), "--time=1")
    wait_until_ended(job_id, timeout=600)
    log = (tmp_path / "job.out").read_text()
    allocations = re.findall(r"hpctune: allocation (\d+) of job", log)
    assert len(allocations) >= 3 and allocations == [str(i + 1) for i in range(len(allocations))], log[-3000:]
    assert log.count(f"Slurm job {job_id} requeued") == len(allocations) - 1
    # walltime-aware: each trial paused at its last result before the end, then no segment fitted
    assert ("this allocation ends before another segment could reach a checkpoint: stopping now; the next "
            "allocation continues") in log
    analysis = assert_finished(tmp_path / "runs" / "week", trials=6, epochs=60)
    assert (analysis.results.started_from > 0).any()  # a trial paused at an allocation's end went on from it
    # the live view's plain lines in the job's log: no escape code, the time left in each 1-minute allocation
    assert "\x1b" not in log
    left = [int(m) for m in re.findall(r"\| ranks [0-2]/2 busy \| (\d+) min left in the allocation$", log, re.M)]
    assert len(left) >= 3 and set(left) <= {0, 1}, log[-3000:]
    status = subprocess.run([str(BIN / "hpctune"), "status", str(tmp_path / "runs" / "week")], env=_env(),
                            capture_output=True, text=True)
    assert (f"Slurm job {job_id}: not in the queue, {len(allocations)} allocation(s) so far"
            in status.stdout.splitlines()), status.stdout


def test_the_cpu_template_submitted_again_continues_the_experiment(tmp_path, slurm):
    spec = slow_counter_spec(tmp_path, "again", num_samples=4, epochs=40, sleep=0.25)
    job_id = _sbatch(tmp_path, spec, "--time=10")
    folder = tmp_path / "runs" / "again"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # let some results in, then cancel it (Slurm sends SIGTERM)
        try:
            if hpctune.Analysis(folder).num_results >= 10:
                break
        except Exception:  # not created yet
            pass
        time.sleep(0.5)
    subprocess.run(["scancel", job_id], check=True)
    wait_until_ended(job_id, timeout=60)
    cut = hpctune.Analysis(folder)
    assert cut.status == "interrupted" and cut.num_results < 160
    again = _sbatch(tmp_path, spec, "--time=10")
    wait_until_ended(again, timeout=300)
    log = (tmp_path / "job.out").read_text()
    assert f"[hpctune again] resuming {folder}: 2 worker ranks (mpiexec)" in log, log[-3000:]
    assert_finished(folder, trials=4, epochs=40)


def _sbatch_with(tmp_path: Path, spec: Path, env: dict) -> str:
    """The CPU template submitted from ``tmp_path`` (which has no .venv) with exactly ``env``."""
    done = subprocess.run([shutil.which("sbatch"), "--parsable", "--ntasks-per-node=3", "--time=5",
                           f"--output={tmp_path / 'job.out'}", str(REPO / "slurm" / "cpu.sbatch"), spec.name],
                          cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip().split(";")[0]


def test_the_cpu_template_runs_the_hpctune_on_the_submitting_path_without_a_venv_beside_it(tmp_path, slurm):
    """No HPCTUNE_VENV and no .venv in the submit folder: the job uses the hpctune on the PATH that
    sbatch exported (before, it stopped at 'source .venv/bin/activate: No such file or directory')."""
    env = _env({"HPCTUNE_PROGRESS_INTERVAL": "5"})
    env.pop("HPCTUNE_VENV", None)
    env.pop("VIRTUAL_ENV", None)
    assert not (tmp_path / ".venv").exists()
    job_id = _sbatch_with(tmp_path, slow_counter_spec(tmp_path, "onpath", num_samples=2, epochs=2, sleep=0), env)
    wait_until_ended(job_id, timeout=180)
    assert job_state(job_id) == "COMPLETED", (tmp_path / "job.out").read_text()[-3000:]
    assert_finished(tmp_path / "runs" / "onpath", trials=2, epochs=2)


@pytest.mark.parametrize("venv", [None, "missing"])
def test_the_cpu_template_without_hpctune_says_so_in_one_line(tmp_path, slurm, venv):
    """hpctune on no PATH and in no venv, or HPCTUNE_VENV naming a folder that is not one: the job's
    log is one line saying what to do, the job fails (exit 2), and nothing is written."""
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "HPCTUNE_VENV", "PYTHONPATH")}
    env["PATH"] = "/usr/bin:/bin"
    expected = ("hpctune: error: no hpctune on PATH: submit from a shell where it is, or set HPCTUNE_VENV to the "
                "virtual environment it is installed in")
    if venv is not None:
        env["HPCTUNE_VENV"] = str(tmp_path / venv)
        expected = f"hpctune: error: HPCTUNE_VENV={tmp_path / venv} is not a virtual environment (no bin/activate)"
    job_id = _sbatch_with(tmp_path, slow_counter_spec(tmp_path, "nohpctune", num_samples=1, epochs=1, sleep=0), env)
    wait_until_ended(job_id, timeout=120)
    assert (tmp_path / "job.out").read_text().splitlines() == [expected]
    assert job_state(job_id) == "FAILED"
    assert not (tmp_path / "runs").exists()
