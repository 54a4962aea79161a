"""Experiments submitted to the loopback Slurm (``scripts/local-slurm.sh``) with ``hpctune submit``:
jobs that requeue themselves across allocations until done, survive preemption, run multi-rank
trials, stop at once when workers cannot import the trainable or an allocation makes no
progress, and show as queued before they start."""
from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

import hpctune
from hpctune.slurm.job import job_state, stale_mpich_segments

from conftest import BIN, _env, assert_finished, slow_counter_spec, wait_for_results
from slurm_jobs import wait_until_ended


def _submit(tmp_path: Path, spec: Path, *options: str) -> str:
    """``hpctune submit SPEC --tasks-per-node 3 OPTIONS``: the job id it printed."""
    done = subprocess.run([str(BIN / "hpctune"), "submit", str(spec), "--tasks-per-node", "3", *options],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = re.fullmatch(r"submitted job (\d+): (.+)\n", done.stdout)
    assert printed and printed.group(2) == str(tmp_path / "runs" / spec.stem), done.stdout
    return printed.group(1)


def _log(folder: Path, job_id: str) -> str:
    """The coordinator's log (rank 0's; submitit keeps one a rank, across allocations)."""
    return (folder / "slurm" / f"{job_id}_0_log.out").read_text()


def _allocations(folder: Path) -> list[dict]:
    return json.loads((folder / "slurm.json").read_text())["allocations"]


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.timeout(700)
def test_a_submitted_experiment_requeues_itself_across_allocations_until_it_is_done(tmp_path, slurm):
    """1-minute allocations: 6 trials x 30 s on 2 worker ranks need at least three. Each allocation
    starts by removing the MPI shared memory the previous one's killed ranks left (else MPICH's
    start-up would wait on it for ever: same job, same step, same segment name)."""
    spec = slow_counter_spec(tmp_path, "week", num_samples=6, epochs=60, sleep=0.5)
    dry = subprocess.run([str(BIN / "hpctune"), "submit", str(spec), "--tasks-per-node", "3", "--time", "1",
                          "--dry-run"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    job_id = _submit(tmp_path, spec, "--time", "1")
    folder = tmp_path / "runs" / "week"
    assert (folder / "slurm" / f"{job_id}_submission.sh").read_text() == dry.stdout  # what --dry-run shows is queued
    wait_until_ended(job_id, timeout=600)
    log = _log(folder, job_id)
    allocations = _allocations(folder)
    assert len(allocations) >= 3, log[-3000:]
    assert [allocation["restart"] for allocation in allocations] == list(range(len(allocations)))
    for restart in range(len(allocations)):
        assert f"[hpctune week] Slurm job {job_id}, allocation {restart + 1}: ends at " in log
    # each allocation's end requeued the job once: hpctune at its stop point, or submitit's handler of
    # Slurm's warning signal, which Slurm sends at that same stop point (under load it came first once,
    # 2 s after the coordinator stopped its trials); either way the next allocation resumes
    ours = rf"this allocation ends: Slurm job {job_id} requeued \(restart (\d+)\)"
    by_hpctune = [int(n) for n in re.findall(ours, log)]
    by_submitit = re.findall(rf"Requeued job {job_id} \(", log)
    assert len(by_hpctune) + len(by_submitit) == len(allocations) - 1, log[-4000:]
    assert by_hpctune == sorted(set(by_hpctune)) and set(by_hpctune) <= set(range(1, len(allocations)))
    assert log.count(f"[hpctune week] resuming {folder}: 2 worker ranks (srun)") == len(allocations) - 1, log[-4000:]
    assert log.count("left by a killed earlier allocation") >= 1  # the stale segment, removed
    analysis = assert_finished(folder, trials=6, epochs=60)
    assert (analysis.results.started_from > 0).any()  # a trial paused at an allocation's end went on from it
    assert job_state(job_id) == "COMPLETED"
    assert stale_mpich_segments(job_id) == []
    status = subprocess.run([str(BIN / "hpctune"), "status", str(folder)], env=_env(), capture_output=True, text=True)
    assert f"Slurm job {job_id}: not in the queue, {len(allocations)} allocation(s) so far" in status.stdout


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_preempted_job_pauses_its_trials_at_a_checkpoint_and_continues_when_it_runs_again(tmp_path, slurm):
    """A job of the 'urgent' partition preempts the experiment's (PreemptMode=REQUEUE, 30 s of grace):
    Slurm sends SIGUSR2 at once, the trials checkpoint and pause, and the job continues after it."""
    spec = slow_counter_spec(tmp_path, "pre", num_samples=4, epochs=40, sleep=0.5)
    job_id = _submit(tmp_path, spec, "--time", "10")
    folder = tmp_path / "runs" / "pre"
    wait_for_results(folder, trials=2, timeout=120)
    twice = subprocess.run([str(BIN / "hpctune"), "submit", str(spec), "--tasks-per-node", "3", "--time", "10"],
                           cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert twice.returncode == 2 and twice.stderr.splitlines() == [
        f"hpctune: error: {folder}: Slurm job {job_id} runs this experiment already (RUNNING); wait for it, "
        f"or 'scancel {job_id}' first"]
    urgent = subprocess.run(["sbatch", "--parsable", "--partition=urgent", "--exclusive", "--time=2",
                             f"--output={tmp_path / 'urgent.out'}", "--wrap", "sleep 10"],
                            capture_output=True, text=True, check=True).stdout.strip()
    wait_until_ended(job_id, timeout=300)
    log = _log(folder, job_id)
    assert "received SIGUSR2: 2 running trial(s) checkpoint and pause at their next result" in log, log[-3000:]
    allocations = _allocations(folder)
    assert len(allocations) == 2
    urgent_start = subprocess.run(["scontrol", "show", "job", "--oneliner", urgent], capture_output=True,
                                  text=True).stdout
    assert job_state(urgent) == "COMPLETED"
    started = re.search(r"StartTime=(\S+)", urgent_start).group(1)
    assert allocations[0]["start"] <= time.mktime(time.strptime(started, "%Y-%m-%dT%H:%M:%S")) <= allocations[1]["start"]
    analysis = assert_finished(folder, trials=4, epochs=40)
    assert (analysis.results.started_from > 0).any()  # the paused trials went on from their checkpoints


@pytest.mark.slurm
@pytest.mark.slow
def test_a_submitted_experiment_runs_trials_that_span_two_ranks(tmp_path, slurm):
    """A trial's ranks are an MPI job of their own, started from inside the Slurm step (srun --overlap)."""
    spec = tmp_path / "pairs.yaml"
    spec.write_text("name: pairs\ntrainable: trainable_fixtures:group_sum\nmetric: loss\nnum_samples: 3\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 3}}\nresources: {{ranks_per_trial: 2}}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    job_id = _submit(tmp_path, spec, "--time", "5")
    wait_until_ended(job_id, timeout=240)
    folder = tmp_path / "runs" / "pairs"
    analysis = assert_finished(folder, trials=3, epochs=3)
    assert list(analysis.results["sum"]) == [2000 * trial_id + 1 for trial_id in analysis.results.trial_id]
    assert {tuple(sorted(ranks.split(","))) for ranks in analysis.segments.ranks} == {("1", "2")}  # either leads
    assert job_state(job_id) == "COMPLETED"


@pytest.mark.slurm
def test_a_submitted_job_whose_workers_cannot_import_the_trainable_ends_at_once_with_one_line(tmp_path, slurm):
    """It imports where hpctune submit ran (the login node), not in the job's worker ranks."""
    spec = tmp_path / "login.yaml"
    spec.write_text(f"name: login\ntrainable: login_only:train\nmetric: loss\nnum_samples: 4\n"
                    f"space: {{x: 1}}\nstorage: {tmp_path / 'runs'}\n")
    job_id = _submit(tmp_path, spec, "--time", "5")
    wait_until_ended(job_id, timeout=180)
    folder = tmp_path / "runs" / "login"
    errors = [line for line in _log(folder, job_id).splitlines() if line.startswith("hpctune: error:")]
    assert len(errors) == 1 and re.fullmatch(
        rf"hpctune: error: worker rank [12] on {re.escape(socket.gethostname())} cannot import the trainable "
        r"'login_only:train': cannot import 'login_only': ModuleNotFoundError: No module named "
        rf"'a_module_only_the_login_node_has'; continue it with 'hpctune resume {re.escape(str(folder))}'",
        errors[0]), errors
    assert job_state(job_id) == "FAILED"  # not requeued: the next allocation would fail the same way
    assert hpctune.Analysis(folder).num_results == 0


@pytest.mark.slurm
def test_an_allocation_that_makes_no_progress_is_not_requeued(tmp_path, slurm):
    """A stop point 0.1 s into a 1-minute allocation (59.9 s before its end; Slurm's times are whole
    seconds, and 59 s once left the coordinator time to start a trial under it): the coordinator starts
    after it, stops at once with nothing run and requeued the job (up to --max-requeues times, 200 by default). Now the job ends
    after that one allocation, and its log says why and how to go on."""
    spec = slow_counter_spec(tmp_path, "idle", num_samples=2, epochs=3, sleep=0.5)
    job_id = _submit(tmp_path, spec, "--time", "1", "--stop-before", "59.9", "--max-requeues", "1")
    wait_until_ended(job_id, timeout=300)
    folder = tmp_path / "runs" / "idle"
    log = _log(folder, job_id)
    assert (f"hpctune: experiment interrupted (Slurm job {job_id} not requeued: this allocation reached its stop "
            "point without accepting a result or ending a trial, and the next would do the same; give each "
            "allocation more time (--time) or stop closer to its end (--stop-before)); continue it with "
            f"'hpctune resume {folder}'") in log.splitlines(), log[-3000:]
    assert "requeued (restart" not in log
    assert [allocation["restart"] for allocation in _allocations(folder)] == [0]
    assert job_state(job_id) == "FAILED"
    assert hpctune.Analysis(folder).num_results == 0


@pytest.mark.slurm
def test_run_with_a_stop_point_that_leaves_no_time_in_its_allocation_is_refused(tmp_path, slurm):
    """``hpctune run --stop-before`` in a batch job knows the time limit: refused as by submit."""
    spec = slow_counter_spec(tmp_path, "late", num_samples=1, epochs=1, sleep=0)
    job_id = subprocess.run(["sbatch", "--parsable", "--time=1", f"--output={tmp_path / 'late.out'}", "--wrap",
                             f"{BIN / 'hpctune'} run {spec} --workers 2 --stop-before 600"], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, check=True).stdout.strip().split(";")[0]
    wait_until_ended(job_id, timeout=120)
    assert (tmp_path / "late.out").read_text().splitlines() == [
        "hpctune: error: --stop-before: 600 s before the end leaves no time to run trials in an allocation of 60 s; "
        "give fewer seconds than the time limit"]
    assert job_state(job_id) == "FAILED" and not (tmp_path / "runs").exists()


@pytest.mark.slurm
def test_status_of_a_submitted_experiment_still_queued_shows_its_job(tmp_path, slurm, run_cli):
    """No allocation has started it: the folder holds submit's files only. It said "not an hpctune
    experiment" (exit 2); --watch waits for the start, and says so when the job leaves the queue."""
    spec = slow_counter_spec(tmp_path, "later", num_samples=1, epochs=1, sleep=0)
    job_id = _submit(tmp_path, spec, "--time", "5", "--sbatch-arg=--begin=now+1hour")
    folder = tmp_path / "runs" / "later"
    try:
        done = run_cli("status", str(folder))
        assert (done.returncode, done.stderr) == (0, "")
        assert done.stdout.splitlines() == [f"{folder}: not started yet (queued by hpctune submit)",
                                            f"Slurm job {job_id}: PENDING BeginTime, 0 allocation(s) so far"]
        watch = subprocess.Popen([str(BIN / "hpctune"), "status", str(folder), "--watch", "--interval", "0.5"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        first = watch.stdout.readline()
        assert re.fullmatch(rf"\[\d\d:\d\d:\d\d\] {re.escape(str(folder))}: not started yet; Slurm job {job_id}: "
                            r"PENDING BeginTime\n", first), first
    finally:
        subprocess.run(["scancel", job_id], check=True)
    out, err = watch.communicate(timeout=60)
    assert watch.returncode == 1 and out == ""
    assert err.splitlines() == [f"hpctune: {folder}: its Slurm job left the queue without starting the experiment"]
    gone = run_cli("status", str(folder))
    assert gone.returncode == 2
    assert gone.stderr.splitlines() == [f"hpctune: error: {folder}: is not an hpctune experiment (no experiment.h5)"]
