"""GPU binding: which devices each worker rank's trials see.

Each worker rank reports, with its first message, the node it is on and the GPUs
it can see there (:func:`visible_devices`). The coordinator's backend then gives
the ``i``-th worker rank of a node (in rank order; the coordinator takes none)
devices ``i*g .. i*g+g-1`` of that node's list (:func:`assign_devices`), and a
trial's process sees only those: ``CUDA_VISIBLE_DEVICES`` and, for ROCm,
``HIP_VISIBLE_DEVICES`` are set to them (:func:`bind_devices`).

The node a rank is on comes from MPI's shared-memory split
(``MPI_COMM_TYPE_SHARED``), which works under any launcher; ``HPCTUNE_NODE_OF_RANK``
(a comma-separated node name for each rank: the coordinator, rank 0, then worker ranks 1..n)
overrides it, to emulate a topology of several nodes on one machine. The same list means the same
topology whether the worker ranks are started by ``mpiexec``/``srun`` or spawned (:func:`node_names`).
"""
from __future__ import annotations

import os
import shutil
import subprocess

from ..errors import SpecError

__all__ = ["visible_devices", "node_names", "node_of", "assign_devices", "bind_devices", "DEVICE_VARIABLES"]

DEVICE_VARIABLES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES")
"""Set for a trial's process to its devices (NVIDIA CUDA; AMD ROCm/HIP)."""

_SOURCES = ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES")


def visible_devices(environ=os.environ) -> tuple[list[str], str]:
    """The GPUs this process may use, and where that came from: the first of ``CUDA_VISIBLE_DEVICES``,
    ``HIP_VISIBLE_DEVICES``, ``ROCR_VISIBLE_DEVICES`` that is set (as Slurm sets it for an
    allocation), else the GPUs ``nvidia-smi -L`` lists (none without nvidia-smi)."""
    for name in _SOURCES:
        value = environ.get(name)
        if value is not None:
            devices = [item.strip() for item in value.split(",") if item.strip()]
            return [d for d in devices if d != "NoDevFiles"], f"{name}={value}"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return [], "no CUDA_VISIBLE_DEVICES and no nvidia-smi"
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return [], "nvidia-smi -L failed"
    devices = [line.split(":", 1)[0].split()[1] for line in listed.splitlines() if line.startswith("GPU ")]
    return devices, f"nvidia-smi -L lists {len(devices)}"


def node_names(ranks: int, environ=os.environ) -> list[str] | None:
    """The node of each of a run's ``ranks`` ranks, indexed as hpctune numbers them (0 the coordinator,
    1..n the worker ranks, under a launcher and spawned alike), from ``HPCTUNE_NODE_OF_RANK``; None
    when it is not set.

    Raises:
        SpecError: it does not name exactly ``ranks`` ranks, or names one with an empty name.
    """
    text = environ.get("HPCTUNE_NODE_OF_RANK")
    if text is None:
        return None
    names = [name.strip() for name in text.split(",")]
    if len(names) != ranks:
        raise SpecError("HPCTUNE_NODE_OF_RANK", f"names {len(names)} rank(s), but this run has {ranks} (rank 0, the "
                                                f"coordinator, and {ranks - 1} worker rank(s)): give one node for each")
    if not all(names):
        raise SpecError("HPCTUNE_NODE_OF_RANK", f"an empty node name in {text!r}")
    return names


def node_of(world) -> str:
    """A name for the node this rank of ``world`` (COMM_WORLD under a launcher) is on; collective over ``world``.

    From ``HPCTUNE_NODE_OF_RANK`` if set (:func:`node_names`), else the shared-memory split: ranks
    that share memory are on one node, named after the lowest world rank there.

    Raises:
        SpecError: ``HPCTUNE_NODE_OF_RANK`` does not name each rank of ``world`` (on every rank alike).
    """
    names = node_names(world.Get_size())
    if names is not None:
        return names[world.Get_rank()]
    from mpi4py import MPI

    local = world.Split_type(MPI.COMM_TYPE_SHARED, key=world.Get_rank())
    try:
        return f"node-of-rank-{local.allreduce(world.Get_rank(), op=MPI.MIN)}"
    finally:
        local.Free()


def assign_devices(workers: dict[int, dict], gpus_per_rank: int) -> dict[int, list[str]]:
    """Devices for each worker: ``workers`` maps worker id -> its first message (``node``,
    ``hostname``, ``devices``, ``devices_from``). The ``i``-th worker of a node (by id) gets
    devices ``i*g .. i*g+g-1`` of the list it sees.

    Raises:
        SpecError: a node has fewer GPUs than its worker ranks ask for (``resources.gpus_per_rank``).
    """
    if gpus_per_rank == 0:
        return {worker_id: [] for worker_id in workers}
    by_node: dict[str, list[int]] = {}
    for worker_id in sorted(workers):
        by_node.setdefault(workers[worker_id]["node"], []).append(worker_id)
    assigned = {}
    for node, ids in by_node.items():
        for index, worker_id in enumerate(ids):
            info = workers[worker_id]
            devices = info["devices"][index * gpus_per_rank:(index + 1) * gpus_per_rank]
            if len(devices) < gpus_per_rank:
                raise SpecError("resources.gpus_per_rank", (
                    f"{gpus_per_rank} GPU(s) for each of the {len(ids)} worker ranks on node {info['hostname']} "
                    f"need {gpus_per_rank * len(ids)}, but it has {len(info['devices'])} "
                    f"({info['devices_from']})"))
            assigned[worker_id] = devices
    return assigned


def bind_devices(devices: list[str] | None) -> None:
    """Make this process (a trial's) see only ``devices``; None: leave what it sees alone."""
    if devices is None:
        return
    for name in DEVICE_VARIABLES:
        os.environ[name] = ",".join(devices)
