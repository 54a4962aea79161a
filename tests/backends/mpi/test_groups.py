"""Trials that span ranks (``resources.ranks_per_trial``): a communicator of their own, scheduled as
groups, paused, resumed and retried like any trial; a member's death fails the trial, not the run."""
from __future__ import annotations

import importlib.util
import itertools
import os
import re
import signal
import time

import pytest

import hpctune
from hpctune.backends.mpi.group_main import member_assignment
from hpctune.backends.mpi.trial_group import hosts_argument

from conftest import REPO, kill_run, resume_to_the_end, run_pids, start_run, wait_for_results

pytestmark = pytest.mark.mpi


def _spec(tmp_path, name: str, num_samples: int = 4, epochs: int = 3, ranks: int = 2, space: str = "",
          extra: str = ""):
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ntrainable: trainable_fixtures:group_sum\nmetric: loss\n"
                    f"num_samples: {num_samples}\nspace: {{x: {{uniform: [0, 1]}}, epochs: {epochs}{space}}}\n"
                    f"resources: {{ranks_per_trial: {ranks}}}\nstorage: {tmp_path / 'runs'}\n{extra}")
    return path


def _overlap(a, b) -> bool:
    return a.start < b.end and b.start < a.end


@pytest.mark.parametrize("launcher", ["spawn", "mpiexec"])
def test_two_rank_trials_allreduce_over_exactly_their_own_ranks(tmp_path, run_cli, launcher):
    spec = _spec(tmp_path, "pairs", space=", sleep: 0.3")
    if launcher == "spawn":
        done = run_cli("run", str(spec), "--workers", "4")
    else:
        done = run_cli("run", str(spec), mpi_ranks=5)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / "pairs")
    results, segments = analysis.results, analysis.segments
    assert len(results) == 12 and set(analysis.trials.state) == {"TERMINATED"}
    # 1000 * trial id from each of the two ranks, plus their ranks in the trial (0 + 1): never another trial's
    assert list(results["sum"]) == [2000 * trial_id + 1 for trial_id in results.trial_id]
    assert set(results["size"]) == {2}
    for trial_id, rows in results.groupby("trial_id"):
        seen = rows.seen.iloc[0].split()
        assert [text.split("@")[0] for text in seen] == ["0/2/0", "1/2/1"]  # RANK/WORLD_SIZE/LOCAL_RANK
        assert len({text.split("@")[1] for text in seen}) == 1  # one MASTER_ADDR:MASTER_PORT per trial
    groups = [ranks.split(",") for ranks in segments.ranks]
    assert all(len(group) == 2 for group in groups)
    assert set(itertools.chain(*groups)) == {"1", "2", "3", "4"}
    leaders = dict(zip(segments.trial_id, (int(group[0]) for group in groups)))
    assert all(row.rank == leaders[row.trial_id] for row in results.itertuples())  # the leader's reports count
    pairs = list(itertools.combinations(segments.itertuples(), 2))
    assert any(_overlap(a, b) for a, b in pairs)  # two trials ran side by side...
    for a, b in pairs:
        if _overlap(a, b):  # ...on ranks of their own
            assert not set(a.ranks.split(",")) & set(b.ranks.split(","))
    assert 0 < analysis.utilization() <= 1


def test_each_process_of_a_group_is_the_member_on_its_own_host_whatever_order_the_launcher_used():
    """``srun`` starts a group's processes in the allocation's node order, not in ``-hosts``' order:
    a process takes the first member left on its host, so the communicator's rank 0 (which connects
    to the leading worker's Unix socket, and is ``MASTER_ADDR``) runs on the leader's node."""
    # members: the leader and one more on node3, one on node2; srun put node2's process first
    assert member_assignment(["node2", "node3", "node3"], ["node3", "node3", "node2"]) == [2, 0, 1]
    assert member_assignment(["a", "a", "b", "b"], ["a", "a", "b", "b"]) == [0, 1, 2, 3]
    assert member_assignment(["b", "a"], ["a", "b"]) == [1, 0]
    # a process on a host no member names (another spelling of it) takes the first member left
    assert member_assignment(["x.cluster", "a"], ["a", "x"]) == [1, 0]


def test_a_groups_hosts_are_asked_of_mpiexec_in_the_allocations_node_order():
    """srun starts mpiexec's proxy i on the allocation's i-th node of the group, so ``-hosts`` names
    them in that order (else node2 would get node3's count of processes); hosts the allocation does
    not name come last, and outside Slurm the members' order is kept."""
    members = [{"host": host} for host in ("node3", "node3", "node3", "node2")]
    assert hosts_argument(members, ["node1", "node2", "node3"]) == "node2:1,node3:3"
    assert hosts_argument(members, []) == "node3:3,node2:1"
    assert hosts_argument(members + [{"host": "login"}], ["node2", "node3"]) == "node2:1,node3:3,login:1"
    assert hosts_argument([{"host": "n2.cluster"}, {"host": "n1.cluster"}], ["n1", "n2"]) == "n1.cluster:1,n2.cluster:1"


