"""The experiment folder: snapshots, part files and the journal, written by the coordinator alone.

Everything accepted goes to the journal first (:mod:`.journal`). Every snapshot
interval the coordinator moves the history rows collected since the last part
into a new immutable part file (:mod:`.parts`), merges parts in tiers, and
replaces ``experiment.h5`` (:mod:`.head`), keeping the previous snapshot and
everything it needs. Its memory and its work per snapshot follow the trials
and the new rows, never the whole history. Reading is :mod:`.view`'s; the lock
that keeps a second coordinator out is :mod:`.lock`'s. Layout: docs/hdf5-layout.md.
"""
from __future__ import annotations

import os
import shutil
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py

from ..enums import RecordKind
from ..errors import SpecError
from ..trial import Trial
from .files import fsync_path
from .head import EXPERIMENT_FILE, LAUNCHER_FILES, PREVIOUS_FILE, read_manifest, write_head
from .history import History
from .base import Store
from .checkpoint import unreadable_reason
from .journal import Journal
from .lock import lock_experiment
from .parts import PART_DIR, Kinds, PartInfo, is_part_file, merge_parts, part_kinds, plan_merge, write_part
from .view import ExperimentDamaged, ExperimentView, is_experiment, load_experiment

__all__ = ["ExperimentStore", "ExperimentView", "ExperimentDamaged", "load_experiment", "is_experiment",
           "EXPERIMENT_FILE"]

PART_FLUSH_ROWS = 16_384
"""A part is written between snapshots once this many rows wait in memory (each a dict of about 250
bytes: at 16,384 the coordinator's peak at 10,000 trials x 20 reports is 7 MiB below 50,000's;
BENCHMARKS.md, "Coordinator memory")."""


