"""The ``hpctune`` command: run, resume, submit, replay, status (--watch), analyze, plot, plan.

Exit codes: 0 finished; 2 bad input, with one line ``hpctune: error: <where>: <what>``;
1 the experiment could not finish, or the reader of stdout went away (``| head -1``); 3 the Slurm
allocation ended and the job was requeued (its next allocation continues).
"""
from __future__ import annotations

import argparse
import os
import re
import select
import sys
from pathlib import Path

from .inspect import cmd_analyze, cmd_plot, cmd_status, load_analysis, schedule_of
from ..errors import EXIT_FAILED, EXIT_OK, HpctuneError, SpecError, exit_status

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as for every other bad input
        raise SpecError("command line", message)


def _integer(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def _count(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


def _seconds(text: str, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf") or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"expected seconds {'>' if positive else '>='} 0, got {text!r}")
    return value


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected hours, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected hours > 0, got {text!r}")
    return value


def _worker_counts(text: str) -> list[int]:
    try:
        return [_positive_int(item) for item in text.split(",")]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}") from None


_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)h)?(?:(\d+(?:\.\d*)?)m)?(?:(\d+(?:\.\d*)?)s)?")


def _duration(text: str) -> float:
    """Seconds > 0 from ``3600``, ``3600s``, ``90m``, ``4h`` or ``1h30m``."""
    match = _DURATION.fullmatch(text.strip())
    if match and any(match.groups()):
        value = sum(float(part) * unit for part, unit in zip(match.groups(), (3600, 60, 1)) if part)
    else:
        try:
            value = _seconds(text, positive=True)
        except argparse.ArgumentTypeError:
            value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a duration > 0 such as 4h, 90m, 1h30m, 3600s or 3600, "
                                         f"got {text!r}")
    return value


