"""``hpctune submit``: the batch script it would submit (pinned), bad options (one line, exit 2,
nothing queued or written), and what the loopback Slurm refuses (a partition sbatch does not know,
more nodes than a partition has, an experiment a local run holds). Jobs that run:
tests/e2e/test_submitted_jobs.py."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, _env, running, slow_counter_spec


GOLDEN = Path(__file__).parent / "golden" / "submit_dry_run.sh"


def _golden_spec(tmp_path: Path) -> Path:
    spec = tmp_path / "tune.yaml"
    spec.write_text("name: tune\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 8\n"
                    "space: {x: {uniform: [0, 1]}, epochs: 5, sleep: 0.1}\nresources: {gpus_per_rank: 1}\n"
                    f"storage: {tmp_path / 'runs'}\n"
                    "slurm:\n  tasks_per_node: 4\n  time: '01:00:00'\n  partition: gpu\n"
                    "  setup: ['module load cuda/12.4']\n")
    return spec


def _normalised(text: str, tmp_path: Path) -> str:
    text = text.replace(str(tmp_path), "<tmp>")
    return re.sub(r"\S*/bin/python[0-9.]*", "<python>", text)


def test_dry_run_prints_the_batch_script_and_submits_nothing(tmp_path, run_cli):
    """The spec's slurm: section gives defaults; the command line wins (--time)."""
    done = run_cli("submit", str(_golden_spec(tmp_path)), "--nodes", "2", "--gpus-per-node", "4",
                   "--cpus-per-task", "8", "--time", "04:00:00", "--account", "proj", "--qos", "high",
                   "--max-requeues", "50", "--job-name", "tune-a100", "--sbatch-arg=--constraint=a100",
                   "--sbatch-arg=--exclusive", "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _normalised(done.stdout, tmp_path) == GOLDEN.read_text()
    assert not (tmp_path / "runs").exists()


def _bad_spec(tmp_path: Path, extra: str = "") -> Path:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\n"
                    f"space: {{x: 1, epochs: 1, sleep: 0}}\nstorage: {tmp_path / 'runs'}\n{extra}")
    return spec


@pytest.mark.parametrize("options, extra, message", [
    (["--time", "4h"], "",
     "--time: expected a time limit such as 04:00:00, 90 (minutes) or 1-12:00:00, got '4h'"),
    (["--nodes", "0", "--time", "10"], "", "--nodes: expected a positive integer, got '0'"),
    ([], "", "--time: missing: give --time or slurm.time in {spec}"),
    (["--time", "10", "--tasks-per-node", "1"], "",
     "--tasks-per-node: 1 node(s) x 1 task(s) is one rank; hpctune needs two or more (rank 0 coordinates, the "
     "others run trials)"),
    (["--sbatch-arg=--time=5"], "", "--sbatch-arg: '--time=5': hpctune sets --time itself (use --time)"),
    (["--sbatch-arg=-C"], "", "--sbatch-arg: expected an sbatch option in its long form (--constraint=a100), got '-C'"),
    (["--stop-before", "-5"], "", "--stop-before: expected seconds >= 0, got '-5'"),
    ([], "slurm: {taks_per_node: 3}\n",
     "slurm.taks_per_node: unknown option (known: account, cpus_per_task, gpus_per_node, job_name, max_requeues, "
     "nodes, partition, qos, sbatch_args, setup, srun_args, stop_before, tasks_per_node, time)"),
    (["--gpus-per-node", "4", "--tasks-per-node", "4"], "resources: {gpus_per_rank: 2}\n",
     "--gpus-per-node: 4 GPU(s) a node, but 3 worker rank(s) on a node x resources.gpus_per_rank 2 need 6"),
    ([], "resources: {ranks_per_trial: 3}\n",
     "resources.ranks_per_trial: 3 ranks per trial, but 1 node(s) x 3 task(s) give 2 worker rank(s)"),
    # a stop point that leaves no time: each allocation would stop as it starts and requeue, 200 times
    (["--time", "1", "--stop-before", "600"], "",
     "--stop-before: 600 s before the end leaves no time to run trials in an allocation of 60 s; give fewer seconds "
     "than the time limit"),
    (["--stop-before", "1e9"], "",  # it said: sbatch: Invalid --signal specification
     "--stop-before: 1e+09 s before the end leaves no time to run trials in an allocation of 600 s; give fewer "
     "seconds than the time limit"),
    ([], "slurm: {stop_before: 600}\n",
     "slurm.stop_before: 600 s before the end leaves no time to run trials in an allocation of 600 s; give fewer "
     "seconds than the time limit"),
    (["--time", "30-00:00:00", "--stop-before", "70000"], "",
     "--stop-before: 70000 s: Slurm's warning signal (sbatch --signal) comes at most 65535 s before the end"),
    # a line break would add a line to the batch script, as in a --job-name
    (["--sbatch-arg=--constraint=a100\n#SBATCH --mem=1"], "",
     "--sbatch-arg: expected one sbatch option on one line, got '--constraint=a100\\n#SBATCH --mem=1'"),
    (["--srun-arg=--mpi=pmi2\nhostname"], "",
     "--srun-arg: expected one srun option on one line, got '--mpi=pmi2\\nhostname'"),
])
def test_bad_submit_options_are_one_line_and_exit_2(tmp_path, run_cli, options, extra, message):
    spec = _bad_spec(tmp_path, extra)
    defaults = [] if "--time: missing" in message else ["--time", "10"]
    if "--tasks-per-node" not in options:
        defaults += ["--tasks-per-node", "3"]
    done = run_cli("submit", str(spec), *defaults, *options, cwd=tmp_path)
    _cancel_if_submitted(done)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"hpctune: error: {message.format(spec=spec)}"]
    assert not (tmp_path / "runs").exists()


