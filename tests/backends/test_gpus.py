"""GPU binding: each worker rank's trials see only the devices it was given, from the node's list."""
from __future__ import annotations

import socket

import pytest

import hpctune
from hpctune.backends.gpus import assign_devices, node_names, visible_devices
from hpctune.errors import SpecError


def _workers(layout: dict[int, str], devices: list[str], source: str = "CUDA_VISIBLE_DEVICES=...") -> dict:
    return {worker_id: {"node": node, "hostname": node, "devices": devices, "devices_from": source}
            for worker_id, node in layout.items()}


@pytest.mark.parametrize("environ, expected", [
    ({"CUDA_VISIBLE_DEVICES": "4,5,6,7"}, ["4", "5", "6", "7"]),
    ({"CUDA_VISIBLE_DEVICES": ""}, []),
    ({"CUDA_VISIBLE_DEVICES": "GPU-1a2b,GPU-3c4d"}, ["GPU-1a2b", "GPU-3c4d"]),   # UUIDs pass through
    ({"HIP_VISIBLE_DEVICES": "0,1"}, ["0", "1"]),
    ({"ROCR_VISIBLE_DEVICES": "2"}, ["2"]),
])
def test_the_node_s_devices_come_from_the_variables_slurm_sets(environ, expected):
    assert visible_devices(environ)[0] == expected


def test_two_nodes_of_four_gpus_one_per_rank():
    workers = _workers({1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "b", 7: "b", 8: "a"}, ["0", "1", "2", "3"])
    assert assign_devices(workers, 1) == {1: ["0"], 2: ["1"], 3: ["2"], 8: ["3"],
                                          4: ["0"], 5: ["1"], 6: ["2"], 7: ["3"]}


def test_one_node_of_four_given_gpus_two_per_rank():
    assert assign_devices(_workers({1: "n", 2: "n"}, ["4", "5", "6", "7"]), 2) == {1: ["4", "5"], 2: ["6", "7"]}


def test_no_gpus_asked_none_given():
    assert assign_devices(_workers({1: "n", 2: "n"}, []), 0) == {1: [], 2: []}


def test_more_gpus_than_the_node_has_is_refused_naming_the_node_and_the_count():
    workers = _workers({1: "a", 2: "b", 3: "b", 4: "b"}, ["0", "1"], "CUDA_VISIBLE_DEVICES=0,1")
    with pytest.raises(SpecError) as refused:
        assign_devices(workers, 1)
    assert str(refused.value) == ("resources.gpus_per_rank: 1 GPU(s) for each of the 3 worker ranks on node b "
                                  "need 3, but it has 2 (CUDA_VISIBLE_DEVICES=0,1)")


def _spec(tmp_path, name: str, gpus_per_rank: int, num_samples: int) -> str:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"name: {name}\ntrainable: trainable_fixtures:reports_devices\nmetric: loss\n"
                    f"num_samples: {num_samples}\nspace: {{x: {{uniform: [0, 1]}}, epochs: 2}}\n"
                    f"resources: {{gpus_per_rank: {gpus_per_rank}}}\nstorage: {tmp_path / 'runs'}\n")
    return str(spec)


def _devices_by_rank(folder) -> dict[int, set]:
    results = hpctune.Analysis(folder).results
    assert (results.cuda == results.hip).all() and (results.cuda == results.gpus).all()
    return {int(rank): set(rows.cuda) for rank, rows in results.groupby("rank")}


@pytest.mark.mpi
def test_one_node_with_cuda_visible_devices_4_to_7(tmp_path, run_cli):
    done = run_cli("run", _spec(tmp_path, "cvd", 1, 8), mpi_ranks=5, env={"CUDA_VISIBLE_DEVICES": "4,5,6,7"})
    assert done.returncode == 0, done.stderr
    assert _devices_by_rank(tmp_path / "runs" / "cvd") == {1: {"4"}, 2: {"5"}, 3: {"6"}, 4: {"7"}}
    shown = run_cli("analyze", str(tmp_path / "runs" / "cvd"))
    assert "GPUs by rank: 1: 4, 2: 5, 3: 6, 4: 7" in shown.stdout.splitlines()


