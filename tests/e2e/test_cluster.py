"""hpctune on a multi-node Slurm cluster: the three nodes of ``scripts/virtual-cluster.sh`` (network
namespaces node1..node3 on one machine, each with its own hostname, address and slurmd, two GPUs
each as Slurm gres on placeholder devices), submitted to from this host as from a login node."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hpctune
from hpctune.slurm.job import job_state

from conftest import BIN, REPO, _env, cluster_queue
from slurm_jobs import wait_until_ended

pytestmark = [pytest.mark.cluster, pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(400)]


def _submit(tmp_path: Path, spec: Path, *options: str) -> str:
    """``hpctune submit SPEC OPTIONS`` from ``tmp_path``: the job id it printed."""
    done = subprocess.run([str(BIN / "hpctune"), "submit", str(spec), "--time", "5", *options], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = re.fullmatch(r"submitted job (\d+): (.+)\n", done.stdout)
    assert printed, done.stdout
    return printed.group(1)


def _status(folder: Path) -> list[str]:
    done = subprocess.run([str(BIN / "hpctune"), "status", str(folder)], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_ranks_on_every_node_each_bound_to_its_own_nodes_gpu_and_status_from_the_login_node(tmp_path, cluster):
    """``submit --nodes 3 --tasks-per-node 2 --gpus-per-node 2``, one GPU a trial: the results come
    from the three hostnames; each worker rank has one of its node's two GPUs (the ones Slurm gave the
    job there), the two ranks of a node different ones, so concurrent trials never share a device on a
    node; ``hpctune status`` on this host sees the job run on the nodes, then end, and ``status
    --watch`` follows it there until the experiment is finished."""
    assert cluster == ["node1", "node2", "node3"]
    spec = tmp_path / "spread.yaml"
    spec.write_text("name: spread\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 10\n"
                    "space: {x: {uniform: [0, 1]}, epochs: 8, sleep: 0.5}\nresources: {gpus_per_rank: 1}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    job_id = _submit(tmp_path, spec, "--nodes", "3", "--tasks-per-node", "2", "--gpus-per-node", "2")
    folder = tmp_path / "runs" / "spread"
    seen_running, lines = None, []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and seen_running is None:
        if (folder / "experiment.h5").exists():
            lines = _status(folder)
            if lines[0].startswith("spread: running") and f"Slurm job {job_id}: RUNNING" in "\n".join(lines):
                seen_running = lines
        time.sleep(0.5)
    assert seen_running is not None, f"hpctune status never saw the job running: {lines}\n{cluster_queue()}"
    watch = subprocess.run([str(BIN / "hpctune"), "status", str(folder), "--watch", "--interval", "1"], env=_env(),
                           capture_output=True, text=True, timeout=240)
    assert watch.returncode == 0, watch.stderr
    watched = watch.stdout.splitlines()
    running = r"running: trial \d+ \(iteration \d+, loss=[\d.]+, rank [1-5], gpu [01], \d+s\)"
    assert any(re.search(running, line) for line in watched), watched
    assert any("| 10/10 finished |" in line for line in watched), watched[-3:]
    wait_until_ended(job_id, timeout=240)
    assert job_state(job_id) == "COMPLETED"
    analysis = hpctune.Analysis(folder)
    assert analysis.status == "finished" and len(analysis.trials) == 10
    results = analysis.results
    ranks = results[["rank", "hostname", "gpus"]].drop_duplicates()
    assert sorted(ranks.hostname.unique()) == ["node1", "node2", "node3"]
    assert ranks["rank"].is_unique  # one GPU for good per worker rank
    by_node = ranks.groupby("hostname").gpus.apply(sorted).to_dict()
    # rank 0 coordinates on node1 beside one worker; two workers on each other node, on GPUs 0 and 1
    assert by_node == {"node1": ["0"], "node2": ["0", "1"], "node3": ["0", "1"]}, by_node
    assert f"Slurm job {job_id}: not in the queue, 1 allocation(s) so far" in _status(folder)


def test_more_ranks_on_a_node_than_its_gpus_is_refused_before_submitting(tmp_path, cluster):
    """Three worker ranks on a node of two GPUs, one GPU a rank: refused in one line, nothing queued."""
    spec = tmp_path / "crowded.yaml"
    spec.write_text("name: crowded\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 1\n"
                    "space: {x: 0.5, epochs: 1, sleep: 0}\nresources: {gpus_per_rank: 1}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    done = subprocess.run([str(BIN / "hpctune"), "submit", str(spec), "--time", "5", "--nodes", "3",
                           "--tasks-per-node", "3", "--gpus-per-node", "2"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["hpctune: error: --gpus-per-node: 2 GPU(s) a node, but 3 worker rank(s) on a "
                                        "node x resources.gpus_per_rank 1 need 3"]
    assert not (tmp_path / "runs").exists()


def test_a_trial_of_four_ranks_spans_nodes_and_its_allreduce_sums_over_exactly_its_ranks(tmp_path, cluster):
    """``ranks_per_trial: 4`` with 3 ranks a node on 3 nodes (8 worker ranks: node1 has 2 beside the
    coordinator): each group needs two nodes; its ranks are started through Slurm (the nodes run no
    ssh server), and the allreduce of ``1000 * trial_id + rank`` over the trial's communicator is
    exactly the sum over its 4 ranks."""
    spec = tmp_path / "span.yaml"
    spec.write_text("name: span\ntrainable: trainable_fixtures:group_sum\nmetric: loss\nnum_samples: 4\n"
                    "space: {x: {uniform: [0, 1]}, epochs: 2, sleep: 0.2}\nresources: {ranks_per_trial: 4}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    job_id = _submit(tmp_path, spec, "--nodes", "3", "--tasks-per-node", "3")
    wait_until_ended(job_id, timeout=300)
    folder = tmp_path / "runs" / "span"
    log = (folder / "slurm" / f"{job_id}_0_log.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    analysis = hpctune.Analysis(folder)
    assert analysis.status == "finished" and len(analysis.trials) == 4
    results = analysis.results
    for row in results.itertuples():
        assert row.size == 4
        assert row.sum == 4 * 1000 * row.trial_id + (0 + 1 + 2 + 3)
    for trial_id, rows in results.groupby("trial_id"):
        seen = [re.fullmatch(r"(\d+)/(\d+)/(\d+)@([^:]+):(\d+)#[^%]*%(.+)", item) for item in rows.seen.iloc[0].split()]
        assert all(seen), rows.seen.iloc[0]
        assert sorted(int(m.group(1)) for m in seen) == [0, 1, 2, 3] and {m.group(2) for m in seen} == {"4"}
        addresses = {m.group(4) for m in seen}  # every rank meets at the leader's node, not at localhost
        assert len(addresses) == 1 and re.fullmatch(r"node[1-3]|10\.78\.0\.[1-3]", addresses.pop()), rows.seen.iloc[0]
    # srun places 3 ranks a node, in blocks (ranks 0-2 on node1, 3-5 on node2, 6-8 on node3): a group of
    # 4 distinct ranks spans two nodes or three
    segments = analysis.segments
    groups = [[int(rank) for rank in str(ranks).split(",")] for ranks in segments.ranks]
    assert len(groups) == 4 and all(len(set(group)) == 4 and 0 not in group for group in groups), segments
    assert all(len({rank // 3 for rank in group}) >= 2 for group in groups), segments
    # each process of a group runs on its member's node, whatever order srun started them in
    for trial_id, group in zip(segments.trial_id, groups):
        hosts = [item.rsplit("%", 1)[1] for item in results[results.trial_id == trial_id].seen.iloc[0].split()]
        assert hosts == [f"node{rank // 3 + 1}" for rank in group], (group, hosts)


def test_torch_ddp_over_gloo_across_two_nodes(tmp_path, cluster):
    """``examples/ddp.py --torch`` with one rank a node on 3 nodes: the coordinator on node1, the two
    worker ranks on node2 and node3, so each trial's DistributedDataParallel group (gloo, set up from
    the MASTER_ADDR/PORT hpctune gives) spans two nodes."""
    if not os.environ.get("HPCTUNE_CI"):  # CI installs PyTorch's CPU build: there it must run
        pytest.importorskip("torch")
    done = subprocess.run(["sbatch", "--parsable", "--nodes=3", "--ntasks-per-node=1", "--time=5",
                           f"--output={tmp_path / 'ddp.out'}", "--wrap",
                           f"srun --mpi=pmi2 python {REPO / 'examples' / 'ddp.py'} --torch --samples 2 "
                           f"--storage {tmp_path / 'runs'}"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, check=True)
    job_id = done.stdout.strip().split(";")[0]
    wait_until_ended(job_id, timeout=300)
    log = (tmp_path / "ddp.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    analysis = hpctune.Analysis(tmp_path / "runs" / "ddp-torch")
    assert analysis.status == "finished" and len(analysis.trials) == 2
    assert set(analysis.segments.ranks) <= {"1,2", "2,1"}, analysis.segments
    leaders = analysis.results[["rank", "hostname"]].drop_duplicates()
    assert set(map(tuple, leaders.values)) <= {(1, "node2"), (2, "node3")}, leaders
    assert analysis.results.val_loss.notna().all() and (analysis.results.val_loss < 3).all()


def test_a_worker_on_another_node_is_heard_while_a_worker_beside_the_coordinator_keeps_it_busy(cluster):
    """MPICH's ``Iprobe(ANY_SOURCE)`` reads shared memory first: with a node-local rank sending
    faster than rank 0 reads, a message from another node waited for all 20,000 of the local ones
    (``plain``). Sent and read as hpctune's workers and coordinator do (:mod:`hpctune.backends.mpi.inbox`),
    it is read within the first few."""
    read_before = {}
    for mode in ("plain", "inbox"):
        done = subprocess.run(["srun", "--nodes=2", "--ntasks=3", "--distribution=block", "--mpi=pmi2", "--time=3",
                               sys.executable, str(REPO / "tests" / "inbox_fairness_probe.py"), mode],
                              env=_env(), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        printed = json.loads(done.stdout.strip().splitlines()[-1])
        read_before[mode] = printed["read_before_other_node"]
    assert read_before["inbox"] <= 4, read_before
    assert read_before["plain"] >= 100, read_before  # 20,000 of 20,000 where nothing else ran


def test_the_gpu_template_on_two_nodes_binds_each_worker_rank_to_its_nodes_gpu(tmp_path, cluster):
    """``sbatch slurm/gpu.sbatch`` (2 nodes; here 2 GPUs a node, 5 tasks, at most 3 a node: the
    coordinator and 2 worker ranks on node1, 2 on node2; without the cap 4 ranks ran on node1), submitted from a folder without a .venv with hpctune on the
    PATH: every worker rank trains on one GPU of its own node, the two of a node on different ones."""
    spec = tmp_path / "gpus.yaml"
    spec.write_text("name: gpus\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 6\n"
                    "space: {x: {uniform: [0, 1]}, epochs: 3, sleep: 0.3}\nresources: {gpus_per_rank: 1}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    env = _env()
    env.pop("HPCTUNE_VENV", None)
    done = subprocess.run(["sbatch", "--parsable", "--gpus-per-node=2", "--ntasks=5", "--ntasks-per-node=3",
                           "--cpus-per-task=1",
                           "--time=5", f"--output={tmp_path / 'gpu.out'}", str(REPO / "slurm" / "gpu.sbatch"),
                           spec.name], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    job_id = done.stdout.strip().split(";")[0]
    wait_until_ended(job_id, timeout=300)
    log = (tmp_path / "gpu.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    assert "hpctune: allocation 1 of job" in log and "node[1-2]" in log, log[-3000:]
    analysis = hpctune.Analysis(tmp_path / "runs" / "gpus")
    assert analysis.status == "finished" and len(analysis.trials) == 6
    ranks = analysis.results[["rank", "hostname", "gpus"]].drop_duplicates()
    assert ranks["rank"].is_unique, ranks
    assert ranks.groupby("hostname").gpus.apply(sorted).to_dict() == {"node1": ["0", "1"], "node2": ["0", "1"]}, ranks



def _cluster_script(*arguments: str) -> None:
    done = subprocess.run([str(REPO / "scripts" / "virtual-cluster.sh"), *arguments], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def _wait_for_results(folder: Path, hostname: str, timeout: float) -> None:
    """Until a result from ``hostname`` is in the experiment's journal (read as ``hpctune status`` reads it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "experiment.h5").exists():
            try:
                results = hpctune.Analysis(folder).results
            except Exception:  # the file is being written: try again
                results = None
            if results is not None and hostname in set(results.get("hostname", [])):
                return
        time.sleep(0.5)
    raise AssertionError(f"no result from {hostname} within {timeout:.0f} s\n{cluster_queue()}")