def test_each_rank_of_a_group_sees_only_its_own_gpus(tmp_path, run_cli):
    spec = _spec(tmp_path, "gpus", extra="", space="").read_text().replace(
        "resources: {ranks_per_trial: 2}", "resources: {ranks_per_trial: 2, gpus_per_rank: 1}")
    (tmp_path / "gpus.yaml").write_text(spec)
    done = run_cli("run", str(tmp_path / "gpus.yaml"), "--workers", "4", env={"CUDA_VISIBLE_DEVICES": "4,5,6,7"})
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / "gpus")
    device_of_rank = {"1": "4", "2": "5", "3": "6", "4": "7"}
    for segment in analysis.segments.itertuples():
        expected = [device_of_rank[rank] for rank in segment.ranks.split(",")]
        rows = analysis.results[analysis.results.trial_id == segment.trial_id]
        assert set(rows.gpus) == {";".join(expected)}
        assert [text.split("#")[1].split("%")[0] for text in rows.seen.iloc[0].split()] == expected


def test_a_group_takes_its_ranks_from_one_node_when_one_has_room(tmp_path, run_cli):
    """Node a: the coordinator and ranks 1, 2; node b: ranks 3, 4 (emulated): pairs never straddle."""
    done = run_cli("run", str(_spec(tmp_path, "nodes", num_samples=6)), mpi_ranks=5,
                   env={"HPCTUNE_NODE_OF_RANK": "a,a,a,b,b"})
    assert done.returncode == 0, done.stderr
    pairs = {frozenset(ranks.split(",")) for ranks in hpctune.Analysis(tmp_path / "runs" / "nodes").segments.ranks}
    assert pairs <= {frozenset({"1", "2"}), frozenset({"3", "4"})}


def test_three_rank_trials_on_four_workers_all_finish(tmp_path, run_cli):
    """One rank is always left over: the trials wait for three idle ranks, and none starves."""
    done = run_cli("run", str(_spec(tmp_path, "threes", num_samples=3, ranks=3)), "--workers", "4")
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / "threes")
    assert set(analysis.trials.state) == {"TERMINATED"}
    assert list(analysis.results["sum"]) == [3000 * trial_id + 3 for trial_id in analysis.results.trial_id]
    assert all(len(ranks.split(",")) == 3 for ranks in analysis.segments.ranks)


@pytest.mark.parametrize("kill_rank", [0, 1])
def test_a_killed_rank_fails_its_trial_which_is_retried_from_the_leader_s_checkpoint(tmp_path, run_cli, kill_rank):
    spec = _spec(tmp_path, f"kill{kill_rank}", num_samples=2, space=f", kill_rank: {kill_rank}",
                 extra="max_failures: 1\n")
    done = run_cli("run", str(spec), "--workers", "4")
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "runs" / f"kill{kill_rank}")
    assert set(analysis.trials.state) == {"TERMINATED"} and set(analysis.trials.num_failures) == {1}
    assert list(analysis.segments.how).count("ERROR") == 2
    for _, rows in analysis.results.groupby("trial_id"):
        assert list(rows.training_iteration) == [1, 2, 3]
        assert list(rows.started_from) == [0, 1, 1]
    assert "the trial's group of 2 ranks ended (mpiexec exited with code 9)" in done.stderr
    assert run_pids(spec) == []  # the group's processes are gone with it


def test_a_failing_rank_s_traceback_is_the_trial_s_error(tmp_path, run_cli):
    done = run_cli("run", str(_spec(tmp_path, "raises", num_samples=1, space=", raise_rank: 1")), "--workers", "2")
    assert done.returncode == 0, done.stderr
    trial = hpctune.Analysis(tmp_path / "runs" / "raises").trials.iloc[0]
    assert trial.state == "ERROR"
    first, *_, last = trial.error.strip().splitlines()
    assert re.fullmatch(r"rank 1 of the trial's 2 ranks \(worker rank [12]\) failed:", first), first
    assert last == "ValueError: boom on rank 1 of trial 0"


def _started(tmp_path, name: str, launcher: str):
    """Two 12-iteration two-rank trials on 2 workers (one at a time), once the first has reported."""
    spec = _spec(tmp_path, name, num_samples=2, epochs=12, space=", sleep: 0.15")
    folder = tmp_path / "runs" / name
    process = start_run(spec, launcher)
    try:
        wait_for_results(folder, trials=1)
    except BaseException:
        kill_run(spec)
        raise
    return spec, folder, process


@pytest.mark.slow
def test_group_trial_paused_by_ctrl_c_resumes_from_its_checkpoint(tmp_path):
    spec, folder, process = _started(tmp_path, "pause", "spawn")
    try:
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        kill_run(spec)
    assert process.returncode == 1, stderr
    assert "received SIGINT: pausing 1 running trial(s) at their next result" in stderr
    paused = hpctune.Analysis(folder).trials.set_index("trial_id")
    assert paused.state[0] == "PAUSED"
    analysis = resume_to_the_end(folder, trials=2, epochs=12)
    later = analysis.results[(analysis.results.trial_id == 0)
                             & (analysis.results.training_iteration > paused.training_iteration[0])]
    assert (later.started_from == paused.training_iteration[0]).all()
    assert set(later["sum"]) == {1}