def _cancel_if_submitted(done: subprocess.CompletedProcess) -> None:
    """A submission that should have been refused but was queued (a regression) is cancelled, not left waiting."""
    queued = re.fullmatch(r"submitted job (\d+): .+\n", done.stdout)
    if queued:
        subprocess.run(["scancel", queued.group(1)], capture_output=True)


# -- on the loopback Slurm ------------------------------------------------------------------------


@pytest.mark.slurm
def test_a_partition_sbatch_refuses_is_one_line_and_leaves_nothing(tmp_path, slurm, run_cli):
    spec = slow_counter_spec(tmp_path, "nowhere", num_samples=1, epochs=1, sleep=0)
    done = run_cli("submit", str(spec), "--tasks-per-node", "3", "--time", "5", "--partition", "nosuch", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == ["hpctune: error: sbatch: invalid partition specified: nosuch"]
    assert not (tmp_path / "runs").exists()


@pytest.mark.slurm
def test_submit_while_a_local_run_holds_the_experiment_is_refused(tmp_path, slurm):
    """The job was queued, and failed "in use" when it started."""
    with running(tmp_path, "spawn", "held", num_samples=2, epochs=40, sleep=0.2) as (process, folder, spec):
        done = subprocess.run([str(BIN / "hpctune"), "submit", str(spec), "--tasks-per-node", "3", "--time", "5"],
                              cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
        _cancel_if_submitted(done)
        assert process.poll() is None  # still running when it was refused
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"hpctune: error: {folder}: is in use by a running hpctune coordinator (an "
                                        "hpctune run of it); let it end, or stop it, before submitting"]
    assert not (folder / "slurm").exists() and not (folder / "slurm.json").exists()


@pytest.mark.slurm
@pytest.mark.parametrize("partition", [[], ["--partition", "urgent"]], ids=["default", "urgent"])
def test_more_nodes_than_the_partition_has_is_refused(tmp_path, slurm, run_cli, partition):
    """The loopback cluster's partitions have one node each: such a job pended for ever."""
    spec = slow_counter_spec(tmp_path, "wide", num_samples=1, epochs=1, sleep=0)
    done = run_cli("submit", str(spec), "--tasks-per-node", "3", "--time", "5", "--nodes", "2", *partition,
                   cwd=tmp_path)
    _cancel_if_submitted(done)
    name = partition[1] if partition else "debug"
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"hpctune: error: --nodes: 2 nodes, but partition {name} has 1 (sinfo); the "
                                        "job would wait in the queue for ever"]
    assert not (tmp_path / "runs").exists()