def _counters_on_three_nodes(tmp_path: Path, name: str, trials: int) -> tuple[str, Path]:
    """Submit ``trials`` trials of 30 half-second iterations (a checkpoint each) on 3 nodes x 2 ranks;
    returns the job id and the experiment folder once a result came from node3."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"name: {name}\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: {trials}\n"
                    "space: {x: {uniform: [0, 1]}, epochs: 30, sleep: 0.5}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    job_id = _submit(tmp_path, spec, "--nodes", "3", "--tasks-per-node", "2")
    folder = tmp_path / "runs" / name
    _wait_for_results(folder, "node3", timeout=120)
    return job_id, folder


def _crash_mid_run(tmp_path: Path, name: str, node: str) -> tuple[str, Path, float]:
    """8 trials on 3 nodes; ``node`` crashed 2 s after node3's first result (trials on every node,
    with checkpoints). Returns the job id, the experiment folder and when the crash came."""
    job_id, folder = _counters_on_three_nodes(tmp_path, name, 8)
    time.sleep(2)
    crashed = time.time()
    _cluster_script("crash", node)
    return job_id, folder, crashed


def _wait_until_pending(job_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (job_state(job_id) or "").startswith("PENDING") and time.monotonic() < deadline:
        time.sleep(0.5)
    assert (job_state(job_id) or "").startswith("PENDING"), job_state(job_id)


def _each_iteration_once(analysis, trials: int) -> None:
    """The experiment finished; every trial reported each of its 30 iterations exactly once."""
    assert analysis.status == "finished" and len(analysis.trials) == trials
    for trial_id, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, 31)), (trial_id, sorted(rows.training_iteration))


def _finished_without_node3(job_id: str, folder: Path, trials: int):
    """The job COMPLETED after its ranks' step started again on node1 and node2, and the experiment
    finished with every iteration reported once; its log and results."""
    log = (folder / "slurm" / f"{job_id}_0_log.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    assert re.search(r"hpctune: [0-9:]+ node3 lost \(the ranks' step ended with \d+\); starting 4 ranks again on "
                     r"node1, node2", log), log[-3000:]
    analysis = hpctune.Analysis(folder)
    _each_iteration_once(analysis, trials)
    return log, analysis.results


def test_a_worker_node_lost_mid_run_the_ranks_start_again_on_the_nodes_left_and_nothing_is_lost(tmp_path, cluster):
    """``submit --nodes 3 --tasks-per-node 2``; node3 crashes (its slurmd and every process on it killed)
    while its two ranks run trials. The allocation stays (``--no-kill``); the ranks' step ends, and the
    batch script starts 4 ranks again on node1 and node2 within a minute of the crash: the experiment
    resumes from its journal, the trials that ran on node3 from their last checkpoints. Every trial
    reports each of its iterations exactly once (nothing accepted lost, nothing repeated)."""
    try:
        job_id, folder, crashed = _crash_mid_run(tmp_path, "lose", "node3")
        wait_until_ended(job_id, timeout=300)
    finally:
        _cluster_script("revive", "node3")
    _, results = _finished_without_node3(job_id, folder, 8)
    after = results[results.timestamp > crashed + 1]
    assert set(after.hostname) == {"node1", "node2"}
    # the trials node3 ran went on from their checkpoints, on the nodes left
    on_node3 = set(results[results.hostname == "node3"].trial_id)
    resumed = after[after.trial_id.isin(on_node3) & (after.started_from > 0)]
    assert set(resumed.trial_id) == on_node3 - set(results[(results.hostname == "node3")
                                                           & (results.training_iteration == 30)].trial_id)
    # only the restarted step's trials start from a checkpoint: its first result is the recovery
    recovered_in = results[results.started_from > 0].timestamp.min() - crashed
    print(f"worker node lost: trials ran again {recovered_in:.1f} s after the crash")
    assert recovered_in < 60, f"trials ran again {recovered_in:.0f} s after the crash"


def test_the_coordinators_node_lost_the_job_is_requeued_and_the_next_allocation_resumes_with_nothing_lost(
        tmp_path, cluster):
    """node1 crashes: the batch script, the coordinator and a worker rank go with it. Slurm keeps the
    job (``--no-kill``) without its first node; the guard on node2 requeues it, and the next
    allocation (once node1 is back, as a rebooted node comes back) resumes the experiment from its
    journal: every trial reports each of its iterations exactly once."""
    try:
        job_id, folder, crashed = _crash_mid_run(tmp_path, "head", "node1")
        _wait_until_pending(job_id, timeout=90)
        print(f"first node lost: the job was back in the queue {time.time() - crashed:.1f} s after the crash")
    finally:
        _cluster_script("revive", "node1")
    wait_until_ended(job_id, timeout=300)
    guard_log = (folder / "slurm" / f"{job_id}_guard_node2.out").read_text()
    assert (f"node1, the first node of job {job_id} (its batch script and coordinator), lost; requeueing the job"
            in guard_log), guard_log
    log = (folder / "slurm" / f"{job_id}_0_log.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    analysis = hpctune.Analysis(folder)
    _each_iteration_once(analysis, 8)
    assert analysis.results.started_from.max() > 0  # trials went on from their checkpoints


def test_a_job_requeued_onto_fewer_nodes_goes_on_with_as_many_ranks_a_node_on_what_it_got(tmp_path, cluster):
    """A 3-node job is requeued and, while it waits, given 2 nodes (``scontrol update NumNodes=2
    NumTasks=4``, as an administrator or a shrinking partition would): the next allocation starts
    2 ranks a node on its 2 nodes (Slurm keeps the first allocation's task count in the batch
    script's environment; the batch script takes it from the nodes it got) and resumes the
    experiment: nothing lost, nothing repeated."""
    job_id, folder = _counters_on_three_nodes(tmp_path, "shrink", 6)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    _wait_until_pending(job_id, timeout=60)
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "NumNodes=2", "NumTasks=4"], check=True)
    wait_until_ended(job_id, timeout=300)
    log = (folder / "slurm" / f"{job_id}_0_log.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    assert re.search(r"allocation 2: .*\n.*resuming .*: 3 worker ranks \(srun\)", log), log[-3000:]
    analysis = hpctune.Analysis(folder)
    _each_iteration_once(analysis, 6)
    resumed = analysis.results[analysis.results.started_from > 0]
    assert len(resumed) and len(set(resumed.hostname)) == 2  # the two nodes it got


def _only_slurm_runs_on(node: str) -> list[str]:
    """The processes still running in ``node``'s namespace that are not its slurmd."""
    pids = subprocess.run(["ip", "netns", "pids", f"hpcn{node.removeprefix('node')}"], capture_output=True,
                          text=True).stdout.split()
    names = []
    for pid in pids:
        try:
            names.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip())
        except OSError:
            continue
    return [name for name in names if name and not name.startswith("slurmd")]


