"""The store interface: what the controller and the coordinator's housekeeping ask of storage.

:class:`~hpctune.store.experiment.ExperimentStore` is the experiment folder (journal, part
files, snapshots); :class:`~hpctune.backends.sim.simulated_store.SimulatedStore` is the same folder for a
simulation (no journal, checkpoints by name only); :class:`~hpctune.backends.sim.memory_store.MemoryStore`
keeps nothing on disk (``hpctune plan`` runs the simulator many times).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..enums import RecordKind
from ..errors import SpecError
from ..trial import Trial

__all__ = ["Store", "NamedCheckpoints"]


class Store:
    """Where an experiment's events go. Attributes: ``folder`` (the experiment folder, as named),
    ``root`` (its real path: checkpoint refs are relative to it), ``spec_json``."""

    folder: Path
    root: Path
    spec_json: dict

    # -- events ----------------------------------------------------------------------
    def record(self, kind: RecordKind, **fields: Any) -> None:
        """Keep one event (``t``, the time, among the fields)."""
        raise NotImplementedError

    def flush(self) -> None:
        """Make every event so far survive a crash of this process (where the store can)."""

    @property
    def result_count(self) -> int:
        """Result rows accepted so far."""
        raise NotImplementedError

    # -- snapshots ---------------------------------------------------------------------
    def snapshot_due(self) -> bool:
        return False

    def part_due(self) -> bool:
        return False

    def write_part(self) -> None:
        """Move the rows collected so far out of memory (nothing where nothing is kept)."""

    def write_snapshot(self, controller_state: dict, trials: list[Trial], status: str) -> float:
        """Keep the controller's state and the trials; returns the seconds it took."""
        return 0.0

    def close(self) -> None:
        """Nothing more is recorded."""

    # -- checkpoints ---------------------------------------------------------------------
    def trial_dir(self, trial_id: int) -> str:
        """The trial's own folder (absolute)."""
        return f"{self.root}/trials/{trial_id:06d}"

    @staticmethod
    def check_checkpoint_ref(ref: str, trial_id: int) -> None:
        """A checkpoint is ``trials/<id>/<file>``, relative to the experiment folder (string checks only).

        Raises:
            SpecError: ``ref`` is anything else.
        """
        prefix = f"trials/{trial_id:06d}/"
        name = ref[len(prefix):] if isinstance(ref, str) and ref.startswith(prefix) else ""
        if not name or "/" in name or name in (".", ".."):
            raise SpecError("checkpoint", f"trial {trial_id}'s checkpoint {ref!r} is not a file in {prefix} of "
                                          "the experiment folder; refusing to open or delete it")

    def checkpoint_path(self, ref: str, trial_id: int) -> Path:
        """The absolute path of a checkpoint (checked as :meth:`check_checkpoint_ref` does)."""
        raise NotImplementedError

    def copy_checkpoint(self, ref: str, trial_id: int, to_trial: int, name: str) -> str:
        """Give ``to_trial`` its own copy of ``trial_id``'s checkpoint ``ref`` as ``name``; returns its ref."""
        raise NotImplementedError

    def delete_checkpoint(self, ref: str, trial_id: int) -> None:
        """Delete a checkpoint no trial can resume from any more."""
        raise NotImplementedError

    def retire_checkpoint(self, ref: str, trial_id: int) -> None:
        """Delete a checkpoint that the records so far made obsolete, once no record that a crash can
        lose still refers to it (here, with no journal: now).

        Raises:
            SpecError: ``ref`` is not the trial's, or lies outside the folder (never deleted).
        """
        self.delete_checkpoint(ref, trial_id)

    def checkpoint_problem(self, ref: str, trial_id: int) -> str | None:
        """Why a trial cannot go on from checkpoint ``ref`` (``"is missing"``, ``"cannot be read
        (...)"``), or None (here: none, as the checkpoints are names only)."""
        return None


class NamedCheckpoints:
    """Checkpoints that are names only (a simulated trial has no state to save): a path is the
    name under the experiment folder, a copy (PBT's exploit) is the new name, deletion does nothing.
    Mixed in before the store class it changes."""

    def checkpoint_path(self, ref: str, trial_id: int) -> Path:
        self.check_checkpoint_ref(ref, trial_id)
        return self.root / ref

    def copy_checkpoint(self, ref: str, trial_id: int, to_trial: int, name: str) -> str:
        self.check_checkpoint_ref(ref, trial_id)
        return f"trials/{to_trial:06d}/{name}"

    def delete_checkpoint(self, ref: str, trial_id: int) -> None:
        pass

    def retire_checkpoint(self, ref: str, trial_id: int) -> None:
        self.check_checkpoint_ref(ref, trial_id)

    def checkpoint_problem(self, ref: str, trial_id: int) -> str | None:
        return None
