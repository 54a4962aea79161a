"""``hpctune.run``: validate, pick a backend, coordinate (rank 0) or serve (other ranks)."""
from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ExperimentError, SpecError, StorageFailed
from .spec_changes import check_resumable, grows
from .spec import ExperimentSpec, spec_from_dict
from .trainable import TrainableImportInterrupted

__all__ = ["run", "run_spec", "open_experiment", "check_can_run", "refuse_simulation"]


def run(trainable: Any, *, space: dict, metric: str, mode: str = "min", num_samples: int = 1,
        scheduler: Any = "fifo", searcher: Any = "random", stop: dict | None = None,
        resources: dict | None = None, max_failures: int = 0, seed: int = 0, storage: str = "runs",
        name: str | None = None, workers: int | None = None, resume: bool = False,
        backend: str = "auto", checkpoint_keep: int = 2, time_budget_s: float | None = None,
        policy: Any = None, tensorboard: bool | str = "auto", verbose: int = 1, surrogate: Any = None):
    """Tune ``trainable`` over ``space``; the same script runs alone or under ``mpiexec``.

    Args:
        trainable: a function ``train(config)`` that calls :func:`hpctune.report`, a
            :class:`hpctune.Trainable` subclass, or a ``"module:function"`` string.
        space: hyperparameter name -> constant or domain (``hpctune.loguniform(...)``).
        metric, mode: what to optimise (``"min"`` or ``"max"``).
        num_samples: repetitions of the search (of the whole grid, if there is one).
        scheduler, searcher: names (``"asha"``), ``{"type": ..., **options}`` or instances.
        stop: end a trial when a reported value reaches a threshold.
        time_budget_s: start no trial after this many seconds; running ones end at their next result.
        policy: a live hyperparameter policy (``"plateau_lr"``, ``{"type": ..., **options}`` or an
            instance, see :mod:`hpctune.policies`): it changes running trials' configs from their results.
        tensorboard: ``"auto"`` (event files in ``storage/name/tb/`` when tensorboardX is installed),
            True (needs tensorboardX) or False; see docs/tensorboard.md.
        workers: worker ranks to start when not under an MPI launcher
            (default: number of cores, at least 2).
        resume: continue the experiment in ``storage/name`` if there is one.
        backend: ``"auto"`` (MPI if available), ``"mpi"``, ``"local"`` (in-process) or ``"sim"``
            (a simulation on ``workers`` virtual workers: ``surrogate`` stands in for the trainable).
        surrogate: for ``backend="sim"``: a function ``(config, iteration) -> (metrics, seconds)``,
            a :class:`hpctune.surrogates.Surrogate`, ``"module:function"`` or a recorded experiment's
            folder (see docs/simulator.md).

    Returns:
        An :class:`hpctune.Analysis` on the coordinator; None on worker ranks.

    Raises:
        SpecError: bad input (the message names the field).
        ExperimentError: the experiment could not finish. (On MPI ranks, a stop the coordinator
            decides at once, a hung worker or a second Ctrl-C, saves the state and then ends
            every rank, this process included, with exit code 1.)
    """
    if os.environ.get("HPCTUNE_TRIAL_PROCESS"):
        raise TrainableImportInterrupted()
    name = name or getattr(trainable, "__name__", None) or "experiment"
    raw = {"name": name, "trainable": trainable, "metric": metric, "mode": mode, "num_samples": num_samples,
           "space": space, "stop": stop, "scheduler": scheduler, "searcher": searcher,
           "resources": resources, "max_failures": max_failures, "seed": seed, "storage": storage,
           "checkpoint_keep": checkpoint_keep, "time_budget_s": time_budget_s, "policy": policy,
           "tensorboard": tensorboard}
    trainable_object = trainable if callable(trainable) else None
    # workers import the trainable the way this process can: from the same sys.path
    python_path = [os.getcwd()] + [os.path.abspath(p) for p in sys.path if p]
    if callable(surrogate) and not hasattr(surrogate, "step"):
        from .surrogates import FunctionSurrogate

        surrogate = FunctionSurrogate(surrogate, metric)
    return run_spec(lambda: spec_from_dict(raw, check_trainable=backend != "sim"), workers=workers, resume=resume,
                    backend=backend, trainable_object=trainable_object, verbose=verbose, python_path=python_path,
                    surrogate=surrogate)