def test_a_node_cut_off_for_60_s_the_experiment_goes_on_without_it_and_nothing_is_lost(tmp_path, cluster):
    """node3's link goes down for 60 s while its ranks run trials: they run on, cut off. Slurm takes the
    node out of the job once its slurmd is silent (``SlurmdTimeout``), the ranks' step ends, and the
    batch script starts it again on node1 and node2 within a minute of the cut, as for a crash: nothing
    waits on the cut-off ranks. When the link is back, Slurm ends what the job left on node3. The
    experiment finishes: every trial reports each of its iterations exactly once."""
    job_id, folder = _counters_on_three_nodes(tmp_path, "cut", 12)
    time.sleep(2)
    cut_at = time.time()
    _cluster_script("cut", "node3")
    try:
        time.sleep(60)
    finally:
        _cluster_script("reconnect", "node3")
    wait_until_ended(job_id, timeout=300)
    log, results = _finished_without_node3(job_id, folder, 12)
    recovered_in = results[(results.timestamp > cut_at) & (results.started_from > 0)].timestamp.min() - cut_at
    print(f"node cut off: trials ran again {recovered_in:.1f} s after the cut")
    assert "requeueing the job" not in log and recovered_in < 60, log[-3000:]
    assert "node3" not in set(results[(results.timestamp > cut_at + 1) & (results.timestamp < cut_at + 60)].hostname)
    deadline = time.monotonic() + 60  # what the job left on node3 is ended once Slurm hears from the node
    while _only_slurm_runs_on("node3") and time.monotonic() < deadline:
        time.sleep(1)
    assert _only_slurm_runs_on("node3") == []


