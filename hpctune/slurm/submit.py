"""``hpctune submit``: one Slurm batch job, submitted through submitit, that runs an experiment to its end.

The job's ranks are Slurm tasks started by ``srun`` (submitit's way): each runs submitit's
``_submit`` module, which calls :class:`ExperimentJob`, which is ``hpctune run SPEC --resume`` on
that rank; rank 0 coordinates and the others serve, as under ``mpiexec``. The time limit, two ways:

- the coordinator asks Slurm once when the allocation ends (:mod:`hpctune.slurm.job`) and wraps up
  ``stop_before`` seconds before it: running trials checkpoint and pause, and it requeues the job;
- Slurm also sends SIGUSR2 to every rank ``stop_before`` seconds before the end (``--signal``,
  submitit's mechanism) and on preemption; the coordinator wraps up on it, workers and trials
  ignore it. Before hpctune's handler is installed, submitit's own requeues the job
  (:class:`ExperimentJob` is checkpointable: the next allocation runs the same call).

Each allocation starts the same call again, which resumes the experiment, until it is finished or
was requeued ``max_requeues`` times. The job asks ``--no-kill``: a node lost mid-allocation ends
the ranks' step, which the batch script starts again on the nodes left (or, if the batch
script's own node went, a guard on another node requeues the job: :mod:`hpctune.slurm.node_loss`).
The lines hpctune adds to submitit's batch script are :mod:`hpctune.slurm.batch_lines`.
Submitit's files (the batch script, the pickled call, one log per rank) live in
``<experiment>/slurm/``; the jobs and allocations in ``<experiment>/slurm.json``.
"""
from __future__ import annotations

import io
import math
import os
import re
import shlex
import shutil
import sys
from contextlib import redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import submitit

from ..errors import SpecError
from .allocation import record_submission, submitted_jobs
from .batch_lines import (CLEAR_STALE_SEGMENTS, KILL_ON_BAD_EXIT, RANKS_OF_THIS_ALLOCATION, guard_nodes, mpi_plugin,
                          ranks_step_start, relaunch_on_node_loss)
from .job import (DEFAULT_MAX_REQUEUES, FINAL_STATES, MAX_SIGNAL_DELAY_S, check_stop_before, job_state,
                  parse_time_limit, partition_nodes, stop_margin)

__all__ = ["SlurmOptions", "ExperimentJob", "slurm_options", "batch_script", "submit", "LOGS_FOLDER"]

LOGS_FOLDER = "slurm"
"""Submitit's folder inside the experiment folder: the batch script, the pickled call, a log per rank."""


@dataclass
class SlurmOptions:
    """What ``hpctune submit`` asks Slurm for (the command line's options, or the spec's ``slurm:``).

    Attributes:
        nodes, tasks_per_node: the allocation's ranks (nodes x tasks_per_node; rank 0 coordinates).
        time: the time limit in one of Slurm's forms (``HH:MM:SS``, ``MM``, ``D-HH:MM``, ...).
        gpus_per_node, cpus_per_task, partition, account, qos: passed to ``sbatch`` as given.
        max_requeues: allocations after the first the job may requeue itself into.
        stop_before: seconds before the end at which trials checkpoint and pause (and Slurm signals).
        job_name: the Slurm job's name (default ``hpctune-<experiment name>``).
        sbatch_args: more ``sbatch`` options, each in its long form (``--constraint=a100``).
        srun_args: more ``srun`` options for the ranks (default: the PMI this MPI speaks).
        setup: shell lines run before the ranks start (``module load cuda``).
        sources: where each option given was read (``--nodes``, ``slurm.nodes``), for messages.
    """

    nodes: int = 1
    tasks_per_node: int | None = None
    time: str | None = None
    gpus_per_node: int | None = None
    cpus_per_task: int | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    max_requeues: int = DEFAULT_MAX_REQUEUES
    stop_before: float | None = None
    job_name: str | None = None
    sbatch_args: list[str] = field(default_factory=list)
    srun_args: list[str] | None = None
    setup: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def where(self, key: str) -> str:
        """The option or spec key ``key`` was given as (the command line's option if it was not given)."""
        return self.sources.get(key, cli_flag(key))

    @property
    def time_limit_s(self) -> float:
        return parse_time_limit(self.time)

    @property
    def ranks(self) -> int:
        return self.nodes * self.tasks_per_node


def _positive(value: Any, where: str) -> int:
    return _integer(value, where, 1, "a positive integer")


def _count(value: Any, where: str) -> int:
    return _integer(value, where, 0, "an integer >= 0")


