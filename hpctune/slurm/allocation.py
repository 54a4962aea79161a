"""The Slurm allocation an experiment runs in: its end, the stop point before it, whether the job
requeues itself at the end (and the rule for an allocation that made no progress), and the record of
the experiment's jobs and allocations in its folder (``slurm.json``, which ``hpctune status`` shows)."""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from ..errors import ExperimentError, ExperimentInterrupted, ExperimentRequeued
from .job import (DEFAULT_MAX_REQUEUES, FINAL_STATES, SIGNAL_EARLY_S, SlurmJob, check_stop_before, job_state,
                  stop_margin)

__all__ = ["Allocation", "JOBS_FILE", "record_allocation", "record_submission", "submitted_jobs",
           "allocation_time_left", "queued_job", "describe_allocations"]


class Allocation:
    """The Slurm job the coordinator runs in (if any; never with ``in_slurm`` false: a simulation),
    its end, and whether it may requeue itself.

    Raises:
        SpecError: ``stop_before`` leaves the job's allocations no time (its time limit known).
    """

    def __init__(self, max_requeues: int | None, stop_before: float | None, in_slurm: bool = True):
        self.max_requeues = DEFAULT_MAX_REQUEUES if max_requeues is None else max_requeues
        self.job = SlurmJob.from_environment() if in_slurm else None
        if stop_before is not None and self.job is not None and self.job.time_limit_s is not None:
            check_stop_before(stop_before, self.job.time_limit_s, "--stop-before")
        left = self.job.seconds_left() if self.job is not None else None
        margin = stop_margin(self.job.time_limit_s if self.job else None, stop_before)
        self.wrap_up_at = None if left is None else time.time() + left - margin
        self.window = None if left is None else self.job.time_limit_s - margin  # what any allocation can use
        self._done_at_start: tuple[int, int] | None = None

    def started(self, store, trials) -> None:
        """Note what the experiment has done when this allocation starts running trials."""
        self._done_at_start = _done(store, trials)

    def made_no_progress(self, store, trials, stopped_for_deadline: bool) -> bool:
        """Whether this allocation ran to its stop point without accepting a result or ending a trial.

        Such an allocation is not requeued: the next, as long, would do the same (an iteration or a
        start-up longer than the time left). One cut short (preempted: Slurm's signal long before the
        stop point) is requeued as before."""
        if self._done_at_start is None or _done(store, trials) != self._done_at_start:
            return False
        return stopped_for_deadline or (self.wrap_up_at is not None and time.time() >= self.wrap_up_at - SIGNAL_EARLY_S)

    def describe(self) -> str:
        """``Slurm job 1234, allocation 3: ends at 16:20:00; trials checkpoint and pause from 16:18:00``."""
        job = self.job
        text = f"Slurm job {job.job_id}, allocation {job.restarts + 1}"
        if self.wrap_up_at is None:
            return f"{text}: no time limit"
        return (f"{text}: ends at {time.strftime('%H:%M:%S', time.localtime(job.end_time))}; trials checkpoint "
                f"and pause from {time.strftime('%H:%M:%S', time.localtime(self.wrap_up_at))}")

    def requeue(self, folder: Path, announce: bool, no_progress: bool = False) -> ExperimentError:
        """The error to end with after this allocation stopped for its end: requeued, or why not.

        ``announce``: say it on stderr *before* ``scontrol requeue``, which has Slurm end this
        process at once (a line printed after it can be lost with the process). ``no_progress``:
        this allocation did nothing (:meth:`made_no_progress`): not requeued.
        """
        job = self.job
        if job is None or not job.batch:
            return ExperimentInterrupted(folder)
        if job.restarts >= self.max_requeues:
            return ExperimentInterrupted(folder, f"Slurm job {job.job_id} was requeued {job.restarts} times "
                                                 f"already (--max-requeues {self.max_requeues})")
        if no_progress:
            return ExperimentInterrupted(folder, f"Slurm job {job.job_id} not requeued: this allocation reached its "
                                                 "stop point without accepting a result or ending a trial, and the "
                                                 "next would do the same; give each allocation more time (--time) "
                                                 "or stop closer to its end (--stop-before)")
        requeued = ExperimentRequeued(folder, job.job_id, job.restarts + 1)
        if announce:
            print(f"hpctune: {requeued}", file=sys.stderr, flush=True)
            requeued.announced = True
        failed = job.requeue()
        if failed is not None:
            return ExperimentInterrupted(folder, f"Slurm job {job.job_id} could not be requeued: {failed}")
        return requeued


