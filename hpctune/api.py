"""``hpctune.run``: validate, pick a backend, coordinate (rank 0) or serve (other ranks)."""
from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import (ExperimentInterrupted, ExperimentRequeued, HpctuneError, SimulationInterrupted,
                     SpecError, StorageFailed, exit_status)
from .controller.spec_changes import check_resumable, grows
from .slurm.allocation import Allocation
from .spec import ExperimentSpec, spec_from_dict
from .trainable import TrainableImportInterrupted

__all__ = ["run", "run_spec", "run_spec_file", "run_submitted", "open_experiment", "check_can_run", "refuse_simulation",
           "ExperimentInterrupted", "ExperimentRequeued"]


def run(trainable: Any, *, space: dict, metric: str, mode: str = "min", num_samples: int = 1,
        scheduler: Any = "fifo", searcher: Any = "random", stop: dict | None = None,
        resources: dict | None = None, max_failures: int = 0, seed: int = 0, storage: str = "runs",
        name: str | None = None, workers: int | None = None, resume: bool = False,
        backend: str = "auto", checkpoint_keep: int = 2, time_budget_s: float | None = None,
        budget: float | None = None, policy: Any = None, tensorboard: bool | str = "auto", verbose: int = 1,
        surrogate: Any = None, coordinator_s_per_message: float = 0.0):
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
        budget: hours of the trials' ranks (of their GPUs, with ``gpus_per_rank``) the experiment may
            spend, in all its allocations: no segment starts or goes on past it (docs/budget.md).
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
            a :class:`hpctune.backends.sim.surrogates.Surrogate`, ``"module:function"`` or a recorded experiment's
            folder (see docs/simulator.md).
        coordinator_s_per_message: for ``backend="sim"``: virtual seconds the coordinator takes per
            message (a result, a segment end, a rank joining), handled one at a time in arrival order
            (default 0: every answer instant; see docs/simulator.md).

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
           "checkpoint_keep": checkpoint_keep, "time_budget_s": time_budget_s, "budget": budget, "policy": policy,
           "tensorboard": tensorboard}
    trainable_object = trainable if callable(trainable) else None
    # workers import the trainable the way this process can: from the same sys.path
    python_path = [os.getcwd()] + [os.path.abspath(p) for p in sys.path if p]
    if callable(surrogate) and not hasattr(surrogate, "step"):
        from .backends.sim.surrogates import FunctionSurrogate

        surrogate = FunctionSurrogate(surrogate, metric)
    return run_spec(lambda: spec_from_dict(raw, check_trainable=backend != "sim"), workers=workers, resume=resume,
                    backend=backend, trainable_object=trainable_object, verbose=verbose, python_path=python_path,
                    surrogate=surrogate, coordinator_s_per_message=coordinator_s_per_message)


def run_spec_file(spec_file: str | os.PathLike, *, name: str | None = None, storage: str | None = None,
                  workers: int | None = None, backend: str = "auto", resume: bool = False,
                  max_requeues: int | None = None, stop_before: float | None = None, surrogate: Any = None,
                  coordinator_s_per_message: float = 0.0, budget: float | None = None):
    """``hpctune run SPEC``: run (or with ``resume``, continue) the experiment a YAML spec file describes;
    ``name``, ``storage`` and ``budget`` override the spec's. The trainable is imported from the working folder
    or the spec's folder. Arguments as for :func:`run_spec`.

    Raises:
        SpecError: bad input, naming it.
    """
    from .spec import load_spec

    spec_path = Path(spec_file)
    simulated = backend == "sim"
    if surrogate is not None and not simulated:
        raise SpecError("--surrogate", "needs --backend sim")
    if coordinator_s_per_message and not simulated:
        raise SpecError("--coordinator-s-per-message", "needs --backend sim")
    overrides = {"name": name, "storage": storage, "budget": budget}
    return run_spec(lambda: load_spec(spec_path, overrides, check_trainable=not simulated),
                    workers=workers, backend=backend, resume=resume,
                    python_path=[str(Path.cwd()), str(spec_path.resolve().parent)],
                    max_requeues=max_requeues, stop_before=stop_before, surrogate=surrogate if simulated else None,
                    coordinator_s_per_message=coordinator_s_per_message)


