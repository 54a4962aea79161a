"""The Slurm job a coordinator runs in: when its allocation ends, and putting it back in the queue.

Asked once, at start-up (one ``scontrol show job``), never polled: the end of an allocation
only moves if an administrator changes the time limit, and a loop of ``squeue`` calls from
every running experiment is what cluster administrators complain about. No Slurm (no
``SLURM_JOB_ID``): :meth:`SlurmJob.from_environment` returns None and nothing here runs.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SlurmJob", "parse_show_job", "parse_time_limit", "DEFAULT_MAX_REQUEUES", "stop_margin",
           "check_stop_before", "MAX_SIGNAL_DELAY_S", "SIGNAL_EARLY_S", "partition_nodes", "job_state", "FINAL_STATES",
           "stale_mpich_segments", "hostnames"]

DEFAULT_MAX_REQUEUES = 200
"""Allocations after the first one an experiment may requeue itself into (a week of one-hour ones, and more)."""


@dataclass(frozen=True)
class SlurmJob:
    """The job of this allocation, as Slurm described it at start-up.

    Attributes:
        job_id: ``SLURM_JOB_ID``.
        restarts: how often the job was requeued before this allocation (``SLURM_RESTART_COUNT``).
        start_time, end_time: Unix times of this allocation's start and end (None: no time limit known).
        time_limit_s: the job's time limit in seconds (None: unlimited or unknown).
        batch: whether the job is a batch job (only those can be requeued).
    """

    job_id: str
    restarts: int = 0
    start_time: float | None = None
    end_time: float | None = None
    time_limit_s: float | None = None
    batch: bool = True

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> SlurmJob | None:
        """The job this process runs in, or None outside Slurm. Slurm is asked once; if it does not
        answer, the job is known without its end (nothing is stopped early)."""
        job_id = environ.get("SLURM_JOB_ID")
        if not job_id:
            return None
        restarts = int(environ.get("SLURM_RESTART_COUNT", "0") or 0)
        try:
            shown = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True,
                                   text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return cls(job_id, restarts)
        if shown.returncode != 0:
            return cls(job_id, restarts)
        fields = parse_show_job(shown.stdout)
        return cls(job_id, int(fields.get("Restarts", restarts) or restarts), _time(fields.get("StartTime")),
                   _time(fields.get("EndTime")), _duration(fields.get("TimeLimit")),
                   fields.get("BatchFlag", "1") == "1")

    def seconds_left(self, now: float | None = None) -> float | None:
        """Seconds until this allocation ends (None: no end known)."""
        if self.end_time is None or self.time_limit_s is None:
            return None
        return self.end_time - (time.time() if now is None else now)

    def requeue(self) -> str | None:
        """Put the job back in the queue (``scontrol requeue``): Slurm ends this allocation's
        processes and runs the batch script again in the next one. Returns why not, or None."""
        try:
            done = subprocess.run(["scontrol", "requeue", self.job_id], capture_output=True, text=True,
                                  timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
        return None if done.returncode == 0 else (done.stderr.strip() or f"scontrol exited with {done.returncode}")


def parse_show_job(text: str) -> dict[str, str]:
    """``scontrol show job --oneliner`` output -> ``{field: value}`` (first occurrence of each)."""
    fields: dict[str, str] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def stop_margin(time_limit_s: float | None, asked: float | None = None) -> float:
    """Seconds before the allocation's end at which running trials are told to checkpoint and pause:
    ``asked`` (``--stop-before``), else 120 s, or a quarter of a time limit shorter than 8 minutes."""
    if asked is not None:
        return asked
    if time_limit_s is None:
        return 120.0
    return min(120.0, time_limit_s / 4)


SIGNAL_EARLY_S = 60.0
"""Slurm sends a job's warning signal (``sbatch --signal``) up to this many seconds earlier than asked."""

MAX_SIGNAL_DELAY_S = 65535
"""The most seconds before the end that ``sbatch --signal=USR2@S`` takes (Slurm's limit)."""


def check_stop_before(stop_before: float, time_limit_s: float, where: str) -> None:
    """Refuse a stop point that leaves an allocation of ``time_limit_s`` no time to run trials: each
    allocation would stop as it starts, run nothing, and requeue itself.

    Raises:
        SpecError: naming ``where`` (``--stop-before``, ``slurm.stop_before``).
    """
    from ..errors import SpecError

    if stop_before >= time_limit_s:
        raise SpecError(where, f"{stop_before:g} s before the end leaves no time to run trials in an allocation "
                               f"of {time_limit_s:g} s; give fewer seconds than the time limit")


def _time(text: str | None) -> float | None:
    """Slurm's local times (``2026-11-24T12:50:56``) -> Unix time; None for 'Unknown' and the like."""
    if not text or not text[:1].isdigit():
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _duration(text: str | None) -> float | None:
    """A time limit as ``scontrol`` shows it -> seconds; None for UNLIMITED, Partition_Limit and the like."""
    if not text or not text[:1].isdigit():
        return None
    try:
        return parse_time_limit(text)
    except ValueError:
        return None


