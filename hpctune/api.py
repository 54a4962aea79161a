"""``hpctune.run``: validate, pick a backend, coordinate (rank 0) or serve (other ranks)."""
from __future__ import annotations

import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

from .errors import ExperimentError, HpctuneError, SpecError, StorageFailed
from .spec import ExperimentSpec, spec_from_dict
from .trainable import TrainableImportInterrupted

__all__ = ["run", "run_spec", "open_experiment"]


def run(trainable: Any, *, space: dict, metric: str, mode: str = "min", num_samples: int = 1,
        scheduler: Any = "fifo", searcher: Any = "random", stop: dict | None = None,
        resources: dict | None = None, max_failures: int = 0, seed: int = 0, storage: str = "runs",
        name: str | None = None, workers: int | None = None, resume: bool = False,
        backend: str = "auto", checkpoint_keep: int = 2, time_budget_s: float | None = None,
        verbose: int = 1):
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
        workers: worker ranks to start when not under an MPI launcher
            (default: number of cores, at least 2).
        resume: continue the experiment in ``storage/name`` if there is one.
        backend: ``"auto"`` (MPI if available), ``"mpi"`` or ``"local"`` (in-process).

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
           "checkpoint_keep": checkpoint_keep, "time_budget_s": time_budget_s}
    trainable_object = trainable if callable(trainable) else None
    # workers import the trainable the way this process can: from the same sys.path
    python_path = [os.getcwd()] + [os.path.abspath(p) for p in sys.path if p]
    return run_spec(lambda: spec_from_dict(raw), workers=workers, resume=resume, backend=backend,
                    trainable_object=trainable_object, verbose=verbose, python_path=python_path)


def _default_workers() -> int:
    return max(2, os.cpu_count() or 1)