def run_spec(make_spec, *, workers: int | None = None, resume: bool = False, backend: str = "auto",
             trainable_object: Any = None, verbose: int = 1, python_path: list[str] | None = None,
             must_exist: bool = False, max_requeues: int | None = None, stop_before: float | None = None,
             surrogate: Any = None):
    """Run (or resume) the experiment ``make_spec()`` builds, on the chosen backend.

    ``make_spec`` is called on the coordinator only, so that worker ranks under
    ``mpiexec`` never parse (or complain about) the spec themselves. In a Slurm batch job,
    ``stop_before`` seconds before the allocation ends the running trials checkpoint and pause,
    and the job is requeued if it was requeued fewer than ``max_requeues`` times
    (see :mod:`hpctune.slurm`). ``surrogate``: the ``sim`` backend's (:mod:`hpctune.surrogates`).
    """
    from .backends import make_backend

    chosen = make_backend(backend, workers, trainable_object, verbose, surrogate=surrogate)
    if chosen.is_worker:
        chosen.serve_worker()
        return None
    try:
        allocation = _Allocation(max_requeues, stop_before, in_slurm=not chosen.simulated)  # virtual time: no end
    except BaseException:  # a --stop-before that leaves no time: the workers are let go
        chosen.release()
        raise
    return _coordinate(make_spec, chosen, resume, verbose, python_path, must_exist, allocation)


class _Allocation:
    """The Slurm job the coordinator runs in (if any; never with ``in_slurm`` false: a simulation),
    its end, and whether it may requeue itself.

    Raises:
        SpecError: ``stop_before`` leaves the job's allocations no time (its time limit known).
    """

    def __init__(self, max_requeues: int | None, stop_before: float | None, in_slurm: bool = True):
        from .slurm import DEFAULT_MAX_REQUEUES, SlurmJob, check_stop_before, stop_margin

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
        from .slurm import SIGNAL_EARLY_S

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


def open_experiment(spec: ExperimentSpec, resume: bool, must_exist: bool = False,
                    python_path: list[str] | None = None, store_class: type | None = None,
                    clock: Any = None, simulation: dict | None = None):
    """``(store, view)`` for ``spec``'s folder: a new experiment, or the stored one to resume
    (``store`` is None if that one is finished: nothing is to be written).

    Args:
        store_class, clock: the store to open (default :class:`~hpctune.store.ExperimentStore`) and
            its clock for snapshot timing (default ``time.monotonic``).
        simulation: a simulated experiment's surrogate and workers, kept in its spec (``simulation``).

    Raises:
        SpecError: the folder holds an experiment and ``resume`` is false, holds
            something else, holds an experiment whose spec differs in a field that a resumed
            experiment keeps (:mod:`hpctune.spec_changes`), or holds a simulation (which is run
            again, not resumed).
    """
    from .store import LAUNCHER_FILES, ExperimentStore, is_experiment, load_experiment

    folder = spec.experiment_dir
    spec_json = spec.to_json()
    if simulation is not None:
        spec_json["simulation"] = simulation
    options = {"clock": clock} if clock is not None else {}
    store_class = store_class or ExperimentStore
    if is_experiment(folder):
        if not resume:
            raise SpecError("name", f"{folder} already holds an experiment; continue it with "
                                    f"'hpctune resume {folder}' or choose another name")
        view = load_experiment(folder, history=False)
        refuse_simulation(view.spec, folder)
        if simulation is not None:
            raise SpecError("backend", f"sim: {folder} holds a real experiment; a simulation starts a new one")
        check_resumable(view.spec, spec_json, folder)
        if view.status == "finished" and not grows(view.spec, spec_json):
            return None, view
        merged_path = list(dict.fromkeys([*view.python_path, *(python_path or [])]))  # recorded first
        return store_class(folder, spec_json, view, python_path=merged_path, **_store_settings(), **options), view
    if must_exist:
        raise SpecError(str(folder), "is not an hpctune experiment (no experiment.h5)")
    if folder.exists() and any(entry.name not in LAUNCHER_FILES for entry in folder.iterdir()):
        raise SpecError("storage", f"{folder} exists and is not an hpctune experiment")
    return store_class(folder, spec_json, python_path=python_path, **_store_settings(), **options), None