_TIME_LIMIT = re.compile(r"(?:(?P<days>\d+)-(?P<d_hours>\d+)(?::(?P<d_minutes>\d+)(?::(?P<d_seconds>\d+))?)?"
                         r"|(?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+)"
                         r"|(?P<m_minutes>\d+)(?::(?P<m_seconds>\d+))?)")


def parse_time_limit(text: str | None) -> float:
    """Slurm's time-limit forms -> seconds: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
    ``D-HH:MM:SS`` (as ``sbatch --time`` reads them).

    Raises:
        ValueError: any other text.
    """
    found = _TIME_LIMIT.fullmatch((text or "").strip())
    if found is None:
        raise ValueError(f"not a Slurm time limit: {text!r}")
    part = {key: int(value) for key, value in found.groupdict().items() if value is not None}
    if "days" in part:
        return float(part["days"] * 86400 + part["d_hours"] * 3600 + part.get("d_minutes", 0) * 60
                     + part.get("d_seconds", 0))
    if "hours" in part:
        return float(part["hours"] * 3600 + part["minutes"] * 60 + part["seconds"])
    return float(part["m_minutes"] * 60 + part.get("m_seconds", 0))


FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE")
"""Job states after which a job runs no more (unless submitted again)."""


def partition_nodes(partition: str | None) -> tuple[str, int] | None:
    """``(name, nodes)`` of ``partition`` (None: the cluster's default one) as ``sinfo`` lists it;
    None when ``sinfo`` does not answer or does not know the partition (``sbatch`` then says why)."""
    command = ["sinfo", "--noheader", "--Node", "--format=%N|%P"]
    try:
        shown = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:
        return None
    nodes: dict[str, set[str]] = {}
    default = None
    for line in shown.stdout.splitlines():
        node, _, name = line.strip().partition("|")
        if name.endswith("*"):  # sinfo marks the default partition so
            name = default = name[:-1]
        if node and name:
            nodes.setdefault(name, set()).add(node)
    name = partition if partition is not None else default
    return (name, len(nodes[name])) if name in nodes else None


def hostnames(nodelist: str | None) -> list[str]:
    """A Slurm node list (``node[1-3]``, ``SLURM_JOB_NODELIST``) expanded, in Slurm's order, by
    ``scontrol show hostnames``; [] for an empty list or when Slurm does not answer."""
    if not nodelist or nodelist == "(null)":
        return []
    try:
        shown = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                               timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return shown.stdout.split() if shown.returncode == 0 else []


def job_state(job_id: str) -> str | None:
    """The job's state (``RUNNING``, ``PENDING <reason>``, ``COMPLETED``, ...), None if Slurm does not
    answer. One ``scontrol show job`` call (``squeue`` may miss a job while it is being requeued)."""
    try:
        shown = subprocess.run(["scontrol", "show", "job", "--oneliner", str(job_id)], capture_output=True,
                               text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:  # gone from slurmctld's memory: it ended a while ago
        return "COMPLETED" if "Invalid job id" in shown.stderr else None
    fields = parse_show_job(shown.stdout)
    state = fields.get("JobState")
    return f"{state} {fields.get('Reason', '')}".strip() if state == "PENDING" else state


def stale_mpich_segments(job_id: str, shm_dir: str = "/dev/shm", steps: int = 32) -> list[Path]:
    """MPICH's start-up shared memory left on this node by a killed earlier allocation of the job.

    MPICH names it ``mpich_shm_<id>_<node>`` (and ``mpich_vci_...``), ``<id>`` the FNV-1a hash of the
    process manager's job name, which under ``srun`` is ``<job id>.<step id>``: the same in every
    allocation of a requeued job. Ranks killed at an allocation's end leave the segment behind, and
    the next allocation's ranks open it instead of making a new one and wait for ever in ``MPI_Init``.
    Before the job's ranks start, every such segment of its first ``steps`` steps is stale.
    """
    names = {f"{_fnv1a(f'{job_id}.{step}'):x}" for step in range(steps)}
    found = []
    for path in Path(shm_dir).glob("mpich_*_*_*"):
        kind, _, rest = path.name[len("mpich_"):].partition("_")
        if kind in ("shm", "vci") and rest.rpartition("_")[0] in names:
            found.append(path)
    return found


def _fnv1a(text: str) -> int:
    """32-bit FNV-1a (the hash MPICH names its segments with)."""
    value = 2166136261
    for byte in text.encode():
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return value


def _clear_stale_mpich_segments() -> int:
    """``python -m hpctune.slurm.job clear-mpich-shm``: one task a node, before the ranks' step."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        print("hpctune.slurm.job: not in a Slurm job (no SLURM_JOB_ID)", file=sys.stderr)
        return 2
    for path in stale_mpich_segments(job_id):
        path.unlink(missing_ok=True)
        print(f"hpctune: removed {path}, left by a killed earlier allocation", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["clear-mpich-shm"]:
        print("usage: python -m hpctune.slurm.job clear-mpich-shm", file=sys.stderr)
        sys.exit(2)
    sys.exit(_clear_stale_mpich_segments())