class ExperimentStore(Store):
    """The coordinator's writer: journal records, part files, snapshots.

    Args:
        folder: the experiment folder.
        spec_json: the spec as stored.
        view: the experiment read back (resume), or None to create a new one.
        fsync_interval: seconds between journal fsyncs.
        snapshot_interval: least seconds between snapshots; grows so that
            snapshots take at most ~5% of the coordinator's time.
        python_path: folders the trainable is imported from (kept for resume).
        clock: seconds for snapshot timing (``time.monotonic``; the simulator's virtual clock,
            so that a simulated experiment snapshots at the same virtual times on any machine).

    Raises:
        SpecError: the folder exists already (new experiment), or another
            coordinator holds it.
    """

    def __init__(self, folder: str | os.PathLike, spec_json: dict, view: ExperimentView | None = None,
                 fsync_interval: float = 1.0, snapshot_interval: float = 10.0,
                 python_path: list[str] | None = None, clock: Callable[[], float] = time.monotonic):
        self.folder = Path(folder)
        self.clock = clock
        self.spec_json = spec_json
        self.python_path = list(python_path or (view.python_path if view else []))
        self.snapshot_interval = snapshot_interval
        self._min_snapshot_interval = snapshot_interval
        self.parts: list[PartInfo] = list(view.parts) if view else []
        # the previous snapshot's parts stay while it is kept (a damaged one is not kept: it lists none)
        self._previous_parts = read_manifest(self.folder / PREVIOUS_FILE) if view and view.snapshot_is_current else []
        self._snapshot_seq = view.snapshot_seq if view else 0
        self._covered_seq = self._snapshot_seq          # records up to here have their rows in self.parts
        self._keep_previous = view.snapshot_is_current if view else True
        self._kinds: dict[str, Kinds] = {}            # part file -> its column types (for the virtual datasets)
        self.history = History(view.open_segments if view else None)
        for record in (view.records_after_snapshot if view else ()):
            self.history.apply(RecordKind.from_key(record["k"]), record)
        self._lock_fd = self._create() if view is None else lock_experiment(self.folder)
        self.root = Path(os.path.realpath(self.folder))  # checkpoint paths are relative to this
        self._root_text = str(self.root)
        self._remove_strays()
        self.journal = self._open_journal((view.last_seq if view else 0) + 1, fsync_interval)
        self._retired: deque[tuple[int, Path]] = deque()  # (the journal's seq when it became obsolete, file)
        self._last_snapshot = clock()

    def _open_journal(self, next_seq: int, fsync_interval: float) -> Journal:
        return Journal(self.folder / "journal", next_seq, fsync_interval)

    # -- the folder ------------------------------------------------------------------
    def _create(self) -> int:
        """Make the folder with an empty snapshot under a temporary name, locked, then rename it: a
        crash never leaves half an experiment, of two runs racing for one name one wins cleanly, and
        no reader ever sees it unlocked while it starts. Returns the lock's descriptor."""
        tmp = self.folder.parent / f".{self.folder.name}.{os.getpid()}.creating"
        fd = None
        try:
            (tmp / "trials").mkdir(parents=True)
            (tmp / "journal").mkdir()
            fd = lock_experiment(tmp)
            self._write_head(tmp, None, [], "running", 0, keep_previous=False)
            adopted = self._adopt_launcher_files(tmp)
            try:
                os.rename(tmp, self.folder)  # replaces an empty folder, fails on a non-empty one
            except OSError:
                for name in adopted:  # back where they were
                    os.rename(tmp / name, self.folder / name)
                raise
            return fd
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            if is_experiment(self.folder):
                raise SpecError("name", f"{self.folder} already holds an experiment; continue it with "
                                        f"'hpctune resume {self.folder}' or choose another name") from None
            raise SpecError("storage", f"cannot create {self.folder}: {exc.strerror or exc}") from None

    def _adopt_launcher_files(self, tmp: Path) -> list[str]:
        """Move ``hpctune submit``'s files (:data:`LAUNCHER_FILES`) from the folder into the new
        experiment, so that the folder is empty for the rename (a log being written keeps its descriptor)."""
        adopted = []
        for name in LAUNCHER_FILES:
            try:
                os.rename(self.folder / name, tmp / name)
            except FileNotFoundError:
                continue
            adopted.append(name)
        return adopted

    def _remove_strays(self) -> None:
        """Delete temporary files and parts no kept snapshot lists (a crash between writing a part and
        the snapshot that lists it: the journal still has those records)."""
        keep = {part.file for part in (*self.parts, *self._previous_parts)}
        for path in (self.folder / PART_DIR).glob("*"):
            if f"{PART_DIR}/{path.name}" not in keep and (path.name.endswith(".tmp") or is_part_file(path.name)):
                path.unlink(missing_ok=True)
        for path in self.folder.glob(".*.tmp"):
            path.unlink(missing_ok=True)

    # -- checkpoints ------------------------------------------------------------------
    def trial_dir(self, trial_id: int) -> str:
        """The trial's own folder (absolute; a string: one is made for every launch)."""
        return f"{self._root_text}/trials/{trial_id:06d}"

    def checkpoint_path(self, ref: str, trial_id: int) -> Path:
        """The absolute path of a checkpoint, checked to lie inside the experiment folder.

        Raises:
            SpecError: ``ref`` is not the trial's, or resolves (through links) outside the folder.
        """
        self.check_checkpoint_ref(ref, trial_id)
        path = Path(os.path.realpath(self.root / ref))
        if self.root not in path.parents:
            raise SpecError("checkpoint", f"trial {trial_id}'s checkpoint {ref!r} resolves to {path}, outside "
                                          f"{self.folder}; refusing to open or delete it")
        return path

    def copy_checkpoint(self, ref: str, trial_id: int, to_trial: int, name: str) -> str:
        """Give ``to_trial`` its own copy of ``trial_id``'s checkpoint ``ref`` as ``name`` (a hard link
        where the file system has them, else a copy written under a temporary name); returns the
        copy's ref. An existing copy of that name is kept (a replayed journal makes it again)."""
        copy = f"trials/{to_trial:06d}/{name}"
        target = self.checkpoint_path(copy, to_trial)
        if target.exists():
            return copy
        source = self.checkpoint_path(ref, trial_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:  # no hard links here (or another device): copy, then move into place
            temporary = target.with_name(f".{name}.tmp")
            shutil.copyfile(source, temporary)
            fsync_path(temporary)
            os.replace(temporary, target)
        fsync_path(target.parent)  # the new name survives a crash, as the journal record naming it does
        return copy

    def delete_checkpoint(self, ref: str, trial_id: int) -> None:
        """Delete a checkpoint no trial can resume from any more (only inside the folder)."""
        self.checkpoint_path(ref, trial_id).unlink(missing_ok=True)

    def retire_checkpoint(self, ref: str, trial_id: int) -> None:
        """Delete a checkpoint that the records so far made obsolete, once those records are fsynced.

        Until then a crash of the node can lose them, and the journal that is left still names the
        checkpoint as a trial's newest: deleting it at once would leave that trial nothing to go on
        from. It goes at the next fsync (every ``fsync_interval``, a snapshot, the close).

        Raises:
            SpecError: ``ref`` is not the trial's, or resolves outside the folder (never deleted).
        """
        self._retired.append((self.journal.seq, self.checkpoint_path(ref, trial_id)))
        self._delete_retired()

    def _delete_retired(self) -> None:
        durable = self.journal.durable_seq
        while self._retired and self._retired[0][0] <= durable:
            self._retired.popleft()[1].unlink(missing_ok=True)

    def checkpoint_problem(self, ref: str, trial_id: int) -> str | None:
        """Why a trial cannot go on from checkpoint ``ref`` (``"is missing"``, ``"cannot be read
        (truncated file: ...)"``), or None: it is there and opens as an HDF5 file (its data is not
        read: a trial that finds it damaged fails with one line naming it)."""
        path = self.checkpoint_path(ref, trial_id)
        if not path.exists():
            return "is missing"
        try:
            with h5py.File(path, "r", locking=False):
                pass
        except OSError as exc:
            return f"cannot be read ({unreadable_reason(exc)})"
        return None

    # -- records -----------------------------------------------------------------------
    def record(self, kind: RecordKind, **fields: Any) -> None:
        """Journal one record (``"k"``: the kind's key) and add what it changes to the history."""
        fields["k"] = kind.key
        self.journal.append(fields)
        self.history.apply(kind, fields)

    @property
    def result_count(self) -> int:
        """Result rows the experiment holds: in its part files, and collected for the next one."""
        return sum(part.results for part in self.parts) + len(self.history.rows["results"])

    def flush(self) -> None:
        """Make every record so far survive a crash of this process (one ``os.write``); delete the
        retired checkpoints whose records are durable now."""
        self.journal.flush()
        self._delete_retired()

    def snapshot_due(self) -> bool:
        return self.clock() - self._last_snapshot >= self.snapshot_interval

    def part_due(self) -> bool:
        return len(self.history) >= PART_FLUSH_ROWS

    # -- parts and snapshots -------------------------------------------------------------
    def write_part(self) -> None:
        """Move the history rows collected so far into a new part file (nothing if there are none)."""
        self.journal.flush()
        seq = self.journal.seq
        written = False
        if len(self.history):
            part, kinds = write_part(self.folder, self._covered_seq + 1, seq, self.history.rows)
            self._kinds[part.file] = kinds
            self.parts.append(part)
            self.history.take_rows()
            written = True
        self._covered_seq = seq
        while (run := plan_merge(self.parts)) is not None:
            merged, kinds = merge_parts(self.folder, run)
            self._kinds[merged.file] = kinds
            self.parts[-len(run):] = [merged]
        if written:
            fsync_path(self.folder / PART_DIR)

    def write_snapshot(self, controller_state: dict, trials: list[Trial], status: str) -> float:
        """Write a part and a new ``experiment.h5``; returns the seconds it took.

        Raises:
            OSError: a file could not be written (nothing already durable is affected).
        """
        started = self.clock()
        self.write_part()
        self._write_head(self.folder, controller_state, trials, status, self._covered_seq, self._keep_previous)
        self._keep_previous = True
        kept_seq, self._snapshot_seq = self._snapshot_seq, self._covered_seq
        # what the previous snapshot needs stays: the journal after it, and its parts
        self.journal.rotate(kept_seq)
        self._delete_retired()  # the rotation fsynced every record
        keep = {part.file for part in self.parts} | {part.file for part in self._previous_parts}
        self._previous_parts = list(self.parts)
        for path in (self.folder / PART_DIR).glob("*.h5"):
            if f"{PART_DIR}/{path.name}" not in keep:
                path.unlink(missing_ok=True)
                self._kinds.pop(f"{PART_DIR}/{path.name}", None)
        self._last_snapshot = self.clock()
        took = self._last_snapshot - started
        self.snapshot_interval = max(self._min_snapshot_interval, 20 * took)
        return took

    def _write_head(self, folder: Path, controller_state: dict | None, trials: list[Trial], status: str,
                    seq: int, keep_previous: bool) -> None:
        parts = self.parts if folder == self.folder else []
        for part in parts:
            if part.file not in self._kinds:  # parts of a resumed experiment
                self._kinds[part.file] = part_kinds(self.folder, part)
        write_head(folder, spec=self.spec_json, controller_state=controller_state, python_path=self.python_path,
                   trials=trials, running=self.history.open_rows(), parts=parts,
                   columns_of=self._kinds, status=status, seq=seq, keep_previous=keep_previous)

    def close(self) -> None:
        try:
            self.journal.close()
            self._delete_retired()
        finally:
            os.close(self._lock_fd)
