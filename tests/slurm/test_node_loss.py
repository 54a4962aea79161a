"""What the batch script runs when a node of the allocation is lost (its runs on a cluster that
loses a node: tests/e2e/test_cluster.py)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from hpctune.slurm.job import job_state
from hpctune.slurm.node_loss import START_RETRIES, guard_step, relaunch_command

from conftest import _env
from slurm_jobs import wait_until_ended


def test_the_step_starts_again_on_exactly_the_nodes_left_with_as_many_ranks_a_node():
    step = ["srun", "--unbuffered", "--mpi=pmi2", "python", "-m", "submitit.core._submit", "/x/slurm"]
    assert relaunch_command(step, ["node1", "node3"], 3) == [
        "srun", "--nodelist=node1,node3", "--nodes=2", "--ntasks=6", "--ntasks-per-node=3",
        "--unbuffered", "--mpi=pmi2", "python", "-m", "submitit.core._submit", "/x/slurm"]


def test_a_guard_is_one_task_on_its_node_sharing_its_cpus_and_writing_its_own_log():
    """Its srun runs on the batch script's node and may be lost with it: the guard writes its log itself."""
    assert guard_step("node2", "/x/slurm/7_guard_node2.out") == [
        "srun", "--nodelist=node2", "--nodes=1", "--ntasks=1", "--overlap", "--mpi=none", "--output=/dev/null",
        sys.executable, "-m", "hpctune.slurm.node_loss", "guard", "/x/slurm/7_guard_node2.out"]


def _node_loss(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hpctune.slurm.node_loss", *arguments], capture_output=True,
                          text=True, timeout=60)


def test_an_end_of_hpctunes_own_is_the_jobs_exit_status_and_nothing_is_started_again():
    for status in ("0", "2", "3"):
        done = _node_loss("relaunch", status, "--", "false")
        assert (done.returncode, done.stderr) == (int(status), "")


def test_a_wrong_call_says_how_to_call_it():
    for arguments in (["relaunch", "--", "srun"], ["guard"], ["start-guards", "a", "b"], []):
        done = _node_loss(*arguments)
        assert done.returncode == 2
        assert done.stderr.splitlines()[0] == ("usage: python -m hpctune.slurm.node_loss relaunch STATUS -- srun "
                                               "OPTIONS... COMMAND")


def _batch_job(tmp_path: Path, fails: int, coordinator_starts: bool) -> tuple[str, str, int]:
    """A batch job on the loopback Slurm whose step fails its first ``fails`` runs, each at once, then
    succeeds; with ``coordinator_starts`` each run first writes the experiment's record, as a
    coordinator that started does. The line after it is the batch script's relaunch line. Returns
    the job's final state, its log and how many times the step ran."""
    runs, record = tmp_path / "runs", tmp_path / "slurm.json"
    starts = f"touch {record}; " if coordinator_starts else ""
    step = ["srun", "--kill-on-bad-exit=1", "bash", "-c",
            f"{starts}echo run >> {runs}; [ $(wc -l < {runs}) -gt {fails} ]"]
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/bash\n"
                      f"export HPCTUNE_RANKS_STARTED=$(date +%s) HPCTUNE_RANKS_RECORD={record}\n"
                      f"{shlex.join(step)}\n"
                      f"{shlex.quote(sys.executable)} -m hpctune.slurm.node_loss relaunch $? -- {shlex.join(step)}\n")
    submitted = subprocess.run(["sbatch", "--parsable", "--ntasks-per-node=1", f"--output={tmp_path / 'log'}",
                                str(script)], capture_output=True, text=True, env=_env(), cwd=tmp_path, check=True)
    job_id = submitted.stdout.strip().split(";")[0]
    wait_until_ended(job_id, timeout=120)
    return job_state(job_id) or "", (tmp_path / "log").read_text(), len(runs.read_text().splitlines())


@pytest.mark.slurm
def test_a_step_that_ended_before_its_coordinator_started_is_started_again_and_the_job_goes_on(tmp_path, slurm):
    """A rank failed in MPI_Init, say: the step ended with 1 before the coordinator recorded its
    allocation, the node answering. It is started again, twice if need be, and the job ends with the
    run that worked."""
    state, log, runs = _batch_job(tmp_path, fails=2, coordinator_starts=False)
    assert (state, runs) == ("COMPLETED", 3), log
    said = re.findall(r"hpctune: [0-9:]+ the ranks' step ended with 1 before its coordinator started, every node "
                      r"answering; starting it again \(retry (\d) of 2\)", log)
    assert said == ["1", "2"], log


@pytest.mark.slurm
def test_a_step_that_never_starts_ends_the_job_after_its_retries(tmp_path, slurm):
    state, log, runs = _batch_job(tmp_path, fails=10, coordinator_starts=False)
    assert (state, runs) == ("FAILED", 1 + START_RETRIES), log


@pytest.mark.slurm
def test_a_step_that_failed_once_its_coordinator_started_is_the_experiments_own_failure(tmp_path, slurm):
    """Every node answers and the coordinator had recorded its allocation: nothing is started again."""
    state, log, runs = _batch_job(tmp_path, fails=1, coordinator_starts=True)
    assert (state, runs) == ("FAILED", 1), log
    assert "starting" not in log