def refuse_simulation(stored_spec: dict, folder: Path) -> None:
    """A simulated experiment is run again, never resumed or grown.

    Raises:
        SpecError: ``stored_spec`` (the folder's) is a simulation's.
    """
    if stored_spec.get("simulation") is not None:
        raise SpecError(str(folder), "is a simulation (hpctune run --backend sim): run it again under "
                                     "another name instead of resuming it")


def check_can_run(spec: ExperimentSpec) -> None:
    """Refuse now what ``hpctune run --resume`` would refuse when the experiment starts (``hpctune
    submit``, before the job waits in the queue): another experiment in the folder, something else
    there, or a finished experiment that the spec does not grow.

    Raises:
        SpecError: naming the field or the folder.
    """
    from .store import LAUNCHER_FILES, is_experiment, load_experiment

    folder = spec.experiment_dir
    if is_experiment(folder):
        view = load_experiment(folder, history=False)
        spec_json = spec.to_json()
        check_resumable(view.spec, spec_json, folder)
        if view.status == "finished" and not grows(view.spec, spec_json):
            raise SpecError(str(folder), "is finished: nothing to run (raise num_samples or time_budget_s to grow it)")
    elif folder.exists() and any(entry.name not in LAUNCHER_FILES for entry in folder.iterdir()):
        raise SpecError("storage", f"{folder} exists and is not an hpctune experiment")


def _store_settings() -> dict:
    """Durability settings from HPCTUNE_FSYNC_INTERVAL / HPCTUNE_SNAPSHOT_INTERVAL (seconds)."""
    settings = {}
    for variable, key in (("HPCTUNE_FSYNC_INTERVAL", "fsync_interval"),
                          ("HPCTUNE_SNAPSHOT_INTERVAL", "snapshot_interval")):
        text = os.environ.get(variable)
        if text is not None:
            try:
                settings[key] = float(text)
            except ValueError:
                raise SpecError(variable, f"expected seconds, got {text!r}") from None
            if settings[key] < 0:
                raise SpecError(variable, f"must be >= 0, got {text!r}")
    return settings


def _tensorboard_writers(spec: ExperimentSpec) -> int:
    """Event files TensorBoard's writer process keeps open (``HPCTUNE_TENSORBOARD_WRITERS``, default 64),
    0 if the spec's ``tensorboard`` is off (``auto``: on when tensorboardX is installed).

    Raises:
        SpecError: a bad ``HPCTUNE_TENSORBOARD_WRITERS``.
    """
    from .tensorboard import MAX_OPEN, tensorboardx_installed

    if not (spec.tensorboard is True or (spec.tensorboard == "auto" and tensorboardx_installed())):
        return 0
    text = os.environ.get("HPCTUNE_TENSORBOARD_WRITERS", str(MAX_OPEN))
    if not text.strip().isdigit() or int(text) < 1:
        raise SpecError("HPCTUNE_TENSORBOARD_WRITERS", f"expected an integer >= 1, got {text!r}")
    return int(text)


