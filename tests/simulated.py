"""The tests' experiments on the real simulator (:mod:`hpctune.backends.sim`), and the spec they share.

:func:`simulated` runs a spec of the tests' usual form on virtual workers, in memory, through
:func:`hpctune.backends.sim.simulation.simulate`: the code ``hpctune run --backend sim`` and
``hpctune plan`` run, with the unchanged controller, scheduler and searcher, events ordered by
(virtual time, sequence number). The metric and the iteration times are plain functions made
into a :class:`~hpctune.backends.sim.surrogates.FunctionSurrogate`; a trial completes at the
space's constant ``epochs``. :func:`iterations_of` and :func:`launches_of` read a simulation's log and
records. What the simulator does not model (a failure injected at one trial's iteration, a
resume mid-run, a check after every event, checkpoint files and a journal on disk) is
``sim_driver.py``'s.
"""
from __future__ import annotations

from pathlib import Path

from hpctune.backends.sim.simulation import Simulation, simulate
from hpctune.backends.sim.surrogates import FunctionSurrogate
from hpctune.spec import ExperimentSpec, spec_from_dict

__all__ = ["DEFAULT_SPACE", "default_metric", "default_duration", "make_spec", "simulated", "iterations_of", "launches_of"]

DEFAULT_SPACE = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": 9}


def default_metric(config: dict, iteration: int) -> float:
    """A loss whose curves cross: a config-dependent floor plus a decaying, config-dependent term."""
    return abs(config["x"] - 0.3) + (0.2 + config["y"]) / iteration


def default_duration(config: dict) -> float:
    """Virtual seconds of each iteration of ``config``."""
    return 1.0 + round(config.get("x", 0.5), 3)


def make_spec(folder: Path, scheduler, searcher="random", space: dict | None = None, num_samples: int = 12,
              metric: str = "loss", mode: str = "min", max_failures: int = 0, seed: int = 0,
              **fields) -> ExperimentSpec:
    """The spec of an experiment ``sim`` in ``folder`` (its trainable never imported); ``fields``: more
    spec fields (``budget``)."""
    raw = {"name": "sim", "trainable": "tests.dummy:train", "metric": metric, "mode": mode,
           "num_samples": num_samples, "space": space or DEFAULT_SPACE, "scheduler": scheduler,
           "searcher": searcher, "max_failures": max_failures, "seed": seed, "storage": str(folder), **fields}
    return spec_from_dict(raw, check_trainable=False)


def simulated(folder: Path, scheduler, searcher="random", *, workers: int, metric=default_metric,
              duration=default_duration, **spec) -> Simulation:
    """:func:`make_spec`'s experiment (``spec``: its other arguments) simulated on ``workers`` virtual
    workers, every record and the log kept; each iteration reports ``metric(config, iteration)`` and
    takes ``duration(config)`` virtual seconds, and a trial completes at the space's ``epochs``."""
    spec = make_spec(folder, scheduler, searcher, **spec)
    epochs = spec.space.get("epochs")
    assert isinstance(epochs, int), "simulated() needs a constant epochs in the space"

    def step(config: dict, iteration: int) -> tuple[float, float]:
        return metric(config, iteration), duration(config)

    surrogate = FunctionSurrogate(step, spec.metric, name=getattr(metric, "__name__", "metric"), max_iterations=epochs)
    return simulate(spec, surrogate, workers, keep_records=True, log=True)


def iterations_of(simulation: Simulation) -> dict[int, list[int]]:
    """Per trial, the iterations it reported, in order."""
    seen: dict[int, list[int]] = {}
    for _, trial_id, iteration, _ in simulation.log:
        seen.setdefault(trial_id, []).append(iteration)
    return seen


def launches_of(simulation: Simulation) -> list[tuple[int, int, int]]:
    """``(trial, rank, start iteration)`` of every segment, in order: from the launch records, the
    start being the iteration of the checkpoint the segment went on from (0: none)."""
    iteration_of: dict[str, int] = {}
    out = []
    for record in simulation.store.records:
        if record["k"] == "result" and record["ckpt"]:
            iteration_of[record["ckpt"]] = record["row"]["training_iteration"]
        elif record["k"] == "exploit":
            iteration_of[record["ckpt"]] = record["it"]
        elif record["k"] == "launch":
            out.append((record["trial"], record["rank"], iteration_of[record["ckpt"]] if record["ckpt"] else 0))
    return out