def _done(store, trials) -> tuple[int, int]:
    """Results accepted and trials ended so far: an allocation that changes neither made no progress."""
    return store.result_count, sum(trial.state.is_finished for trial in trials.values())


JOBS_FILE = "slurm.json"
"""In the experiment folder: the Slurm jobs and allocations that ran it (``hpctune status`` shows them)."""


def _read_jobs(folder: Path) -> dict:
    try:
        record = json.loads((Path(folder) / JOBS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_jobs(folder: Path, record: dict) -> None:
    path = Path(folder) / JOBS_FILE
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(record, indent=1))
    os.replace(temporary, path)


def record_allocation(folder: Path, job: SlurmJob) -> None:
    """Add this allocation to the experiment's ``slurm.json`` (replaced whole, atomically)."""
    record = _read_jobs(folder)
    record.setdefault("allocations", []).append(
        {"job_id": job.job_id, "restart": job.restarts, "start": job.start_time or time.time(),
         "end": job.end_time if job.time_limit_s is not None else None})
    _write_jobs(folder, record)


def record_submission(folder: Path, job_id: str) -> None:
    """Add a job ``hpctune submit`` queued for the experiment to its ``slurm.json``."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    record = _read_jobs(folder)
    record.setdefault("submitted", []).append({"job_id": str(job_id), "at": time.time()})
    _write_jobs(folder, record)


def submitted_jobs(folder: Path) -> list[str]:
    """The ids of the jobs ``hpctune submit`` queued for the experiment, oldest first."""
    return [str(entry["job_id"]) for entry in _read_jobs(folder).get("submitted", [])]


def allocation_time_left(folder: Path, now: float | None = None) -> float | None:
    """Seconds left in the Slurm allocation the experiment's newest run started in (None: it ran
    outside Slurm or with no time limit, or the job was queued again since). Reads ``slurm.json``
    only: no Slurm command (the live view asks every few seconds)."""
    record = _read_jobs(folder)
    allocations, submitted = record.get("allocations", []), record.get("submitted", [])
    if not allocations or allocations[-1].get("end") is None:
        return None
    if submitted and submitted[-1]["at"] > allocations[-1]["start"]:
        return None
    return max(allocations[-1]["end"] - (time.time() if now is None else now), 0.0)


def _newest_job(record: dict) -> tuple[str, dict | None] | None:
    """The id of the newest job that ran or was queued for the experiment, with its newest allocation
    (None: queued again since that allocation started); None if no Slurm job ran it."""
    allocations, submitted = record.get("allocations", []), record.get("submitted", [])
    if not allocations and not submitted:
        return None
    last = allocations[-1] if allocations else None
    if submitted and (last is None or submitted[-1]["at"] > last["start"]):
        return str(submitted[-1]["job_id"]), None  # queued again since the last allocation started
    return str(last["job_id"]), last


def queued_job(folder: Path) -> tuple[str, str] | None:
    """``(job id, state)`` of the experiment's newest Slurm job if it is still queued or running
    (``PENDING Priority``, ``RUNNING``, ...); None otherwise. One ``scontrol`` call."""
    newest = _newest_job(_read_jobs(folder))
    if newest is None:
        return None
    state = job_state(newest[0])
    return None if state is None or state in FINAL_STATES else (newest[0], state)


def describe_allocations(folder: Path, now: float | None = None) -> str | None:
    """``Slurm job 1234: RUNNING, 3 allocation(s) so far, 41 min left in this one`` for ``hpctune
    status``, or None if no Slurm job ran the experiment. The job's state takes one ``scontrol`` call."""
    record = _read_jobs(folder)
    newest = _newest_job(record)
    if newest is None:
        return None
    job_id, last = newest
    allocations = record.get("allocations", [])
    state = job_state(job_id)
    state = "not in the queue" if state is None or state in FINAL_STATES else state
    text = f"Slurm job {job_id}: {state}, {len(allocations)} allocation(s) so far"
    if last is not None and state == "RUNNING" and last.get("end"):
        left = last["end"] - (time.time() if now is None else now)
        text += f", {max(left, 0) / 60:.0f} min left in this one"
    return text