def run_submitted(spec_file: str, overrides: dict[str, str], max_requeues: int, stop_before: float) -> int:
    """What each rank of a job that ``hpctune submit`` queued calls (:class:`hpctune.slurm.submit.ExperimentJob`):
    ``hpctune run SPEC --resume`` with the spec's ``name``/``storage`` overrides; returns the exit code
    that command would, having printed its line (3: this allocation ended and the job was requeued)."""
    try:
        run_spec_file(spec_file, name=overrides.get("name"), storage=overrides.get("storage"), resume=True,
                      max_requeues=max_requeues, stop_before=stop_before)
    except (HpctuneError, KeyboardInterrupt) as exc:
        code, line = exit_status(exc)
        if line:
            print(line, file=sys.stderr, flush=True)
        return code
    return 0


def run_spec(make_spec, *, workers: int | None = None, resume: bool = False, backend: str = "auto",
             trainable_object: Any = None, verbose: int = 1, python_path: list[str] | None = None,
             must_exist: bool = False, max_requeues: int | None = None, stop_before: float | None = None,
             surrogate: Any = None, coordinator_s_per_message: float = 0.0):
    """Run (or resume) the experiment ``make_spec()`` builds, on the chosen backend.

    ``make_spec`` is called on the coordinator only, so that worker ranks under
    ``mpiexec`` never parse (or complain about) the spec themselves. In a Slurm batch job,
    ``stop_before`` seconds before the allocation ends the running trials checkpoint and pause,
    and the job is requeued if it was requeued fewer than ``max_requeues`` times
    (see :mod:`hpctune.slurm.job`). ``surrogate``, ``coordinator_s_per_message``: the ``sim`` backend's
    (docs/simulator.md).
    """
    from .backends import make_backend

    chosen = make_backend(backend, workers, trainable_object, verbose, surrogate=surrogate,
                          coordinator_s_per_message=coordinator_s_per_message)
    if chosen.is_worker:
        chosen.serve_worker()
        return None
    try:
        allocation = Allocation(max_requeues, stop_before, in_slurm=not chosen.simulated)  # virtual time: no end
    except BaseException:  # a --stop-before that leaves no time: the workers are let go
        chosen.release()
        raise
    return _coordinate(make_spec, chosen, resume, verbose, python_path, must_exist, allocation)


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
            experiment keeps (:mod:`hpctune.controller.spec_changes`), or holds a simulation (which is run
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
    from .reporting.tensorboard import MAX_OPEN

    if not spec.tensorboard_on:
        return 0
    text = os.environ.get("HPCTUNE_TENSORBOARD_WRITERS", str(MAX_OPEN))
    if not text.strip().isdigit() or int(text) < 1:
        raise SpecError("HPCTUNE_TENSORBOARD_WRITERS", f"expected an integer >= 1, got {text!r}")
    return int(text)


@dataclass
class _Opened:
    """An experiment opened on the coordinator, before anything runs."""

    spec: ExperimentSpec
    store: Any                # None: it is finished already, nothing is to be written
    view: Any                 # the stored experiment being resumed (None: a new one)
    created: bool             # its folder did not exist before
    tensorboard_writers: int  # event files TensorBoard's writer keeps open (0: no TensorBoard)


def _coordinate(make_spec, backend, resume: bool, verbose: int, python_path, must_exist: bool,
                allocation: Allocation):
    """Rank 0's run: open the experiment, restore its controller, enter the allocation, serve the
    backend's workers until the experiment ends, and say how it ended (see :func:`run`)."""
    opened = _open(make_spec, backend, resume, must_exist, python_path)
    if opened.store is None:
        return _already_finished(opened.spec, backend, verbose)
    controller, console = _restored_controller(opened, backend, verbose)
    _enter_allocation(allocation, controller, console)
    housekeeping = _housekeeping(opened, console, allocation)
    status = _serve(backend, opened, controller, housekeeping, console)
    return _outcome(opened.store, controller, housekeeping, allocation, status, backend.simulated, verbose)


def _open(make_spec, backend, resume: bool, must_exist: bool, python_path) -> _Opened:
    """Build the spec and open its folder, refusing bad input before anything is written (the
    algorithms' options, the environment's settings); the backend's workers go if either fails."""
    from .controller.core import build_algorithms
    from .reporting.live.console import plain_interval

    try:
        spec = make_spec()
        build_algorithms(spec)
        plain_interval()
        tensorboard_writers = 0 if backend.simulated else _tensorboard_writers(spec)
        created = not spec.experiment_dir.exists()
        store, view = open_experiment(spec, resume, must_exist, python_path, **backend.store_options(spec))
    except BaseException:
        backend.release()
        raise
    return _Opened(spec, store, view, created, tensorboard_writers)


def _already_finished(spec: ExperimentSpec, backend, verbose: int):
    """Nothing to resume: the workers go, nothing is started or written; the experiment's Analysis."""
    from .reporting.analysis import Analysis

    backend.release()
    if verbose:
        print(f"[hpctune {spec.name}] {spec.experiment_dir} is finished; nothing to resume", file=sys.stderr)
    analysis = Analysis(spec.experiment_dir)
    if verbose:
        print(analysis.summary(), flush=True)
    return analysis


def _restored_controller(opened: _Opened, backend, verbose: int):
    """``(controller, console)``: the controller on the backend's clock, restored if it resumes an
    experiment; the console has said what the stored experiment warned of."""
    from .controller.core import Controller
    from .reporting.live.console import Console

    spec, store, view = opened.spec, opened.store, opened.view
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
    return controller, console


def _enter_allocation(allocation: Allocation, controller, console) -> None:
    """In a Slurm job: the allocation recorded and announced, its end the controller's deadline."""
    if allocation.job is not None:
        from .slurm.allocation import record_allocation

        record_allocation(controller.store.folder, allocation.job)
        console.message(allocation.describe())
        console.allocation_end = allocation.job.end_time if allocation.wrap_up_at is not None else None
    if allocation.wrap_up_at is not None and os.environ.get("HPCTUNE_WALLTIME_AWARE", "1") != "0":
        controller.set_deadline(allocation.wrap_up_at, allocation.window)  # no segment that cannot end in time
    allocation.started(controller.store, controller.trials)


def _housekeeping(opened: _Opened, console, allocation: Allocation):
    """Signals, the allocation's end, TensorBoard's writer (the rows restored and all to come, to ``tb/``)."""
    from .controller.housekeeping import Housekeeping

    tensorboard = None
    if opened.tensorboard_writers:
        from .reporting.tensorboard import TensorBoardWriter

        tensorboard = TensorBoardWriter(opened.store, console.message, opened.tensorboard_writers)
    return Housekeeping(opened.store, console, wrap_up_at=allocation.wrap_up_at, tensorboard=tensorboard)


def _serve(backend, opened: _Opened, controller, housekeeping, console) -> str:
    """A first snapshot, then the backend's workers until the experiment ends; returns its status.

    Raises:
        SpecError: bad input found while running (the metric was never reported, say): the store is
            closed, and a new experiment leaves no folder behind.
        StorageFailed: the journal could not be written: what it holds is all there is.
    """
    action = "resuming" if opened.view is not None else "starting"
    housekeeping.snapshot(controller, "running")
    try:
        try:
            return backend.serve(controller, housekeeping, console, action)
        finally:  # every way out (finish and interrupted snapshots close it already): its rows written
            housekeeping.close_tensorboard(controller)
    except SpecError:
        opened.store.close()
        if opened.created and opened.view is None:
            shutil.rmtree(opened.spec.experiment_dir, ignore_errors=True)
        raise
    except StorageFailed:
        opened.store.close()
        raise


def _outcome(store, controller, housekeeping, allocation: Allocation, status: str, simulated: bool, verbose: int):
    """The closing summary; then the Analysis if the experiment finished, else the error that says why
    not (:class:`StorageFailed`, interrupted, or this allocation's end: requeued or why not)."""
    from .reporting.analysis import Analysis
    from .reporting.summary import closing_summary

    if verbose:  # from the trials the coordinator holds: nothing is read back
        print(closing_summary(controller.trials.values(), status, store.result_count, store.spec_json,
                              store.folder, spent_s=controller.spent_s), flush=True)
    analysis = Analysis(store.folder)  # loads when used
    if controller.storage_full is not None:
        raise StorageFailed(store.folder, controller.storage_full)
    if status != "finished":
        at_the_end = housekeeping.time_limit or controller.stopped_for_deadline
        if simulated:
            raise SimulationInterrupted(store.folder)
        if not at_the_end:
            raise ExperimentInterrupted(store.folder)
        idle = allocation.made_no_progress(store, controller.trials, controller.stopped_for_deadline)
        raise allocation.requeue(store.folder, announce=verbose > 0, no_progress=idle)
    return analysis
