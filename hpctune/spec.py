"""The experiment spec: YAML (or keyword arguments) -> one validated :class:`ExperimentSpec`.

Every field is checked here, before anything is written to storage; each error
names the field (``space.lr.loguniform: low must be > 0``). The scheduler and
searcher are held as descriptions ``{"type": name, **options}``: whether that
type and those options exist only their classes know, so the layer above checks
them by building them (:func:`hpctune.controller.core.build_algorithms`).
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SpecError
from .registry import describe
from .space import parse_space, space_to_json
from .spec_file import read_spec_file

__all__ = ["ExperimentSpec", "Resources", "load_spec", "spec_from_dict", "TENSORBOARD_EXTRA", "tensorboardx_installed"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_FIELDS = ("name", "trainable", "metric", "mode", "num_samples", "space", "stop", "scheduler",
           "searcher", "resources", "max_failures", "seed", "storage", "checkpoint_keep",
           "time_budget_s", "budget", "policy", "tensorboard")


TENSORBOARD_EXTRA = "pip install 'hpctune[tensorboard]'"


def tensorboardx_installed() -> bool:
    """Whether tensorboardX can be found (without importing it, nor PyTorch with it)."""
    return importlib.util.find_spec("tensorboardX") is not None


@dataclass(frozen=True)
class Resources:
    """What one trial asks for."""

    ranks_per_trial: int = 1
    gpus_per_rank: int = 0


@dataclass
class ExperimentSpec:
    """One experiment, validated.

    ``scheduler`` and ``searcher`` are descriptions ``{"type": name, **options}``, which the
    controller builds from the registries; ``trainable`` is a reference string (``module:attr`` or ``path.py:attr``)
    that every worker can resolve.
    """

    name: str
    trainable: str
    metric: str
    mode: str
    space: dict
    num_samples: int = 1
    stop: dict = field(default_factory=dict)
    scheduler: dict = field(default_factory=lambda: {"type": "fifo"})
    searcher: dict = field(default_factory=lambda: {"type": "random"})
    resources: Resources = field(default_factory=Resources)
    max_failures: int = 0
    seed: int = 0
    storage: str = "runs"
    checkpoint_keep: int = 2
    time_budget_s: float | None = None
    budget: float | None = None  # hours of the trials' GPUs, or of their ranks without GPUs (docs/budget.md)
    policy: dict | None = None
    tensorboard: bool | str = "auto"  # "auto": on when tensorboardX is installed (docs/tensorboard.md)

    @property
    def tensorboard_on(self) -> bool:
        """Whether the run writes TensorBoard event files (``auto``: when tensorboardX is installed)."""
        return self.tensorboard is True or (self.tensorboard == "auto" and tensorboardx_installed())

    @property
    def experiment_dir(self) -> Path:
        return Path(self.storage) / self.name

    def stop_criterion_met(self, row: dict) -> bool:
        """Whether a result reaches a ``stop`` threshold (``<=`` for the metric in min mode, else ``>=``)."""
        for key, threshold in self.stop.items():
            value = row.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                continue
            if value <= threshold if (key == self.metric and self.mode == "min") else value >= threshold:
                return True
        return False

    def to_json(self) -> dict:
        """A JSON-able form, stored in the experiment file."""
        return {
            "name": self.name, "trainable": self.trainable, "metric": self.metric,
            "mode": self.mode, "num_samples": self.num_samples,
            "space": space_to_json(self.space), "stop": self.stop,
            "scheduler": self.scheduler, "searcher": self.searcher,
            "resources": vars(self.resources), "max_failures": self.max_failures,
            "seed": self.seed, "storage": self.storage, "checkpoint_keep": self.checkpoint_keep,
            "time_budget_s": self.time_budget_s, "budget": self.budget, "policy": self.policy,
            "tensorboard": self.tensorboard,
        }

    @property
    def budget_unit(self) -> str:
        """What :attr:`budget` counts: ``GPU-hours`` when trials use GPUs, else ``rank-hours``."""
        return "GPU-hours" if self.resources.gpus_per_rank else "rank-hours"


def load_spec(path: str | os.PathLike, overrides: Mapping | None = None,
              check_trainable: bool = True) -> ExperimentSpec:
    """Read and validate a YAML spec file; ``overrides`` (e.g. from the CLI) win. Its ``slurm:``
    section is ``hpctune submit``'s (:func:`hpctune.slurm.submit.slurm_options`) and is not checked here.
    ``check_trainable``: False where the trainable is never run (a simulation, a plan).

    Raises:
        SpecError: for the file (unreadable, not UTF-8, bad YAML, a key twice) or its first bad field.
    """
    path = Path(path)
    raw = read_spec_file(path)
    if not isinstance(raw, Mapping):
        raise SpecError(str(path), "expected a YAML mapping of spec fields")
    raw = dict(raw)
    raw.pop("slurm", None)  # how to queue it (``hpctune submit``), not what the experiment is
    raw.setdefault("name", path.stem)
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return spec_from_dict(raw, base_dir=path.resolve().parent, check_trainable=check_trainable)


def _int(raw: Mapping, key: str, default: int, low: int, where: str | None = None) -> int:
    value = raw.get(key, default)
    where = where or key
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(where, f"expected an integer, got {value!r}")
    if value < low:
        raise SpecError(where, f"must be >= {low}, got {value}")
    return value


def _check_storage(storage: Any) -> str:
    if not isinstance(storage, (str, os.PathLike)) or not str(storage):
        raise SpecError("storage", f"expected a folder path, got {storage!r}")
    probe = Path(storage).absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise SpecError("storage", f"{probe} is not a folder")
    try:  # os.access says yes to root on read-only file systems: try for real, leave nothing
        fd, name = tempfile.mkstemp(prefix=".hpctune-probe-", dir=probe)
    except OSError:
        raise SpecError("storage", f"{probe} is not writable") from None
    os.close(fd)
    os.unlink(name)
    return str(storage)


def _check_stop(raw: Any) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SpecError("stop", f"expected a mapping of reported name to threshold, got {raw!r}")
    for key, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpecError(f"stop.{key}", f"expected a number, got {value!r}")
    return dict(raw)


def _positive_or_none(raw: Any, key: str, unit: str) -> float | None:
    """A limit: None (no limit) or a finite number of ``unit`` above 0."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw) or raw <= 0:
        raise SpecError(key, f"expected {unit} > 0, got {raw!r}")
    return float(raw)