def test_a_slow_node_is_not_taken_for_lost_and_its_trials_finish(tmp_path, cluster):
    """node3's job processes run 1 s of every 4 (stopped 3 s, let run 1 s) for 40 s, while its ranks run
    trials: its ranks stay silent up to a few seconds at a time, below the watchdog's 20 s. Nothing is
    taken for lost (no restarted step, no "stopped answering"), node3's trials go on at a quarter of
    the speed, and the experiment finishes with every iteration reported exactly once."""
    job_id, folder = _counters_on_three_nodes(tmp_path, "slow", 8)
    slowed_at = time.time()
    slow = subprocess.run([str(REPO / "scripts" / "virtual-cluster.sh"), "slow", "node3", "40"],
                          capture_output=True, text=True, timeout=120)
    assert slow.returncode == 0, slow.stderr
    wait_until_ended(job_id, timeout=300)
    log = (folder / "slurm" / f"{job_id}_0_log.out").read_text()
    assert job_state(job_id) == "COMPLETED", log[-3000:]
    assert " lost " not in log and "stopped answering" not in log, log[-3000:]
    analysis = hpctune.Analysis(folder)
    _each_iteration_once(analysis, 8)
    results = analysis.results
    assert analysis.results.started_from.max() == 0  # one step from start to end: nothing restarted
    slowed = results[(results.timestamp > slowed_at + 4) & (results.timestamp < slowed_at + 40)]
    pace = {host: (rows.groupby("trial_id").timestamp.agg(lambda t: (t.max() - t.min()) / max(1, len(t) - 1))).mean()
            for host, rows in slowed.groupby("hostname")}
    print(f"slow node: mean seconds a trial's iteration took while slowed, by node: {pace}")
    assert pace["node3"] > 1.5 * max(pace["node1"], pace["node2"]), pace  # 0.5 s an iteration elsewhere