def _coordinate(make_spec, backend, resume: bool, verbose: int, python_path, must_exist: bool,
                allocation: _Allocation):
    from .backends.housekeeping import Housekeeping
    from .console import Console, plain_interval
    from .controller import Controller, build_algorithms

    try:
        spec = make_spec()
        build_algorithms(spec)  # an unknown scheduler or searcher option is refused before anything is written
        plain_interval()  # and a bad HPCTUNE_PROGRESS_INTERVAL
        tensorboard_writers = 0 if backend.simulated else _tensorboard_writers(spec)  # a bad HPCTUNE_TENSORBOARD_WRITERS
        created = not spec.experiment_dir.exists()
        store, view = open_experiment(spec, resume, must_exist, python_path, **backend.store_options(spec))
    except BaseException:
        backend.release()
        raise
    if store is None:  # finished already: nothing is started, nothing written
        backend.release()
        if verbose:
            print(f"[hpctune {spec.name}] {spec.experiment_dir} is finished; nothing to resume", file=sys.stderr)
        return _finished_analysis(spec.experiment_dir, verbose)
    controller = Controller(spec, store, python_path=store.python_path, clock=backend.clock or time.time)
    console = Console(spec.name, spec.metric, spec.mode, controller.searcher.total_trials(), verbose)
    console.virtual = backend.simulated
    for note in view.notes if view is not None else ():
        console.message(f"warning: {note}")
    try:
        if view is not None:
            controller.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
            controller.check_checkpoints()  # a trial's newest checkpoint may be missing or damaged
    except BaseException:
        store.close()
        backend.release()
        raise
    if allocation.job is not None:
        from .slurm import record_allocation

        record_allocation(store.folder, allocation.job)
        console.message(allocation.describe())
        console.allocation_end = allocation.job.end_time if allocation.wrap_up_at is not None else None
    if allocation.wrap_up_at is not None and os.environ.get("HPCTUNE_WALLTIME_AWARE", "1") != "0":
        controller.set_deadline(allocation.wrap_up_at, allocation.window)  # no segment that cannot end in time
    allocation.started(store, controller.trials)
    tensorboard = None
    if tensorboard_writers:  # rows from here on (and those the journal restored) go to tb/, on the coordinator only
        from .tensorboard import TensorBoardWriter

        tensorboard = TensorBoardWriter(store, console.message, tensorboard_writers)
    housekeeping = Housekeeping(store, console, wrap_up_at=allocation.wrap_up_at, tensorboard=tensorboard)
    housekeeping.snapshot(controller, "running")
    action = "resuming" if view is not None else "starting"
    try:
        try:
            status = backend.serve(controller, housekeeping, console, action)
        finally:  # every way out (finish and interrupted snapshots close it already): its rows written
            housekeeping.close_tensorboard(controller)
    except SpecError:
        # e.g. the metric was never reported: bad input, and a new experiment leaves nothing behind
        store.close()
        if created and view is None:
            shutil.rmtree(spec.experiment_dir, ignore_errors=True)
        raise
    except StorageFailed:  # the journal could not be written: what it holds is all there is
        store.close()
        raise
    from .analysis import Analysis, closing_summary

    if verbose:  # from the trials the coordinator holds: nothing is read back
        print(closing_summary(controller.trials.values(), status, store.result_count, store.spec_json,
                              store.folder), flush=True)
    analysis = Analysis(store.folder)  # loads when used
    if controller.storage_full is not None:
        raise StorageFailed(store.folder, controller.storage_full)
    if status != "finished":
        at_the_end = housekeeping.time_limit or controller.stopped_for_deadline
        if backend.simulated:
            raise SimulationInterrupted(store.folder)
        if not at_the_end:
            raise ExperimentInterrupted(store.folder)
        idle = allocation.made_no_progress(store, controller.trials, controller.stopped_for_deadline)
        raise allocation.requeue(store.folder, announce=verbose > 0, no_progress=idle)
    return analysis


def _done(store, trials) -> tuple[int, int]:
    """Results accepted and trials ended so far: an allocation that changes neither made no progress."""
    return store.result_count, sum(trial.state.is_finished for trial in trials.values())


def _finished_analysis(folder: Path, verbose: int):
    from .analysis import Analysis

    analysis = Analysis(folder)
    if verbose:
        print(analysis.summary(), flush=True)
    return analysis


class ExperimentInterrupted(ExperimentError):
    """The experiment stopped before its end (signal, time limit); ``hpctune resume`` continues it."""

    def __init__(self, folder: Path, why: str | None = None):
        self.folder = folder
        because = f" ({why})" if why else ""
        super().__init__(f"experiment interrupted{because}; continue it with 'hpctune resume {folder}'")


class SimulationInterrupted(ExperimentInterrupted):
    """A simulation stopped before its end (a signal): its folder keeps what was simulated, and is never resumed."""

    def __init__(self, folder: Path):
        self.folder = folder
        ExperimentError.__init__(self, f"simulation interrupted; {folder} keeps what was simulated until then "
                                       "(a simulation is never resumed: run it again under another name)")


class ExperimentRequeued(ExperimentInterrupted):
    """The allocation ended: the running trials paused at a checkpoint, and the Slurm job was
    requeued; its next allocation continues the experiment."""

    announced = False
    """True once the message went to stderr (before ``scontrol requeue``): the CLI does not repeat it."""

    def __init__(self, folder: Path, job_id: str, allocation: int):
        self.folder = folder
        ExperimentError.__init__(self, f"this allocation ends: Slurm job {job_id} requeued (restart {allocation}); "
                                       f"its next allocation continues {folder}")
