"""The experiment folder: snapshots, part files and the journal, written by the coordinator alone.

Everything accepted goes to the journal first (:mod:`.journal`). Every snapshot
interval the coordinator moves the history rows collected since the last part
into a new immutable part file (:mod:`.parts`), merges parts in tiers, and
replaces ``experiment.h5`` (:mod:`.head`), keeping the previous snapshot and
everything it needs. Its memory and its work per snapshot follow the trials
and the new rows, never the whole history. Readers combine the newest readable
snapshot, its parts and the journal after it; :func:`load_experiment` checks
that what it read is one consistent prefix of the history, and starts over if
a snapshot replaced it meanwhile. Layout: docs/hdf5-layout.md.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ExperimentError, SpecError
from ..trial import Trial, metric_value
from .head import (EXPERIMENT_FILE, PREVIOUS_FILE, DamagedSnapshot, Head, UnsupportedFormat, read_head,
                   read_manifest, write_head)
from .files import fsync_path
from .history import TABLES, History
from .journal import Journal, JournalGap, read_journal_after
from .parts import (PART_DIR, Kinds, PartInfo, is_part_file, merge_parts, part_kinds, plan_merge,
                    read_part, write_part)
from .tables import Columns, concat_columns, rows_to_columns
from .trials import trial_rows, trials_from_columns

__all__ = ["ExperimentStore", "ExperimentView", "ExperimentDamaged", "load_experiment", "is_experiment",
           "EXPERIMENT_FILE"]

PART_FLUSH_ROWS = 50_000
"""A part is written between snapshots once this many rows wait in memory."""
_READ_ATTEMPTS = 20


class ExperimentDamaged(ExperimentError):
    """No snapshot of the experiment can be read (the message says what is left)."""


def is_experiment(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an hpctune experiment."""
    folder = Path(folder)
    return (folder / EXPERIMENT_FILE).is_file() or (folder / PREVIOUS_FILE).is_file()


@dataclass
class ExperimentView:
    """An experiment as read back: a snapshot, its parts, and the journal after it."""

    folder: Path
    spec: dict
    status: str
    controller_state: dict | None
    python_path: list[str]
    trials: dict[int, dict]
    trial_columns: Columns
    snapshot_seq: int
    last_seq: int
    parts: list[PartInfo]
    open_segments: dict[int, dict]
    records_after_snapshot: list[dict] = field(default_factory=list)
    results: Columns = field(default_factory=dict)
    segments: Columns = field(default_factory=dict)
    decisions: Columns = field(default_factory=dict)
    snapshot_is_current: bool = True
    notes: list[str] = field(default_factory=list)
    result_count: int = 0

    def restored_trials(self) -> list[Trial]:
        """The trials as of the snapshot (the journal after it is replayed on top)."""
        return trials_from_columns(self.trial_columns)


def _apply_trials(view: ExperimentView, record: dict) -> None:
    """Update the readers' trial table with one journal record."""
    kind = record["k"]
    trial = view.trials.get(record.get("trial"))
    if kind == "add":
        view.trials[record["trial"]] = {"trial_id": record["trial"], "state": "PENDING", "iteration": 0,
                                        "num_failures": 0, "end_reason": "", "error": None,
                                        "config": record["config"], "last_result": {},
                                        "best_score": float("-inf"), "best_iteration": 0}
    elif kind == "status":
        view.status = record["status"]
    elif trial is None:
        return
    elif kind == "launch":
        trial["state"] = "RUNNING"
    elif kind == "result":
        row = record["row"]
        trial["iteration"] = row.get("training_iteration", 0)
        trial["last_result"] = row
        score = metric_value(row, view.spec["metric"], view.spec["mode"])
        if score > trial["best_score"]:
            trial["best_score"], trial["best_iteration"] = score, trial["iteration"]
    elif kind == "end" and record.get("error"):
        trial["error"] = record["error"]
    elif kind == "state":
        trial["state"] = record["state"]
        trial["end_reason"] = record.get("why") or trial.get("end_reason")
        trial["num_failures"] = record.get("failures", trial.get("num_failures", 0))