@pytest.mark.mpi
def test_two_emulated_nodes_two_gpus_per_rank(tmp_path, run_cli):
    """Node a: the coordinator (no GPU) and ranks 1, 2; node b: ranks 3, 4; four GPUs on each."""
    done = run_cli("run", _spec(tmp_path, "nodes", 2, 6), mpi_ranks=5,
                   env={"CUDA_VISIBLE_DEVICES": "0,1,2,3", "HPCTUNE_NODE_OF_RANK": "a,a,a,b,b"})
    assert done.returncode == 0, done.stderr
    assert _devices_by_rank(tmp_path / "runs" / "nodes") == {1: {"0,1"}, 2: {"2,3"}, 3: {"0,1"}, 4: {"2,3"}}


@pytest.mark.mpi
def test_spawned_workers_are_bound_too(tmp_path, run_cli):
    done = run_cli("run", _spec(tmp_path, "spawned", 1, 4), "--workers", "2", env={"CUDA_VISIBLE_DEVICES": "2,3"})
    assert done.returncode == 0, done.stderr
    assert _devices_by_rank(tmp_path / "runs" / "spawned") == {1: {"2"}, 2: {"3"}}


@pytest.mark.mpi
def test_too_few_gpus_is_bad_input_before_any_trial_starts(tmp_path, run_cli):
    done = run_cli("run", _spec(tmp_path, "few", 1, 4), mpi_ranks=4, env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"hpctune: error: resources.gpus_per_rank: 1 GPU(s) for each of the 3 worker ranks on node "
        f"{socket.gethostname()} need 3, but it has 2 (CUDA_VISIBLE_DEVICES=0,1)")
    assert not (tmp_path / "runs" / "few").exists()      # no experiment left behind


def test_the_local_backend_binds_its_one_rank(tmp_path, run_cli):
    done = run_cli("run", _spec(tmp_path, "local", 2, 1), "--backend", "local", env={"CUDA_VISIBLE_DEVICES": "5,6,7"})
    assert done.returncode == 0, done.stderr
    assert set(hpctune.Analysis(tmp_path / "runs" / "local").results.cuda) == {"5,6"}


def test_the_node_list_names_the_coordinator_then_each_worker_rank():
    assert node_names(3, {"HPCTUNE_NODE_OF_RANK": "a, a ,b"}) == ["a", "a", "b"]
    assert node_names(3, {}) is None
    with pytest.raises(SpecError) as refused:
        node_names(3, {"HPCTUNE_NODE_OF_RANK": "a,,b"})
    assert str(refused.value) == "HPCTUNE_NODE_OF_RANK: an empty node name in 'a,,b'"


@pytest.mark.mpi
def test_spawned_workers_take_the_nodes_mpiexec_ranks_take(tmp_path, run_cli):
    """The same list, the same topology: spawned worker k is rank k of the list, as under mpiexec
    (test_two_emulated_nodes_two_gpus_per_rank); it was k-1 (node a got three workers, and six GPUs)."""
    done = run_cli("run", _spec(tmp_path, "spawned_nodes", 2, 6), "--workers", "4",
                   env={"CUDA_VISIBLE_DEVICES": "0,1,2,3", "HPCTUNE_NODE_OF_RANK": "a,a,a,b,b"})
    assert done.returncode == 0, done.stderr
    assert _devices_by_rank(tmp_path / "runs" / "spawned_nodes") == {1: {"0,1"}, 2: {"2,3"}, 3: {"0,1"}, 4: {"2,3"}}


@pytest.mark.mpi
@pytest.mark.parametrize("launch", ["spawned", "mpiexec"])
def test_a_node_list_that_does_not_name_every_rank_is_refused(tmp_path, run_cli, launch):
    """Two names for three ranks: spawned workers took it (the coordinator was not counted), mpiexec's
    third rank failed alone; now one rule, refused before anything is written."""
    spec = _spec(tmp_path, "short_list", 0, 2)
    env = {"HPCTUNE_NODE_OF_RANK": "a,b"}
    done = (run_cli("run", spec, "--workers", "2", env=env) if launch == "spawned"
            else run_cli("run", spec, mpi_ranks=3, env=env))
    line = ("hpctune: error: HPCTUNE_NODE_OF_RANK: names 2 rank(s), but this run has 3 (rank 0, the coordinator, "
            "and 2 worker rank(s)): give one node for each")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count(line) == (1 if launch == "spawned" else 3), done.stderr  # mpiexec: from each rank
    assert done.stderr.replace(line, "").strip() == ""
    assert not (tmp_path / "runs").exists()