def _price(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a price > 0, got {text!r}")
    return value


def _parser() -> _Parser:
    from ..backends import BACKEND_NAMES

    parser = _Parser(prog="hpctune", description="Hyperparameter tuning on MPI ranks and Slurm allocations.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="run an experiment from a YAML spec")
    run.add_argument("spec", help="the experiment spec (YAML)")
    run.add_argument("--workers", type=_positive_int, help="worker ranks to start when not under mpiexec/srun "
                                                            "(default: cores, at least 2)")
    run.add_argument("--name", help="experiment name (overrides the spec's)")
    run.add_argument("--storage", help="folder for experiments (overrides the spec's)")
    run.add_argument("--backend", choices=BACKEND_NAMES, default="auto",
                     help="auto (mpi if mpi4py imports, else local), mpi, local, or sim: a simulation on "
                          "--workers virtual workers (docs/simulator.md)")
    run.add_argument("--surrogate", metavar="MODULE:FUNCTION|DIR",
                     help="with --backend sim: a function (config, iteration) -> (metrics, seconds), or an "
                          "experiment folder whose learning curves and iteration times to replay")
    run.add_argument("--coordinator-s-per-message", type=_seconds, default=0.0, metavar="SECONDS",
                     help="with --backend sim: virtual seconds the coordinator takes per message (a result, a "
                          "segment end, a rank joining), one at a time in arrival order (default 0: instant)")
    run.add_argument("--resume", action="store_true", help="continue the experiment if it exists (a batch "
                                                            "script submitted again), else start it")
    resume = sub.add_parser("resume", help="continue a stopped experiment")
    resume.add_argument("dir", help="the experiment folder (runs/<name>)")
    resume.add_argument("--workers", type=_positive_int)
    resume.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    resume.add_argument("--num-samples", type=_positive_int, metavar="N",
                        help="raise the experiment's num_samples to N (grow it: the search goes on)")
    resume.add_argument("--time-budget", type=_seconds, metavar="S",
                        help="set the experiment's time_budget_s to S seconds (counted from its first start)")
    for command in (run, resume):
        command.add_argument("--budget", type=_hours, metavar="H",
                             help="set the experiment's budget to H rank-hours (GPU-hours when its trials use "
                                  "GPUs), counted over all its allocations (docs/budget.md)")
    for command in (run, resume):
        command.add_argument("--max-requeues", type=_count, default=None, metavar="N",
                             help="in a Slurm batch job: requeue it at most N times in all when its allocation "
                                  "ends (default 200)")
        command.add_argument("--stop-before", type=_seconds, default=None, metavar="S",
                             help="in a Slurm job: checkpoint and pause the running trials S seconds before the "
                                  "allocation ends (default 120, or a quarter of a shorter time limit)")
    submit = sub.add_parser("submit", help="queue the experiment as a Slurm batch job (through submitit) that "
                                           "requeues itself at each time limit until it is done")
    submit.add_argument("spec", help="the experiment spec (YAML); its slurm: section holds defaults for these options")
    submit.add_argument("--nodes", metavar="N", help="nodes of each allocation (default 1)")
    submit.add_argument("--tasks-per-node", metavar="T", help="MPI ranks per node; rank 0 coordinates")
    submit.add_argument("--gpus-per-node", metavar="G")
    submit.add_argument("--cpus-per-task", metavar="C", help="cores of each rank")
    submit.add_argument("--time", metavar="HH:MM:SS", help="each allocation's time limit (Slurm's forms)")
    submit.add_argument("--partition", metavar="P")
    submit.add_argument("--account", metavar="A")
    submit.add_argument("--qos", metavar="Q")
    submit.add_argument("--max-requeues", metavar="R", help="allocations after the first (default 200)")
    submit.add_argument("--stop-before", metavar="S", help="seconds before each end at which trials checkpoint "
                                                            "and pause (default 120, or a quarter of a short limit)")
    submit.add_argument("--job-name", metavar="NAME", help="default hpctune-<experiment name>")
    submit.add_argument("--sbatch-arg", dest="sbatch_args", action="append", default=[], metavar="ARG",
                        help="another sbatch option, long form, repeatable: --sbatch-arg=--constraint=a100")
    submit.add_argument("--srun-arg", dest="srun_args", action="append", default=[], metavar="ARG",
                        help="an srun option for the ranks, repeatable (default: the --mpi plugin of this MPI)")
    submit.add_argument("--name", help="experiment name (overrides the spec's)")
    submit.add_argument("--storage", help="folder for experiments (overrides the spec's)")
    submit.add_argument("--dry-run", action="store_true", help="print the batch script; submit nothing")
    replay = sub.add_parser("replay", help="train a trial's model again from scratch, following the schedule of "
                                           "configs its lineage recorded (the best PBT model, reproduced)")
    replay.add_argument("dir", help="the experiment folder (runs/<name>)")
    replay.add_argument("trial", type=_count, help="the trial whose model to train again")
    replay.add_argument("--name", help="the new experiment's name (default <name>-trial<TRIAL>), next to DIR")
    replay.add_argument("--workers", type=_positive_int)
    replay.add_argument("--backend", choices=BACKEND_NAMES, default="auto")
    status = sub.add_parser("status", help="trials by state and the best so far (works while it runs)")
    status.add_argument("dir")
    status.add_argument("--watch", action="store_true",
                        help="the live view until the experiment stops: a table redrawn on a terminal, "
                             "plain lines in a file or pipe")
    status.add_argument("--interval", type=lambda text: _seconds(text, positive=True), metavar="SECONDS",
                        help="between two updates of --watch (default: 2 on a terminal, 30 otherwise)")
    analyze = sub.add_parser("analyze", help="best trials; every result as CSV")
    analyze.add_argument("dir")
    analyze.add_argument("--top", type=_positive_int, default=10)
    analyze.add_argument("--csv", help="write every result row to this CSV file")
    analyze.add_argument("--rungs", action="store_true", help="trials that reached each rung of the scheduler")
    analyze.add_argument("--lineage", type=_count, metavar="TRIAL",
                         help="how TRIAL's model was trained: the trials and configs of each stretch of iterations (PBT)")
    plot = sub.add_parser("plot", help="PNG plots: best so far, learning curves, rank timelines, PBT schedules, "
                                       "configs (needs matplotlib: pip install 'hpctune[plot]')")
    plot.add_argument("dir")
    plot.add_argument("--out", metavar="FOLDER", help="write the PNGs here (default DIR/plots)")
    plan = sub.add_parser("plan", help="predict the wall time, rank- or GPU-hours and cost of the spec on each "
                                       "allocation size from a pilot's measured times; recommend the cheapest "
                                       "that meets a deadline (docs/plan.md)")
    plan.add_argument("spec", help="the experiment spec (YAML)")
    plan.add_argument("--pilot", required=True, metavar="DIR",
                      help="a pilot experiment (runs/PILOT) whose learning curves, iteration times and start-ups "
                           "to replay")
    plan.add_argument("--workers", type=_worker_counts, metavar="W,W,...",
                      help="worker ranks of each allocation (default: the pilot's times 1, 2, 4, 8)")
    plan.add_argument("--deadline", type=_duration, metavar="TIME",
                      help="the most the worst seed may take: 4h, 90m, 1h30m, 3600s or 3600 (seconds)")
    plan.add_argument("--price-per-gpu-hour", dest="price", type=_price, metavar="P",
                      help="cost per GPU-hour (per rank-hour when the spec asks no GPUs)")
    plan.add_argument("--nodes-max", type=_positive_int, metavar="N",
                      help="exclude allocations that need more nodes")
    plan.add_argument("--ranks-per-node", type=_positive_int, metavar="R",
                      help="MPI ranks on one node (default: as many as the pilot had on one host)")
    plan.add_argument("--seeds", type=_positive_int, default=5, metavar="K",
                      help="simulations per allocation, seeds spec.seed .. spec.seed+K-1 (default 5)")
    plan.add_argument("--json", action="store_true", help="the plan as one JSON object")
    return parser


def _cmd_run(args) -> int:
    from ..api import run_spec_file

    run_spec_file(args.spec, name=args.name, storage=args.storage, workers=args.workers, backend=args.backend,
                  resume=args.resume, max_requeues=args.max_requeues, stop_before=args.stop_before,
                  surrogate=args.surrogate, coordinator_s_per_message=args.coordinator_s_per_message,
                  budget=args.budget)
    return EXIT_OK


def _cmd_resume(args) -> int:
    from ..api import refuse_simulation, run_spec
    from ..spec import spec_from_dict
    from ..controller.spec_changes import refuse_growth
    from ..store import is_experiment, load_experiment

    folder = Path(args.dir)

    def make_spec():
        if not is_experiment(folder):
            raise SpecError(str(folder), "is not an hpctune experiment (no experiment.h5)")
        view = load_experiment(folder, history=False)
        refuse_simulation(view.spec, folder)
        stored = dict(view.spec)
        stored.update(name=folder.name, storage=str(folder.parent))
        if args.num_samples is not None:
            if args.num_samples < stored["num_samples"]:
                raise SpecError("--num-samples", f"{args.num_samples} is below the experiment's num_samples "
                                                 f"({stored['num_samples']}): an experiment grows, never shrinks")
            if args.num_samples > stored["num_samples"]:
                refuse_growth(stored["scheduler"], "--num-samples")
            stored["num_samples"] = args.num_samples
        if args.time_budget is not None:
            stored["time_budget_s"] = args.time_budget
        if args.budget is not None:
            stored["budget"] = args.budget
        # the trainable is imported from where `run` found it, whatever the working folder is now
        return spec_from_dict(stored, import_paths=view.python_path)

    run_spec(make_spec, workers=args.workers, backend=args.backend, resume=True, must_exist=True,
             python_path=[str(Path.cwd())], max_requeues=args.max_requeues, stop_before=args.stop_before)
    return EXIT_OK


def _cmd_replay(args) -> int:
    from ..api import run_spec
    from ..spec import spec_from_dict
    from ..store import load_experiment

    folder = Path(args.dir)
    analysis = load_analysis(args.dir)
    if analysis.spec.get("simulation") is not None:
        raise SpecError(args.dir, "is a simulation (hpctune run --backend sim): its trials trained no model, so there "
                                  "is none to train again")
    schedule = schedule_of(analysis, args.trial, args.dir, "trial")
    raw = replay_spec(analysis.spec, schedule, name=args.name or f"{folder.name}-trial{args.trial}",
                      storage=str(folder.parent))
    import_paths = load_experiment(folder, history=False).python_path
    run_spec(lambda: spec_from_dict(raw, import_paths=import_paths), workers=args.workers, backend=args.backend,
             python_path=[str(Path.cwd())])
    return EXIT_OK


def replay_spec(stored: dict, schedule, name: str, storage: str) -> dict:
    """The spec of one trial that trains with ``schedule``'s configs (:meth:`hpctune.Analysis.schedule`):
    the first config as constants, the rest through the ``schedule`` policy, in ``storage/name``."""
    import math

    from ..space import flatten, unflatten

    def plain(value):
        value = value.item() if hasattr(value, "item") else value
        return None if isinstance(value, float) and math.isnan(value) else value

    stretches = []
    for row in schedule.to_dict("records"):
        leaves = {key[len("config/"):]: plain(value) for key, value in row.items() if key.startswith("config/")}
        stretches.append([int(row["from_iteration"]),
                          unflatten({key: value for key, value in leaves.items() if value is not None})])
    space = unflatten({key: {"constant": value} for key, value in flatten(stretches[0][1]).items()})
    return {**stored, "name": name, "storage": storage, "space": space, "num_samples": 1, "scheduler": "fifo",
            "searcher": "random", "time_budget_s": None, "policy": {"type": "schedule", "stretches": stretches}}


_SUBMIT_OPTIONS = ("nodes", "tasks_per_node", "gpus_per_node", "cpus_per_task", "time", "partition", "account",
                   "qos", "max_requeues", "stop_before", "job_name", "sbatch_args", "srun_args")


def _cmd_submit(args) -> int:
    from ..api import check_can_run, run_submitted
    from ..controller.core import build_algorithms
    from ..spec import load_spec
    from ..spec_file import read_spec_file
    from ..slurm.submit import batch_script, prepare, slurm_options, submit

    spec_path = Path(args.spec)
    overrides = {key: value for key, value in (("name", args.name), ("storage", args.storage)) if value}
    spec = load_spec(spec_path, overrides)  # the whole spec is checked before anything is queued
    build_algorithms(spec)
    options = slurm_options(read_spec_file(spec_path).get("slurm"),
                            {key: getattr(args, key) for key in _SUBMIT_OPTIONS}, str(spec_path))
    check_can_run(spec)
    submission = prepare(str(spec_path), options, overrides, spec, run_submitted)
    if args.dry_run:
        print(batch_script(submission), end="")
        return EXIT_OK
    job_id = submit(submission)
    print(f"submitted job {job_id}: {spec.experiment_dir}")
    return EXIT_OK


def _cmd_plan(args) -> int:
    import json

    from ..backends.sim.plan import plan_allocations, plan_to_json, render_plan
    from ..spec import load_spec

    spec = load_spec(Path(args.spec), check_trainable=False)
    try:
        plan = plan_allocations(spec, args.pilot, args.workers, seeds=args.seeds, deadline_s=args.deadline,
                                price=args.price, nodes_max=args.nodes_max, ranks_per_node=args.ranks_per_node,
                                progress=lambda line: print(f"[hpctune plan] {line}", file=sys.stderr, flush=True))
    except SpecError as exc:
        if exc.where == "pilot":
            raise SpecError("--pilot", exc.what) from None
        raise
    print(json.dumps(plan_to_json(plan), indent=2) if args.json else render_plan(plan))
    return EXIT_OK


_COMMANDS = {"run": _cmd_run, "resume": _cmd_resume, "submit": _cmd_submit, "replay": _cmd_replay,
             "status": cmd_status, "analyze": cmd_analyze, "plot": cmd_plot, "plan": _cmd_plan}


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reading end is closed."""
    if not hasattr(select, "poll"):
        return True  # no way to tell: take it for the pipe, as Python's docs on SIGPIPE do
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # stdout replaced or closed
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hpctune`` console script; returns the exit code."""
    try:
        code = _run_command(argv)
        sys.stdout.flush()  # inside the try: a reader gone is seen here, not as a traceback at exit
        return code
    except BrokenPipeError:
        # only a closed stdout is quiet: a broken pipe to a trial process is a bug to show
        if not _stdout_reader_gone():
            raise
        # Python's docs on SIGPIPE: point stdout at devnull so the flush at exit cannot fail again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def _run_command(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
        return _COMMANDS[args.command](args)
    except (HpctuneError, KeyboardInterrupt) as exc:
        code, line = exit_status(exc)
        if line:
            print(line, file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