def run_spec(make_spec, *, workers: int | None = None, resume: bool = False, backend: str = "auto",
             trainable_object: Any = None, verbose: int = 1, python_path: list[str] | None = None,
             must_exist: bool = False):
    """Run (or resume) the experiment ``make_spec()`` builds, on the chosen backend.

    ``make_spec`` is called on the coordinator only, so that worker ranks under
    ``mpiexec`` never parse (or complain about) the spec themselves.
    """
    from .backends.launch import import_mpi

    if backend not in ("auto", "mpi", "local"):
        raise SpecError("backend", f"must be 'auto', 'mpi' or 'local', got {backend!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise SpecError("workers", f"must be a positive integer, got {workers!r}")
    MPI = None if backend == "local" else import_mpi()
    if MPI is None and backend == "mpi":
        raise SpecError("backend", "mpi4py is not installed (pip install 'hpctune[mpich]')")
    world = MPI.COMM_WORLD if MPI is not None else None
    if world is not None and world.Get_size() > 1:
        if world.Get_rank() != 0:
            from .backends.mpi import serve_worker

            serve_worker(world, worker_id=world.Get_rank())
            return None
        return _coordinate(make_spec, "world", world, resume, trainable_object, verbose, python_path, must_exist)
    mode = "spawn" if MPI is not None else "local"
    if MPI is None and backend == "auto" and verbose:
        print("[hpctune] mpi4py is not available: running trials in this process, one at a time", file=sys.stderr)
    return _coordinate(make_spec, mode, workers or _default_workers(), resume, trainable_object, verbose,
                       python_path, must_exist)


def open_experiment(spec: ExperimentSpec, resume: bool, must_exist: bool = False,
                    python_path: list[str] | None = None):
    """``(store, view)`` for ``spec``'s folder: a new experiment, or the stored one to resume
    (``store`` is None if that one is finished: nothing is to be written).

    Raises:
        SpecError: the folder holds an experiment and ``resume`` is false, holds
            something else, or holds an experiment with another space or metric.
    """
    from .store import ExperimentStore, is_experiment, load_experiment

    folder = spec.experiment_dir
    spec_json = spec.to_json()
    if is_experiment(folder):
        if not resume:
            raise SpecError("name", f"{folder} already holds an experiment; continue it with "
                                    f"'hpctune resume {folder}' or choose another name")
        view = load_experiment(folder, history=False)
        for key in ("space", "metric", "mode", "trainable"):
            if view.spec.get(key) != spec_json[key]:
                raise SpecError(key, f"differs from the experiment in {folder}; "
                                     "a resumed experiment must keep its space, metric, mode and trainable")
        if view.status == "finished":
            return None, view
        merged_path = list(dict.fromkeys([*view.python_path, *(python_path or [])]))  # recorded first
        return ExperimentStore(folder, spec_json, view, python_path=merged_path, **_store_settings()), view
    if must_exist:
        raise SpecError(str(folder), "is not an hpctune experiment (no experiment.h5)")
    if folder.exists() and any(folder.iterdir()):
        raise SpecError("storage", f"{folder} exists and is not an hpctune experiment")
    return ExperimentStore(folder, spec_json, python_path=python_path, **_store_settings()), None


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


def _coordinate(make_spec, mode: str, workers, resume: bool, trainable_object, verbose: int,
                python_path, must_exist: bool):
    from .backends.housekeeping import Housekeeping
    from .console import Console
    from .controller import Controller, build_algorithms

    world = workers if mode == "world" else None
    try:
        spec = make_spec()
        build_algorithms(spec)  # an unknown scheduler or searcher option is refused before anything is written
        created = not spec.experiment_dir.exists()
        store, view = open_experiment(spec, resume, must_exist, python_path)
    except BaseException:
        _release_world(world)
        raise
    if store is None:  # finished already: nothing is started, nothing written
        _release_world(world)
        if verbose:
            print(f"[hpctune {spec.name}] {spec.experiment_dir} is finished; nothing to resume", file=sys.stderr)
        return _finished_analysis(spec.experiment_dir, verbose)
    controller = Controller(spec, store, python_path=store.python_path)
    console = Console(spec.name, spec.metric, spec.mode, controller.searcher.total_trials(), verbose)
    for note in view.notes if view is not None else ():
        console.message(f"warning: {note}")
    try:
        if view is not None:
            controller.restore(view.controller_state, view.restored_trials(), view.records_after_snapshot)
    except BaseException:
        store.close()
        _release_world(world)
        raise
    housekeeping = Housekeeping(store, console)
    housekeeping.snapshot(controller, "running")
    action = "resuming" if view is not None else "starting"
    try:
        if mode == "local":
            from .backends.local import serve_local

            console.message(f"{action} {store.folder}: trials in this process")
            status = serve_local(controller, housekeeping, trainable_object)
        else:
            status = _serve_mpi(controller, housekeeping, console, mode, workers, action)
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
        raise ExperimentInterrupted(store.folder)
    return analysis


def _release_world(world) -> None:
    """Let the worker ranks of an ``mpiexec`` world go (they wait for work)."""
    if world is not None:
        from .backends.mpi import MPIWorkers

        pool = MPIWorkers(world, spawned=False)
        pool.shutdown()
        pool.release()


def _finished_analysis(folder: Path, verbose: int):
    from .analysis import Analysis

    analysis = Analysis(folder)
    if verbose:
        print(analysis.summary(), flush=True)
    return analysis


class ExperimentInterrupted(ExperimentError):
    """The experiment stopped before its end (signal, time limit); ``hpctune resume`` continues it."""

    def __init__(self, folder: Path):
        self.folder = folder
        super().__init__(f"experiment interrupted; continue it with 'hpctune resume {folder}'")


def _serve_mpi(controller, housekeeping, console, mode: str, workers, action: str) -> str:
    from .backends.launch import spawn_workers
    from .backends.mpi import MPIWorkers, serve_coordinator

    housekeeping.defer_second_signal = True  # a second Ctrl-C while spawning is acted on by the loop
    if mode == "world":
        pool = MPIWorkers(workers, spawned=False)
    else:
        pool = MPIWorkers(spawn_workers(workers), spawned=True)
    how = "spawned" if mode == "spawn" else "mpiexec"
    console.message(f"{action} {controller.store.folder}: {len(pool.ids)} worker ranks ({how})")
    try:
        status = serve_coordinator(controller, pool, housekeeping, **_watchdog_settings())
    except (SpecError, StorageFailed):  # a clean stop: every worker got SHUTDOWN
        pool.release()
        raise
    except BaseException as exc:
        # never leave an allocation hanging: the journal holds every accepted event, so end every rank now
        if isinstance(exc, HpctuneError):
            print(f"hpctune: error: {exc}; continue it with 'hpctune resume {controller.store.folder}'",
                  file=sys.stderr, flush=True)
        elif not isinstance(exc, KeyboardInterrupt):
            traceback.print_exc()
        pool.end_now()  # exit code 1 under mpiexec and with spawned workers alike
    pool.release()
    return status


def _watchdog_settings() -> dict:
    text = os.environ.get("HPCTUNE_WORKER_TIMEOUT")
    if text is None:
        return {}
    try:
        return {"worker_timeout": float(text)}
    except ValueError:
        raise SpecError("HPCTUNE_WORKER_TIMEOUT", f"expected seconds, got {text!r}") from None
