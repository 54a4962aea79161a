"""The Slurm job a coordinator runs in: when its allocation ends, and putting it back in the queue.

Asked once, at start-up (one ``scontrol show job``), never polled: the end of an allocation
only moves if an administrator changes the time limit, and a loop of ``squeue`` calls from
every running experiment is what cluster administrators complain about. No Slurm (no
``SLURM_JOB_ID``): :meth:`SlurmJob.from_environment` returns None and nothing here runs.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SlurmJob", "parse_show_job", "DEFAULT_MAX_REQUEUES", "stop_margin", "record_allocation",
           "describe_allocations", "job_state", "FINAL_STATES"]

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


def _time(text: str | None) -> float | None:
    """Slurm's local times (``2026-11-24T12:50:56``) -> Unix time; None for 'Unknown' and the like."""
    if not text or not text[:1].isdigit():
        return None
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


def _duration(text: str | None) -> float | None:
    """Slurm's time limits (``1-02:03:04``, ``02:03:04``, ``03:04``, ``5``) -> seconds; None for UNLIMITED."""
    if not text or not text[:1].isdigit():
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(part) for part in clock.split(":")]
    if len(parts) == 1:       # minutes
        seconds = parts[0] * 60
    elif len(parts) == 2:     # minutes:seconds
        seconds = parts[0] * 60 + parts[1]
    else:                     # hours:minutes:seconds
        seconds = parts[0] * 3600 + parts[1] * 60 + parts[2]
    return float(seconds + (int(days) * 86400 if days else 0))


JOBS_FILE = "slurm.json"
"""In the experiment folder: the Slurm jobs and allocations that ran it (``hpctune status`` shows them)."""


def record_allocation(folder: Path, job: SlurmJob) -> None:
    """Add this allocation to the experiment's ``slurm.json`` (replaced whole, atomically)."""
    path = Path(folder) / JOBS_FILE
    try:
        allocations = json.loads(path.read_text())["allocations"]
    except (OSError, ValueError, KeyError, TypeError):
        allocations = []
    allocations.append({"job_id": job.job_id, "restart": job.restarts, "start": job.start_time or time.time(),
                        "end": job.end_time if job.time_limit_s is not None else None})
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps({"allocations": allocations}, indent=1))
    os.replace(temporary, path)


def describe_allocations(folder: Path, now: float | None = None) -> str | None:
    """``Slurm job 1234: RUNNING, 3 allocation(s) so far, 41 min left in this one`` for ``hpctune
    status``, or None if no Slurm job ran the experiment. The job's state takes one ``scontrol`` call."""
    try:
        allocations = json.loads((Path(folder) / JOBS_FILE).read_text())["allocations"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not allocations:
        return None
    last = allocations[-1]
    state = job_state(last["job_id"])
    state = "not in the queue" if state is None or state in FINAL_STATES else state
    text = f"Slurm job {last['job_id']}: {state}, {len(allocations)} allocation(s) so far"
    if state == "RUNNING" and last.get("end"):
        left = last["end"] - (time.time() if now is None else now)
        text += f", {max(left, 0) / 60:.0f} min left in this one"
    return text


FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE")
"""Job states after which a job runs no more (unless submitted again)."""


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