@pytest.mark.slow
def test_group_trial_resumes_after_sigkill_of_the_whole_run(tmp_path):
    spec, folder, process = _started(tmp_path, "killed", "mpiexec")
    try:
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGKILL)  # mpiexec and the ranks; the trial's own job is not in this group
        process.wait()
        deadline = time.monotonic() + 10
        while run_pids(spec) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run_pids(spec) == []  # the trial's processes went with their worker: no orphans
    finally:
        kill_run(spec)
    cut = hpctune.Analysis(folder).results
    analysis = resume_to_the_end(folder, trials=2, epochs=12)
    assert analysis.results.started_from.max() > 0  # continued from a checkpoint, not from scratch
    assert len(analysis.results) == 24 and len(cut) < 24


def test_more_ranks_per_trial_than_workers_is_refused(tmp_path, run_cli):
    done = run_cli("run", str(_spec(tmp_path, "toobig", ranks=3)), "--workers", "2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "hpctune: error: resources.ranks_per_trial: 3 ranks per trial, but this run has 2 worker ranks")
    assert not (tmp_path / "runs" / "toobig").exists()


def test_the_local_backend_refuses_multi_rank_trials(tmp_path, run_cli):
    done = run_cli("run", str(_spec(tmp_path, "local")), "--backend", "local")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "hpctune: error: resources.ranks_per_trial: 2 ranks per trial need the mpi backend (the local backend "
        "runs one trial at a time in this process)")
    assert not (tmp_path / "runs" / "local").exists()


def _ddp_example(tmp_path, run_python, *flags: str):
    done = run_python("examples/ddp.py", "--storage", str(tmp_path), *flags, timeout=180)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / ("ddp-torch" if flags else "ddp-numpy"))
    assert set(analysis.trials.state) == {"TERMINATED"} and set(analysis.results.ranks) == {2}
    assert (analysis.segments.how == "PAUSED").any()  # ASHA paused trials; promoted ones resumed...
    resumed = analysis.segments.groupby("trial_id").size()
    assert (resumed > 1).any()
    for trial_id in resumed[resumed > 1].index:  # ...from their leader's checkpoint, iterations continuing
        rows = analysis.results[analysis.results.trial_id == trial_id]
        assert list(rows.training_iteration) == list(range(1, len(rows) + 1))
    assert analysis.results.val_acc.max() > 0.9  # it really trained


@pytest.mark.slow
def test_ddp_example_numpy_allreduce(tmp_path, run_python):
    _ddp_example(tmp_path, run_python)


@pytest.mark.slow
def test_ddp_example_torch_gloo(tmp_path, run_python):
    """torch.distributed.init_process_group("gloo") with no set-up of its own: hpctune's variables."""
    if importlib.util.find_spec("torch") is None:
        if os.environ.get("HPCTUNE_CI"):
            pytest.fail("CI installs torch for this test (.ci/run)")
        pytest.skip("torch is not installed")
    _ddp_example(tmp_path, run_python, "--torch")


def test_control_messages_reach_a_group_s_leader_at_once_and_its_other_ranks_at_their_next_report(tmp_path):
    import socket

    from hpctune.backends.mpi.launch import import_mpi
    from hpctune.backends.mpi.trial_group import GroupTrialProcess
    from hpctune.enums import Control, Decision
    from hpctune.trial import TrialTask

    import_mpi()  # this MPI's mpiexec on PATH, as on a worker rank
    host = socket.gethostname()
    members = [{"rank": 1, "host": host, "gpus": None}, {"rank": 2, "host": host, "gpus": None}]
    trial_dir = tmp_path / "trials" / "000000"
    trial_dir.mkdir(parents=True)
    task = TrialTask(trial_id=0, trainable="trainable_fixtures:group_checkpoints_on_request",
                     config={"lr": 0.1, "epochs": 4}, experiment_dir=str(tmp_path), trial_dir=str(trial_dir),
                     checkpoint=None, start_iteration=0, time_total_s=0.0, metric="loss", group=members,
                     python_path=[str(REPO / "tests")])
    process = GroupTrialProcess(1, members, str(trial_dir))
    seen = []

    def on_result(row, checkpoint):
        seen.append((row, checkpoint))
        if row["training_iteration"] == 1:
            process.send_control(Control.CONFIG, {"lr": 0.5, "epochs": 4})
        if row["training_iteration"] == 2:
            process.send_control(Control.CHECKPOINT, None)
        return Decision.CONTINUE

    try:
        how, error = process.run(task, on_result)
    finally:
        process.close()
    assert error is None
    assert [row["lrs"] for row, _ in seen] == ["0.1 0.1", "0.5 0.5", "0.5 0.5", "0.5 0.5"]
    assert [row["asked"] for row, _ in seen] == [0, 0, 1, 0]
    assert [checkpoint for _, checkpoint in seen] == [None, None, "trials/000000/checkpoint_000003.h5", None]
