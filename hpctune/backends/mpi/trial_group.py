"""A trial that spans ranks: its k processes are a small MPI job of their own, one per segment.

``resources.ranks_per_trial: k`` gives a trial k worker ranks (the coordinator's
:class:`~hpctune.backends.mpi.placement.RankPool` picks them, on one node when it can). The first
of them leads it: for each segment its worker starts ``mpiexec -n k -hosts <the ranks' hosts>
python -m hpctune.backends.mpi.group_main ADDRESS HOST...`` (the MPI library's own launcher, in a
session of its own), whose COMM_WORLD, reordered so its rank r runs on member r's host, is the
trial's communicator (:func:`hpctune.get_comm`). The other
ranks' workers stay idle while it runs: their rank slots and GPUs are the group's. Rank 0 of the
small job connects back to the leading worker over a Unix socket and speaks the protocol of a
one-rank trial process (:mod:`~hpctune.backends.mpi.trial_process`), so results, decisions and
control messages travel as for any trial.

Why a job of its own: the experiment's ranks are one MPI job, and a process of it that dies
ends all of it. A rank of the small job that dies (or fails) ends only the small job (its
process manager kills the rest; a failing rank calls ``MPI_Abort``): the trial becomes an ERROR,
retried from its leader's checkpoint, and the experiment goes on.
"""
from __future__ import annotations

import functools
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from .trial_process import TICK_S, TrialProcess, describe_exit, trial_environment

__all__ = ["GroupTrialProcess", "allocation_nodes", "group_members", "hosts_argument", "mpiexec_command",
           "member_error_path", "GROUP_START_TIMEOUT_S"]

GROUP_START_TIMEOUT_S = 120.0
"""Seconds a trial's group may take to start and connect (``HPCTUNE_GROUP_START_TIMEOUT``)."""


def group_members(ranks: list[int], hostnames: dict[int, str], gpus: dict[int, list[str]] | None) -> list[dict]:
    """The members of a trial placed on ``ranks`` (leader first), in the order of their ranks in the
    trial's communicator: the leader's host first, each host's ranks together (``mpiexec -hosts``
    fills hosts in order)."""
    hosts = list(dict.fromkeys(hostnames[rank] for rank in ranks))
    ordered = sorted(ranks, key=lambda rank: hosts.index(hostnames[rank]))  # stable: the leader stays first
    return [{"rank": rank, "host": hostnames[rank], "gpus": (gpus or {}).get(rank)} for rank in ordered]


def hosts_argument(members: list[dict], node_order: list[str] | None = None) -> str:
    """``mpiexec -hosts`` for ``members``: ``"nodeA:2,nodeB:1"``, the hosts in ``node_order`` (those it
    does not name last, in the members' order).

    Under Slurm, MPICH's mpiexec starts one proxy a host with ``srun --nodelist``, and srun places
    them in the allocation's node order, not in the order asked: proxy i must be asked for the
    allocation's i-th host of the group, or a host gets another host's count of processes.
    """
    counts: dict[str, int] = {}
    for member in members:
        counts[member["host"]] = counts.get(member["host"], 0) + 1
    order = {host: index for index, host in enumerate(node_order or [])}
    hosts = sorted(counts, key=lambda host: order.get(host, order.get(host.split(".")[0], len(order))))
    return ",".join(f"{host}:{counts[host]}" for host in hosts)


@functools.lru_cache(maxsize=1)
def allocation_nodes() -> list[str]:
    """The Slurm allocation's nodes in Slurm's order (``SLURM_JOB_NODELIST`` expanded); [] outside Slurm."""
    from ...slurm.job import hostnames

    return hostnames(os.environ.get("SLURM_JOB_NODELIST"))


