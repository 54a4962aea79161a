"""The commands that read an experiment and write nothing into it: ``hpctune status`` (``--watch``),
``analyze`` and ``plot`` (their own outputs, ``--csv`` and ``--out``, checked before anything is printed)."""
from __future__ import annotations

import sys
from contextlib import nullcontext
from pathlib import Path

from ..errors import EXIT_OK, SpecError, describe_os_error

__all__ = ["cmd_status", "cmd_analyze", "cmd_plot", "load_analysis", "schedule_of"]


def schedule_of(analysis, trial_id: int, folder: str, where: str):
    """``analysis.schedule(trial_id)``, or a one-line error naming ``where`` (no such trial, no lineage)."""
    if analysis.trials.empty:
        raise SpecError(where, f"no trial {trial_id} in {folder} (it has no trials yet)")
    if trial_id not in set(analysis.trials.trial_id):
        raise SpecError(where, f"no trial {trial_id} in {folder}")
    try:
        return analysis.schedule(trial_id)
    except KeyError:
        raise SpecError(where, f"trial {trial_id} of {folder} has no lineage recorded (it ran before hpctune "
                               "recorded one)") from None


def load_analysis(folder: str):
    """The :class:`hpctune.Analysis` of ``folder``; its reader's notes (a damaged snapshot) on stderr.

    Raises:
        SpecError: ``folder`` holds no experiment.
    """
    from ..store import is_experiment

    if not is_experiment(folder):
        raise SpecError(folder, "is not an hpctune experiment (no experiment.h5)")
    from ..reporting.analysis import Analysis

    analysis = Analysis(folder)
    for note in analysis.notes:
        print(f"hpctune: warning: {note}", file=sys.stderr)
    return analysis


def cmd_status(args) -> int:
    """``hpctune status DIR [--watch]``: trials by state, the best so far, the Slurm job; a folder that
    ``hpctune submit`` queued and no allocation has started yet shows the job's state."""
    from ..store import is_experiment

    if args.interval is not None and not args.watch:
        raise SpecError("--interval", "goes with --watch")
    if not is_experiment(args.dir):
        _say_queued(args.dir, just_check=args.watch)
        if not args.watch:
            return EXIT_OK
    else:
        analysis = load_analysis(args.dir)  # reads the snapshot and the journal: as fast at 10 M results as at 10
    if args.watch:  # a queued experiment is waited for
        from ..reporting.live.watch import watch

        return watch(args.dir, args.interval)
    counts = analysis.trials.state.value_counts().to_dict() if not analysis.trials.empty else {}
    print(f"{analysis.spec['name']}: {analysis.status}, {len(analysis.trials)} trials, "
          f"{analysis.num_results} results")
    for state in ("RUNNING", "PENDING", "PAUSED", "TERMINATED", "ERROR"):
        print(f"  {state:<10} {counts.get(state, 0)}")
    from ..reporting.summary import budget_line
    from ..slurm.allocation import describe_allocations

    budget = budget_line(analysis.spec, analysis.spent_s)  # as of the last snapshot
    if budget is not None:
        print(budget)

    slurm = describe_allocations(args.dir)
    if slurm is not None:
        print(slurm)
    if analysis.best_trial_id is not None:
        print(f"best {analysis.metric}: {analysis.best_value:.6g} (trial {analysis.best_trial_id}, "
              f"iteration {analysis.best_iteration})")
        from ..space import flatten

        config = " ".join(f"{name}={value}" for name, value in flatten(analysis.best_config).items())
        print(f"best config: {config}")
    return EXIT_OK


def _say_queued(folder: str, just_check: bool) -> None:
    """A folder that holds no experiment yet: if ``hpctune submit`` queued it and its Slurm job is still
    queued (or starting it), say so (unless ``just_check``); else the usual error.

    Raises:
        SpecError: not an experiment, and no job of it in the queue.
    """
    from ..slurm.allocation import describe_allocations, queued_job

    if queued_job(folder) is None:
        raise SpecError(folder, "is not an hpctune experiment (no experiment.h5)")
    if not just_check:
        print(f"{folder}: not started yet (queued by hpctune submit)")
        print(describe_allocations(folder))


def cmd_analyze(args) -> int:
    """``hpctune analyze DIR``: the summary, utilisation, GPUs, rungs, a lineage; every result to ``--csv``."""
    from .output_paths import OutputFile

    analysis = load_analysis(args.dir)
    # checked before anything is printed
    schedule = None if args.lineage is None else schedule_of(analysis, args.lineage, args.dir, "--lineage")
    csv = None if args.csv is None else OutputFile(args.csv, "--csv")
    with csv or nullcontext():  # its temporary file goes, whatever ends the command
        _print_analysis(analysis, args, schedule)
        if csv is not None:
            csv.write(lambda file: analysis.results.to_csv(file, index=False))
            print(f"wrote {len(analysis.results)} result rows to {args.csv}")
    return EXIT_OK


def _print_analysis(analysis, args, schedule) -> None:
    print(analysis.summary(top=args.top))
    utilization = analysis.utilization()
    if utilization is not None:
        ranks = len(analysis.ranks_used())
        print(f"Worker utilisation: {100 * utilization:.1f}% ({ranks} ranks, busy rank-seconds / rank-seconds "
              "from the first start to the last end)")
    gpus = analysis.gpus_by_rank()
    if gpus:
        print("GPUs by rank: " + ", ".join(f"{rank}: {' / '.join(devices)}" for rank, devices in gpus.items()))
    if args.rungs:
        counts = analysis.rung_counts()
        if counts is None:
            print(f"Rungs: scheduler {analysis.spec['scheduler']['type']!r} has no rungs")
        else:
            print("Rungs (milestone: trials that reached it): "
                  + ", ".join(f"{level:g}: {count}" for level, count in counts))
    if schedule is not None:
        print(f"Lineage of trial {args.lineage} (iterations from..to, the trial that trained them, its config):")
        print(schedule.to_string(index=False))


def cmd_plot(args) -> int:
    """``hpctune plot DIR [--out FOLDER]``: the PNGs (:func:`hpctune.reporting.plots.write_plots`)."""
    import importlib

    analysis = load_analysis(args.dir)
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        raise SpecError("", "hpctune plot needs matplotlib, an optional extra: pip install 'hpctune[plot]'") from None
    from .output_paths import check_output_folder
    from ..reporting.plots import write_plots

    out = Path(args.out) if args.out is not None else Path(args.dir) / "plots"
    where = "--out" if args.out is not None else str(out)
    check_output_folder(out, where)
    skipped: list[str] = []
    try:
        written = write_plots(analysis, out, skipped=skipped)
    except OSError as exc:  # the folder went away, or the disk filled, part-way: each PNG is whole or absent
        raise SpecError(where, f"cannot write in {out}: {describe_os_error(exc)}") from None
    for path in written:
        print(f"wrote {path}")
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    return EXIT_OK