def _newest_head(folder: Path) -> tuple[Head, bool, list[str]]:
    """The newest readable snapshot, whether it is the current one, and notes on damaged ones."""
    damaged = []
    for i, name in enumerate((EXPERIMENT_FILE, PREVIOUS_FILE)):
        try:
            head = read_head(folder / name)
        except FileNotFoundError:
            damaged.append(f"{name}: missing")
            continue
        except UnsupportedFormat as exc:
            raise ExperimentDamaged(str(exc)) from None
        except DamagedSnapshot as exc:
            damaged.append(str(exc).replace(f"{folder / name}: ", f"{name}: ", 1))
            continue
        notes = [f"{folder / EXPERIMENT_FILE} is damaged ({damaged[0].split(': ', 1)[1]}); read "
                 f"{PREVIOUS_FILE} and the journal after it instead"] if i else []
        return head, i == 0, notes
    raise ExperimentDamaged(_damage_report(folder, damaged))


def _damage_report(folder: Path, damaged: list[str]) -> str:
    """One line: which snapshots are damaged and what is still intact."""
    rows = files = 0
    for path in sorted((folder / PART_DIR).glob("*.h5")):
        try:
            tables = read_part(folder, f"{PART_DIR}/{path.name}")
        except OSError:
            continue
        files += 1
        rows += tables["results"][1]
    journal = sum(1 for path in (folder / "journal").glob("*.jsonl") for line in path.read_bytes().splitlines() if line)
    return (f"{folder}: no snapshot can be read ({'; '.join(damaged)}), so the experiment cannot be resumed; "
            f"intact: {rows} result rows in {files} part files under {folder / PART_DIR} and {journal} journal "
            f"records under {folder / 'journal'} (see docs/hdf5-layout.md)")


def load_experiment(folder: str | os.PathLike, history: bool = True) -> ExperimentView:
    """Read an experiment folder; safe while the experiment runs (nothing is locked).

    What comes back is always one consistent prefix of the experiment: every
    accepted event up to some point, none after it, no gap.

    Args:
        history: also read the result, segment and decision tables (readers);
            resume needs only the snapshot and the journal.

    Raises:
        FileNotFoundError: ``folder`` holds no experiment.
        ExperimentDamaged: no snapshot can be read, or the journal after it has a gap.
    """
    folder = Path(folder)
    if not is_experiment(folder):
        raise FileNotFoundError(f"{folder} holds no hpctune experiment (no {EXPERIMENT_FILE})")
    problem = ""
    for _ in range(_READ_ATTEMPTS):
        head, is_current, notes = _newest_head(folder)
        try:
            records = read_journal_after(folder / "journal", head.seq)
            blocks = [read_part(folder, part) for part in head.parts] if history else []
        except (JournalGap, FileNotFoundError) as exc:
            problem = str(exc)  # a newer snapshot replaced what we read: start over from it
            time.sleep(0.01)
            continue
        return _view(folder, head, is_current, notes, records, blocks, history)
    raise ExperimentDamaged(f"{folder}: what the snapshot lists is incomplete ({problem})")


def _view(folder: Path, head: Head, is_current: bool, notes: list[str], records: list[dict],
          blocks: list[dict], history: bool) -> ExperimentView:
    open_segments = {int(run["trial_id"]): run for run in head.running}
    view = ExperimentView(
        folder=folder, spec=head.spec, status=head.status, controller_state=head.controller_state,
        python_path=head.python_path, trials=trial_rows(head.trials), trial_columns=head.trials,
        snapshot_seq=head.seq, last_seq=records[-1]["seq"] if records else head.seq, parts=head.parts,
        open_segments=open_segments,
        records_after_snapshot=records, snapshot_is_current=is_current, notes=notes)
    tail = History(open_segments)
    for record in records:
        tail.apply(record)
        _apply_trials(view, record)
    if view.status == "running" and not coordinator_running(folder):
        view.status = "interrupted"  # killed, or stopped before it could write so (a full disk)
    view.result_count = sum(part.results for part in head.parts) + len(tail.rows["results"])
    if history:
        for name in TABLES:
            rows = tail.rows[name] + (tail.open_rows() if name == "segments" else [])
            tables = [block[name] for block in blocks] + [(rows_to_columns(rows), len(rows))]
            setattr(view, name, concat_columns(tables))
    return view


LOCK_FILE = ".lock"
_LOCK_TRIES = 20


