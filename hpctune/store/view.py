"""Reading an experiment folder: the newest readable snapshot, its parts and the journal after it.

Safe while the experiment runs (nothing is blocked): :func:`load_experiment` checks that what it
read is one consistent prefix of the history (the journal continues the snapshot without a gap,
every part it lists is there) and starts over if a newer snapshot replaced it meanwhile. A damaged
``experiment.h5`` is read around (the previous snapshot and the journal after it); with no readable
snapshot, :class:`ExperimentDamaged` says in one line what is damaged and what is intact.
Layout: docs/hdf5-layout.md.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..enums import RecordKind
from ..errors import ExperimentError
from ..trial import Trial, metric_value
from .head import EXPERIMENT_FILE, PREVIOUS_FILE, DamagedSnapshot, Head, UnsupportedFormat, read_head
from .history import TABLES, History
from .journal import JournalGap, read_journal_after
from .lock import coordinator_running
from .parts import PART_DIR, PartInfo, read_part
from .tables import Columns, concat_columns, rows_to_columns
from .trials import trial_rows, trials_from_columns

__all__ = ["ExperimentView", "ExperimentDamaged", "load_experiment", "is_experiment"]

_READ_ATTEMPTS = 20


class ExperimentDamaged(ExperimentError):
    """The experiment cannot be read: no snapshot can (the message says what is left), what the
    snapshot lists is incomplete, or the journal holds a record of a kind this hpctune does not know."""


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
    open_segments: dict[int, dict]   # runs going on as of the snapshot (the store continues from them)
    records_after_snapshot: list[dict] = field(default_factory=list)
    results: Columns = field(default_factory=dict)
    segments: Columns = field(default_factory=dict)
    decisions: Columns = field(default_factory=dict)
    lineage: Columns = field(default_factory=dict)
    snapshot_is_current: bool = True
    notes: list[str] = field(default_factory=list)
    result_count: int = 0
    running_segments: dict[int, dict] = field(default_factory=dict)  # ... and as of the journal's last record

    def restored_trials(self) -> list[Trial]:
        """The trials as of the snapshot (the journal after it is replayed on top)."""
        return trials_from_columns(self.trial_columns)


def _apply_trials(view: ExperimentView, kind: RecordKind, record: dict) -> None:
    """Update the readers' trial table with one journal record of kind ``kind``."""
    trial = view.trials.get(record.get("trial"))
    if kind is RecordKind.ADD:
        view.trials[record["trial"]] = {"trial_id": record["trial"], "state": "PENDING", "iteration": 0,
                                        "num_failures": 0, "end_reason": "", "error": None,
                                        "config": record["config"], "last_result": {},
                                        "best_score": float("-inf"), "best_iteration": 0}
    elif kind is RecordKind.STATUS:
        view.status = record["status"]
    elif trial is None:
        return
    elif kind is RecordKind.LAUNCH:
        trial["state"] = "RUNNING"
    elif kind is RecordKind.RESULT:
        row = record["row"]
        trial["iteration"] = row.get("training_iteration", 0)
        trial["last_result"] = row
        score = metric_value(row, view.spec["metric"], view.spec["mode"])
        if score > trial["best_score"]:
            trial["best_score"], trial["best_iteration"] = score, trial["iteration"]
    elif kind is RecordKind.END and record.get("error"):
        trial["error"] = record["error"]
    elif kind is RecordKind.CONFIG:
        trial["config"] = record["config"]
    elif kind is RecordKind.EXPLOIT or kind is RecordKind.UNDO_EXPLOIT:  # as the controller's trial has it
        trial["iteration"] = record["it"]
        if record.get("config") is not None:
            trial["config"] = record["config"]
    elif kind is RecordKind.STATE:
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
        ExperimentDamaged: no snapshot can be read, or the journal after it has a gap or a record
            of unknown kind.
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
        try:
            kind = RecordKind.from_key(record.get("k"))
        except ValueError as exc:
            raise ExperimentDamaged(f"{folder}: journal record {record.get('seq')}: {exc}") from None
        tail.apply(kind, record)
        _apply_trials(view, kind, record)
    view.running_segments = tail.open_segments
    if view.status == "running" and not coordinator_running(folder):
        view.status = "interrupted"  # killed, or stopped before it could write so (a full disk)
    view.result_count = sum(part.results for part in head.parts) + len(tail.rows["results"])
    if history:
        for name in TABLES:
            rows = tail.rows[name] + (tail.open_rows() if name == "segments" else [])
            tables = [block[name] for block in blocks] + [(rows_to_columns(rows), len(rows))]
            setattr(view, name, concat_columns(tables))
    return view