def mpiexec_command() -> list[str]:
    """The command that starts a trial's group: ``HPCTUNE_GROUP_MPIEXEC`` if set (say,
    ``mpiexec -launcher ssh``), else the ``mpiexec`` of this MPI on PATH.

    Raises:
        OSError: no mpiexec is found.
    """
    text = os.environ.get("HPCTUNE_GROUP_MPIEXEC", "").strip()
    if text:
        return shlex.split(text)
    found = shutil.which("mpiexec")
    if found is None:
        raise OSError("no mpiexec on PATH to start a multi-rank trial with (set HPCTUNE_GROUP_MPIEXEC)")
    return [found]


def member_error_path(trial_dir: str, group_rank: int) -> Path:
    """Where rank ``group_rank`` of a trial's group writes why it failed, before it ends the group."""
    return Path(trial_dir) / f".group_error.{group_rank}"


def _killed_with_parent() -> None:
    """In the child, before exec: SIGKILL when the parent dies (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # no libc prctl here
        pass


class GroupTrialProcess(TrialProcess):
    """The leading worker's side of a multi-rank trial's processes, for one segment.

    Args:
        rank: the leading worker rank.
        members: the trial's members (:func:`group_members`).
    """

    def __init__(self, rank: int, members: list[dict], trial_dir: str):
        super().__init__(rank)
        self.members = members
        self.trial_dir = trial_dir
        self._folder: str | None = None

    def start(self, waiting: Callable[[], None] | None = None) -> None:
        """Start the group and wait until its rank 0 connects (calling ``waiting()`` every tick).

        Raises:
            OSError: it could not start, or ended before connecting, or took too long.
        """
        for stale in Path(self.trial_dir).glob(".group_error.*"):
            stale.unlink()
        self._folder = tempfile.mkdtemp(prefix="hpctune-group-")
        address = os.path.join(self._folder, "leader")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(address)
            server.listen(1)
            env = trial_environment()
            env["HPCTUNE_WORKER_RANK"] = str(self.rank)
            if env.get("SLURM_JOB_ID"):
                # under Slurm, MPICH's mpiexec starts its proxies with srun: a step that must share
                # the CPUs the job's ranks hold, or it waits for them for ever
                env.setdefault("HYDRA_LAUNCHER_EXTRA_ARGS", "--overlap")
            command = mpiexec_command() + ["-n", str(len(self.members)), "-hosts",
                                           hosts_argument(self.members, allocation_nodes()),
                                           sys.executable, "-m", "hpctune.backends.mpi.group_main", address,
                                           *(member["host"] for member in self.members)]
            # a session of its own: a Ctrl-C in the terminal is the coordinator's to act on, not mpiexec's;
            # and it goes when this worker goes (its proxies then kill the ranks): no orphans on a node
            self._proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=_killed_with_parent)
            limit = float(os.environ.get("HPCTUNE_GROUP_START_TIMEOUT", GROUP_START_TIMEOUT_S))
            deadline = time.monotonic() + limit
            while not select.select([server], [], [], TICK_S)[0]:
                if self._proc.poll() is not None:
                    raise OSError("its processes ended before they connected")
                if time.monotonic() > deadline:
                    raise OSError(f"its processes did not connect within {limit:.0f} s")
                if waiting is not None:
                    waiting()
            connection, _ = server.accept()
            self._conn = Connection(connection.detach())
        finally:
            server.close()

    def _died(self) -> str:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()  # mpiexec's proxies kill the ranks when it goes
                code = self._proc.wait()
        self._cleanup()
        size = len(self.members)
        for group_rank in range(size):
            path = member_error_path(self.trial_dir, group_rank)
            if path.exists():
                text = path.read_text(errors="replace")
                path.unlink()
                return f"rank {group_rank} of the trial's {size} ranks (worker rank " \
                       f"{self.members[group_rank]['rank']}) failed:\n{text}"
        how = "could not start" if code is None else f"mpiexec {describe_exit(code)}"
        return f"the trial's group of {size} ranks ended ({how}): one of its processes died; its output says which"

    def _cleanup(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
        self._cleanup()

    def close(self) -> None:
        """Wait for the group to exit after its segment (each group runs one), and make sure it does."""
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._cleanup()