def _lock(folder: Path) -> int:
    """One coordinator per experiment: an exclusive lock on ``.lock``, freed by any exit of its process.

    Tried for a moment: a reader's probe (:func:`coordinator_running`) holds it for microseconds.
    """
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    for attempt in range(_LOCK_TRIES):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            time.sleep(0.01)
    os.close(fd)
    raise SpecError(str(folder), "is in use by a running hpctune coordinator")


def coordinator_running(folder: Path) -> bool:
    """Whether a coordinator holds the experiment now (a moment's shared lock tells; nothing is kept)."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:  # a file system without locks: cannot tell, believe the record
        return True
    finally:
        os.close(fd)


class ExperimentStore:
    """The coordinator's writer: journal records, part files, snapshots.

    Args:
        folder: the experiment folder.
        spec_json: the spec as stored.
        view: the experiment read back (resume), or None to create a new one.
        fsync_interval: seconds between journal fsyncs.
        snapshot_interval: least seconds between snapshots; grows so that
            snapshots take at most ~5% of the coordinator's time.
        python_path: folders the trainable is imported from (kept for resume).

    Raises:
        SpecError: the folder exists already (new experiment), or another
            coordinator holds it.
    """

    def __init__(self, folder: str | os.PathLike, spec_json: dict, view: ExperimentView | None = None,
                 fsync_interval: float = 1.0, snapshot_interval: float = 10.0,
                 python_path: list[str] | None = None):
        self.folder = Path(folder)
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
            self.history.apply(record)
        self.result_count = view.result_count if view else 0  # result rows the experiment holds
        self._lock_fd = self._create() if view is None else _lock(self.folder)
        self.root = Path(os.path.realpath(self.folder))  # checkpoint paths are relative to this
        self._root_text = str(self.root)
        self._remove_strays()
        self.journal = Journal(self.folder / "journal", (view.last_seq if view else 0) + 1, fsync_interval)
        self._last_snapshot = time.monotonic()

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
            fd = _lock(tmp)
            self._write_head(tmp, None, [], "running", 0, keep_previous=False)
            os.rename(tmp, self.folder)  # replaces an empty folder, fails on a non-empty one
            return fd
        except OSError as exc:
            if fd is not None:
                os.close(fd)
            shutil.rmtree(tmp, ignore_errors=True)
            if is_experiment(self.folder):
                raise SpecError("name", f"{self.folder} already holds an experiment; continue it with "
                                        f"'hpctune resume {self.folder}' or choose another name") from None
            raise SpecError("storage", f"cannot create {self.folder}: {exc.strerror or exc}") from None

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

    def delete_checkpoint(self, ref: str, trial_id: int) -> None:
        """Delete a checkpoint no trial can resume from any more (only inside the folder)."""
        self.checkpoint_path(ref, trial_id).unlink(missing_ok=True)

    # -- records -----------------------------------------------------------------------
    def record(self, kind: str, **fields: Any) -> None:
        """Journal one record and add what it changes to the history."""
        fields["k"] = kind
        self.journal.append(fields)
        self.history.apply(fields)
        if kind == "result":
            self.result_count += 1

    def flush(self) -> None:
        """Make every record so far survive a crash of this process (one ``os.write``)."""
        self.journal.flush()

    def snapshot_due(self) -> bool:
        return time.monotonic() - self._last_snapshot >= self.snapshot_interval

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
        started = time.monotonic()
        self.write_part()
        self._write_head(self.folder, controller_state, trials, status, self._covered_seq, self._keep_previous)
        self._keep_previous = True
        kept_seq, self._snapshot_seq = self._snapshot_seq, self._covered_seq
        # what the previous snapshot needs stays: the journal after it, and its parts
        self.journal.rotate(kept_seq)
        keep = {part.file for part in self.parts} | {part.file for part in self._previous_parts}
        self._previous_parts = list(self.parts)
        for path in (self.folder / PART_DIR).glob("*.h5"):
            if f"{PART_DIR}/{path.name}" not in keep:
                path.unlink(missing_ok=True)
                self._kinds.pop(f"{PART_DIR}/{path.name}", None)
        took = time.monotonic() - started
        self._last_snapshot = time.monotonic()
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
        finally:
            os.close(self._lock_fd)