def _check_tensorboard(raw: Any) -> bool | str:
    """``auto`` (the default), ``true`` or ``false``; ``true`` needs tensorboardX installed."""
    value = "auto" if raw is None else raw
    if not (isinstance(value, bool) or value == "auto"):
        raise SpecError("tensorboard", f"expected auto, true or false, got {raw!r}")
    if value is True and not tensorboardx_installed():
        raise SpecError("tensorboard", f"needs tensorboardX, an optional extra: {TENSORBOARD_EXTRA}")
    return value


def _check_resources(raw: Any) -> Resources:
    if raw is None:
        return Resources()
    if not isinstance(raw, Mapping):
        raise SpecError("resources", f"expected a mapping, got {raw!r}")
    unknown = set(raw) - {"ranks_per_trial", "gpus_per_rank"}
    if unknown:
        raise SpecError(f"resources.{sorted(unknown)[0]}", "unknown field (known: gpus_per_rank, ranks_per_trial)")
    ranks = _int(raw, "ranks_per_trial", 1, 1, "resources.ranks_per_trial")
    return Resources(ranks, _int(raw, "gpus_per_rank", 0, 0, "resources.gpus_per_rank"))


def spec_from_dict(raw: Mapping, base_dir: Path | None = None, check_trainable: bool = True,
                   import_paths: list[str] = ()) -> ExperimentSpec:
    """Validate a raw spec mapping (parsed YAML or ``hpctune.run`` keywords).

    ``import_paths``: more folders to import the trainable from (those a resumed experiment recorded).

    Raises:
        SpecError: for the first bad field, naming it.
    """
    from .trainable import trainable_reference

    unknown = [k for k in raw if k not in _FIELDS]
    if unknown:
        raise SpecError(str(unknown[0]), f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    for key in ("trainable", "metric", "space"):
        if raw.get(key) is None:
            raise SpecError(key, "missing required field")

    name = raw.get("name", "experiment")
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise SpecError("name", f"must be letters, digits, '.', '_' or '-' (no '/' or '..'), got {name!r}")
    metric = raw["metric"]
    if not isinstance(metric, str) or not metric:
        raise SpecError("metric", f"expected a reported metric name, got {metric!r}")
    mode = raw.get("mode", "min")
    if mode not in ("min", "max"):
        raise SpecError("mode", f"must be 'min' or 'max', got {mode!r}")

    space = parse_space(raw["space"])
    num_samples = _int(raw, "num_samples", 1, 1)
    seed = _int(raw, "seed", 0, 0)
    trainable = trainable_reference(raw["trainable"], base_dir=base_dir, check=check_trainable,
                                    import_paths=import_paths)

    return ExperimentSpec(
        name=name, trainable=trainable, metric=metric, mode=mode, space=space,
        num_samples=num_samples, stop=_check_stop(raw.get("stop")),
        resources=_check_resources(raw.get("resources")),
        max_failures=_int(raw, "max_failures", 0, 0), seed=seed,
        storage=_check_storage(raw.get("storage", "runs")),
        checkpoint_keep=_int(raw, "checkpoint_keep", 2, 1),
        time_budget_s=_positive_or_none(raw.get("time_budget_s"), "time_budget_s", "seconds"),
        budget=_positive_or_none(raw.get("budget"), "budget", "hours"),
        scheduler=describe("scheduler", raw.get("scheduler", "fifo")),
        searcher=describe("searcher", raw.get("searcher", "random")),
        policy=None if raw.get("policy") is None else describe("policy", raw["policy"]),
        tensorboard=_check_tensorboard(raw.get("tensorboard")),
    )