def _integer(value: Any, where: str, low: int, what: str) -> int:
    number = int(value) if isinstance(value, str) and re.fullmatch(r"\d+", value.strip()) else value
    if isinstance(number, bool) or not isinstance(number, int) or number < low:
        raise SpecError(where, f"expected {what}, got {value!r}")
    return number


def _seconds(value: Any, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not 0 <= seconds < math.inf:
        raise SpecError(where, f"expected seconds >= 0, got {value!r}")
    return seconds


def _time(value: Any, where: str) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    try:
        seconds = parse_time_limit(text)
    except ValueError:
        seconds = None
    if not seconds:
        raise SpecError(where, f"expected a time limit such as 04:00:00, 90 (minutes) or 1-12:00:00, got {value!r}")
    return text


def _word(value: Any, where: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_.,:+-]+", value):
        raise SpecError(where, f"expected a Slurm name (letters, digits, '_', '-', '.'), got {value!r}")
    return value


def _strings(value: Any, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) and item for item in value):
        raise SpecError(where, f"expected a list of strings, got {value!r}")
    return list(value)


_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "nodes": _positive, "tasks_per_node": _positive, "time": _time, "gpus_per_node": _count,
    "cpus_per_task": _positive, "partition": _word, "account": _word, "qos": _word, "max_requeues": _count,
    "stop_before": _seconds, "job_name": _word, "sbatch_args": _strings, "srun_args": _strings,
    "setup": _strings,
}

_MANAGED = {"time", "nodes", "ntasks", "ntasks-per-node", "cpus-per-task", "gpus-per-node", "partition",
            "account", "qos", "job-name", "signal", "requeue", "no-requeue", "output", "error", "open-mode",
            "array", "wrap"}
"""``sbatch`` options that ``--sbatch-arg`` may not give: hpctune sets them (from its own options)."""


def cli_flag(name: str) -> str:
    """The command line's option for a :class:`SlurmOptions` field: ``--tasks-per-node``, ``--sbatch-arg``."""
    return "--" + (name[:-1] if name.endswith("_args") else name).replace("_", "-")


