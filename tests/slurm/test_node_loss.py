"""What the batch script runs when a node of the allocation is lost (its runs on a cluster that
loses a node: tests/e2e/test_cluster.py)."""
from __future__ import annotations

import subprocess
import sys

from hpctune.slurm.node_loss import guard_step, relaunch_command


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