def slurm_options(spec_section: Any, command_line: dict[str, Any], spec_file: str) -> SlurmOptions:
    """Merge the spec's ``slurm:`` section and the command line's options (the command line wins).

    Raises:
        SpecError: an unknown or malformed option (naming ``slurm.<key>`` or ``--<option>``), a missing
            ``time`` or ``tasks_per_node``, fewer than two ranks, or an ``sbatch`` option hpctune sets.
    """
    section = {} if spec_section is None else spec_section
    if not isinstance(section, dict):
        raise SpecError(f"{spec_file}: slurm", f"expected a mapping of submit options, got {section!r}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in section.items():
        if key not in _CHECKS:
            raise SpecError(f"slurm.{key}", f"unknown option (known: {', '.join(sorted(_CHECKS))})")
        if value is not None:
            values[key], sources[key] = _CHECKS[key](value, f"slurm.{key}"), f"slurm.{key}"
    for key, value in command_line.items():
        if value is not None and value != []:
            values[key], sources[key] = _CHECKS[key](value, cli_flag(key)), cli_flag(key)
    for required in ("tasks_per_node", "time"):
        if required not in values:
            raise SpecError(cli_flag(required), f"missing: give {cli_flag(required)} or slurm.{required} in {spec_file}")
    options = SlurmOptions(**values, sources=sources)
    if options.ranks < 2:
        raise SpecError("--tasks-per-node", f"{options.nodes} node(s) x {options.tasks_per_node} task(s) is one "
                                            "rank; hpctune needs two or more (rank 0 coordinates, the others run trials)")
    if options.stop_before is not None:
        _check_stop_before(options)
    for key in ("sbatch_args", "srun_args"):
        for argument in getattr(options, key) or ():
            if any(ord(character) < 32 or ord(character) == 127 for character in argument):
                # each option is one line, or part of one, of the batch script: a line break would add a line
                raise SpecError(options.where(key), f"expected one {key[:-5]} option on one line, got {argument!r}")
    for argument in options.sbatch_args:
        key = _sbatch_key(argument)
        if key in _MANAGED:
            raise SpecError("--sbatch-arg", f"{argument!r}: hpctune sets --{key} itself"
                            + (f" (use {cli_flag(key)})" if key.replace("-", "_") in _CHECKS else ""))
    return options


def _check_stop_before(options: SlurmOptions) -> None:
    """A stop point inside the time limit, and one Slurm's warning signal can be asked for."""
    where = options.where("stop_before")
    check_stop_before(options.stop_before, options.time_limit_s, where)
    if round(options.stop_before) > MAX_SIGNAL_DELAY_S:
        raise SpecError(where, f"{options.stop_before:g} s: Slurm's warning signal (sbatch --signal) comes at most "
                               f"{MAX_SIGNAL_DELAY_S} s before the end")


def _sbatch_key(argument: str) -> str:
    if not re.fullmatch(r"--[A-Za-z][A-Za-z0-9-]*(=.*)?", argument, flags=re.S):
        raise SpecError("--sbatch-arg", f"expected an sbatch option in its long form (--constraint=a100), got {argument!r}")
    return argument[2:].partition("=")[0]


def check_fits(options: SlurmOptions, spec) -> None:
    """Refuse, before anything is queued, an allocation the spec's trials cannot run in.

    Raises:
        SpecError: a trial spans more ranks than there are workers, or the spec's GPUs per rank do not fit
            the nodes' GPUs (rank 0, the coordinator, binds none).
    """
    workers = options.ranks - 1
    k = spec.resources.ranks_per_trial
    if k > workers:
        raise SpecError("resources.ranks_per_trial", f"{k} ranks per trial, but {options.nodes} node(s) x "
                                                     f"{options.tasks_per_node} task(s) give {workers} worker rank(s)")
    per_rank = spec.resources.gpus_per_rank
    if per_rank:
        if not options.gpus_per_node:
            raise SpecError("--gpus-per-node", f"missing: resources.gpus_per_rank asks for {per_rank} GPU(s) a rank")
        busiest = options.tasks_per_node if options.nodes > 1 else options.tasks_per_node - 1
        if busiest * per_rank > options.gpus_per_node:
            raise SpecError("--gpus-per-node", f"{options.gpus_per_node} GPU(s) a node, but {busiest} worker rank(s) "
                                               f"on a node x resources.gpus_per_rank {per_rank} need "
                                               f"{busiest * per_rank}")


class ExperimentJob(submitit.helpers.Checkpointable):
    """What each rank of the job runs: the API's ``run`` (what ``hpctune run SPEC --resume`` does) from the
    folder it was submitted from, handed in as a function so that this module never imports the API.

    Checkpointable: if Slurm's warning signal reaches submitit's handler (before hpctune's is set),
    submitit requeues the job with this same call, and the next allocation resumes the experiment.
    """

    def __init__(self, run: Callable[[str, dict, int, float], int], spec_file: str, workdir: str,
                 overrides: dict[str, str], max_requeues: int, stop_before: float):
        self.run = run  # hpctune.api.run_submitted, handed in by hpctune submit (pickled by its name)
        self.spec_file, self.workdir, self.overrides = spec_file, workdir, overrides
        self.max_requeues, self.stop_before = max_requeues, stop_before

    def arguments(self) -> list[str]:
        """The ``hpctune`` command line this rank runs."""
        arguments = ["run", self.spec_file, "--resume", "--max-requeues", str(self.max_requeues),
                     "--stop-before", f"{self.stop_before:g}"]
        for key, value in sorted(self.overrides.items()):
            arguments += [f"--{key}", value]
        return arguments

    def __call__(self) -> int:
        os.chdir(self.workdir)
        code = self.run(self.spec_file, self.overrides, self.max_requeues, self.stop_before)
        if code:
            sys.stdout.flush()
            sys.exit(code)  # the task's exit code: 3 requeued, 1 failed, 2 bad input (submitit writes no result)
        return code


def _parameters(options: SlurmOptions, name: str, srun_args: list[str], margin: float,
                call: ExperimentJob, logs: Path) -> dict[str, Any]:
    """submitit's ``update_parameters`` for these options (``call``: what each rank runs, said in a comment;
    ``logs``: submitit's folder)."""
    extra: dict[str, Any] = {"time": options.time, "requeue": True, "no-kill": True}
    srun_args = [KILL_ON_BAD_EXIT, *srun_args]
    for argument in options.sbatch_args:
        key, sep, value = argument[2:].partition("=")
        extra[key] = value if sep else True
    parameters: dict[str, Any] = dict(
        job_name=options.job_name or f"hpctune-{name}", nodes=options.nodes,
        ntasks_per_node=options.tasks_per_node, time=max(1, math.ceil(options.time_limit_s / 60)),
        signal_delay_s=max(1, round(margin)), stderr_to_stdout=True, srun_args=srun_args, wckey=None,
        additional_parameters=extra,
        setup=[f"# each rank runs (submitit calls it): {shlex.join(['hpctune', *call.arguments()])}",
               *options.setup, RANKS_OF_THIS_ALLOCATION, CLEAR_STALE_SEGMENTS, guard_nodes(logs),
               ranks_step_start(logs.parent)],
        teardown=[relaunch_on_node_loss(logs, srun_args)])
    for key in ("cpus_per_task", "gpus_per_node", "partition", "account", "qos"):
        if getattr(options, key) is not None:
            parameters[key] = getattr(options, key)
    return parameters


@dataclass
class Submission:
    """One experiment ready to be queued: its folder, the call each rank makes, what submitit is given."""

    folder: Path
    call: ExperimentJob
    parameters: dict[str, Any]
    options: SlurmOptions

    @property
    def logs(self) -> Path:
        return self.folder / LOGS_FOLDER


def prepare(spec_file: str, options: SlurmOptions, overrides: dict[str, str], spec,
            run: Callable[[str, dict, int, float], int]) -> Submission:
    """The submission of ``spec`` (validated) with ``options``; each rank calls ``run(spec_file, overrides,
    max_requeues, stop_before)`` and exits with the code it returns (:func:`hpctune.api.run_submitted`)."""
    check_fits(options, spec)
    margin = stop_margin(options.time_limit_s, options.stop_before)
    srun_args = options.srun_args
    if srun_args is None:
        plugin = mpi_plugin()
        srun_args = [f"--mpi={plugin}"] if plugin else []
    folder = spec.experiment_dir.absolute()
    call = ExperimentJob(run, str(Path(spec_file).absolute()), os.getcwd(), overrides, options.max_requeues, margin)
    return Submission(folder, call, _parameters(options, spec.name, srun_args, margin, call, folder / LOGS_FOLDER),
                      options)


def batch_script(submission: Submission) -> str:
    """The batch script submitit writes for ``submission`` (what ``--dry-run`` prints)."""
    from submitit.slurm.slurm import _make_sbatch_string

    command = " ".join([shlex.quote(sys.executable), "-u -m submitit.core._submit",
                        shlex.quote(str(submission.logs))])
    return _make_sbatch_string(command=command, folder=submission.logs, **submission.parameters)


def submit(submission: Submission) -> str:
    """Queue ``submission``; its Slurm job id. Nothing is left behind if ``sbatch`` refuses it.

    Raises:
        SpecError: ``sbatch`` refused the job (its reason in one line), or a job of this experiment is
            still queued or running.
    """
    if shutil.which("sbatch") is None or shutil.which("srun") is None:
        raise SpecError("hpctune submit", "Slurm's sbatch and srun are not on PATH here: submit from a login "
                                          "node of the cluster (--dry-run prints the script anywhere)")
    for job_id in submitted_jobs(submission.folder)[-1:]:
        state = job_state(job_id)
        if state is not None and state not in FINAL_STATES:
            raise SpecError(str(submission.folder), f"Slurm job {job_id} runs this experiment already ({state}); "
                                                    f"wait for it, or 'scancel {job_id}' first")
    _check_folder_free(submission.folder)
    _check_partition_nodes(submission.options)
    created = None if submission.logs.exists() else submission.logs  # the outermost folder submitting makes
    while created is not None and not created.parent.exists():
        created = created.parent
    executor = submitit.SlurmExecutor(folder=submission.logs, max_num_timeout=submission.options.max_requeues)
    executor.update_parameters(**submission.parameters)
    chatter = io.StringIO()
    try:
        with redirect_stderr(chatter):  # submitit prints sbatch's stderr: one line of ours says it instead
            job = executor.submit(submission.call)
    except Exception as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        raise SpecError("sbatch", _sbatch_reason(str(exc) or chatter.getvalue())) from None
    record_submission(submission.folder, job.job_id)
    return job.job_id


def _check_folder_free(folder: Path) -> None:
    """Refuse to queue an experiment a coordinator runs now (``hpctune run`` on this machine, say): the
    job would wait in the queue, then find the folder in use."""
    from ..store.lock import coordinator_running

    if coordinator_running(folder):
        raise SpecError(str(folder), "is in use by a running hpctune coordinator (an hpctune run of it); let it end, "
                                     "or stop it, before submitting")


def _check_partition_nodes(options: SlurmOptions) -> None:
    """Refuse more nodes than the partition has (such a job would pend for ever), when ``sinfo`` answers."""
    known = partition_nodes(options.partition)
    if known is not None and options.nodes > known[1]:
        name, count = known
        raise SpecError(options.where("nodes"), f"{options.nodes} nodes, but partition {name} has {count} "
                                                f"(sinfo); the job would wait in the queue for ever")


def _sbatch_reason(text: str) -> str:
    """Why sbatch refused: its first specific ``sbatch: error:`` line (``invalid partition specified:
    gpu``), else its generic one (``Batch job submission failed: ...``), else its last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line.partition("sbatch: error: ")[2] for line in lines if "sbatch: error: " in line]
    specific = [error for error in errors if not error.startswith("Batch job submission failed")]
    return (specific[:1] or errors[-1:] or lines[-1:] or ["sbatch failed without saying why"])[0]

