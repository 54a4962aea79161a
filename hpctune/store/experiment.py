"""The experiment folder: ``experiment.h5`` (atomic snapshots) + ``journal/`` + ``trials/``.

Written by the coordinator alone. ``experiment.h5`` is only ever replaced whole
(written under a temporary name, then ``os.replace``), so plain h5py can open it
at any moment, even after a SIGKILL; everything accepted since it was written is
in the journal. :func:`load_experiment` combines the two, for readers and for resume.
Layout: docs/hdf5-layout.md.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from .._version import __version__
from ..errors import SpecError
from .journal import Journal, read_journal, to_jsonable
from .tables import ColumnTable, read_group_columns

__all__ = ["ExperimentStore", "ExperimentView", "load_experiment", "is_experiment", "EXPERIMENT_FILE"]

EXPERIMENT_FILE = "experiment.h5"
FORMAT = "hpctune-experiment"
FORMAT_VERSION = 1
_TRIAL_COLUMNS = ("trial_id", "state", "iteration", "num_failures", "time_total_s",
                  "checkpoint", "checkpoint_iteration", "end_reason", "error")


def is_experiment(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds an hpctune experiment."""
    return (Path(folder) / EXPERIMENT_FILE).is_file()


@dataclass
class ExperimentView:
    """An experiment as read back: snapshot plus the journal after it."""

    folder: Path
    spec: dict
    status: str
    controller_state: dict | None
    trials: dict[int, dict]
    results: ColumnTable
    segments: ColumnTable
    decisions: ColumnTable
    snapshot_seq: int
    records_after_snapshot: list[dict] = field(default_factory=list)
    last_seq: int = 0


def _apply_tables(view: ExperimentView, record: dict, open_segments: dict[int, int]) -> None:
    """Update the result, segment and decision tables with one journal record."""
    kind = record["k"]
    if kind == "result":
        view.results.append(record["row"])
    elif kind == "launch":
        open_segments[record["trial"]] = view.segments.length
        view.segments.append({"rank": record["rank"], "trial_id": record["trial"], "start": record["t"],
                              "end": None, "how": None})
    elif kind == "end":
        index = open_segments.pop(record["trial"], None)
        if index is not None:
            view.segments.columns["end"][index] = record["t"]
            view.segments.columns["how"][index] = record["how"]
    elif kind == "decision":
        view.decisions.append({"trial_id": record["trial"], "training_iteration": record["it"],
                               "decision": record["d"], "t": record.get("t")})


def _apply_trials(view: ExperimentView, record: dict) -> None:
    """Update the readers' trial table with one journal record."""
    kind = record["k"]
    trial = view.trials.get(record.get("trial"))
    if kind == "add":
        view.trials[record["trial"]] = {"trial_id": record["trial"], "state": "PENDING", "iteration": 0,
                                        "num_failures": 0, "config": record["config"]}
    elif trial is None:
        if kind == "status":
            view.status = record["status"]
    elif kind == "launch":
        trial["state"] = "RUNNING"
    elif kind == "result":
        trial["iteration"] = record["row"].get("training_iteration", 0)
        trial["last_result"] = record["row"]
    elif kind == "end" and record.get("error"):
        trial["error"] = record["error"]
    elif kind == "state":
        trial["state"] = record["state"]
        trial["end_reason"] = record.get("why") or trial.get("end_reason")
        trial["num_failures"] = record.get("failures", trial.get("num_failures", 0))


def _read_table(f: h5py.File, name: str) -> ColumnTable:
    table = ColumnTable()
    if name in f:
        columns, length = read_group_columns(f[name])
        table.extend_columns(columns, length)
    return table


def load_experiment(folder: str | os.PathLike, apply_journal: bool = True) -> ExperimentView:
    """Read an experiment folder; safe while the experiment runs (nothing is locked).

    Raises:
        FileNotFoundError: ``folder`` holds no experiment.
    """
    folder = Path(folder)
    path = folder / EXPERIMENT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no hpctune experiment (no {EXPERIMENT_FILE})")
    with h5py.File(path, "r", locking=False) as f:
        if f.attrs.get("format") != FORMAT:
            raise FileNotFoundError(f"{path} is not an hpctune experiment file")
        spec = json.loads(f["spec"][()])
        state_text = f["controller_state"][()] if "controller_state" in f else b""
        controller_state = json.loads(state_text) if state_text else None
        trials: dict[int, dict] = {}
        if "trials" in f:
            columns, length = read_group_columns(f["trials"])
            for i in range(length):
                row = {k: v[i] for k, v in columns.items() if not k.startswith("config/")}
                row["config"] = json.loads(row.pop("config_json"))
                trials[int(row["trial_id"])] = row
        view = ExperimentView(
            folder=folder, spec=spec, status=str(f.attrs.get("status", "running")),
            controller_state=controller_state, trials=trials,
            results=_read_table(f, "results"), segments=_read_table(f, "segments"),
            decisions=_read_table(f, "decisions"), snapshot_seq=int(f.attrs["journal_seq"]),
        )
    view.last_seq = view.snapshot_seq
    if apply_journal:
        open_segments = {int(t): i for i, (t, end) in enumerate(
            zip(view.segments.columns.get("trial_id", []), view.segments.columns.get("end", []))) if end is None}
        for record in read_journal(folder / "journal", view.snapshot_seq):
            _apply_tables(view, record, open_segments)
            _apply_trials(view, record)
            view.records_after_snapshot.append(record)
            view.last_seq = record["seq"]
    return view


class ExperimentStore:
    """The coordinator's writer: journal records, in-memory tables, snapshots.

    Args:
        folder: the experiment folder.
        view: an experiment read back (resume) or None (new experiment).
        fsync_interval: seconds between journal fsyncs.
        snapshot_interval: least seconds between automatic snapshots; grows so
            that snapshots take at most ~5% of the coordinator's time.
    """

    def __init__(self, folder: str | os.PathLike, spec_json: dict, view: ExperimentView | None = None,
                 fsync_interval: float = 1.0, snapshot_interval: float = 10.0):
        self.folder = Path(folder)
        self.spec_json = spec_json
        self.tables = view or ExperimentView(Path(folder), spec_json, "running", None, {},
                                             ColumnTable(), ColumnTable(), ColumnTable(), 0)
        self._open_segments: dict[int, int] = {}
        self.snapshot_interval = snapshot_interval
        self._min_snapshot_interval = snapshot_interval
        self.hostname = socket.gethostname()
        if view is None:
            self._create()
        self._lock_fd = self._lock()
        self.journal = Journal(self.folder / "journal", (view.last_seq if view else 0) + 1, fsync_interval)
        self._last_snapshot = time.monotonic()

    def _create(self) -> None:
        """Make the folder with its first snapshot under a temporary name, then rename it:
        a crash during creation never leaves a folder that is half an experiment."""
        tmp = self.folder.parent / f".{self.folder.name}.{os.getpid()}.creating"
        (tmp / "trials").mkdir(parents=True)
        (tmp / "journal").mkdir()
        self._write_file(tmp / EXPERIMENT_FILE, None, [], "running", 0)
        os.rename(tmp, self.folder)  # replaces an empty folder, fails on a non-empty one

    def _lock(self) -> int:
        """One coordinator per experiment: an exclusive lock on ``.lock``, freed by any exit."""
        fd = os.open(self.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpecError(str(self.folder), "is in use by a running hpctune coordinator") from None
        return fd

    def trial_dir(self, trial_id: int) -> Path:
        return self.folder / "trials" / f"{trial_id:06d}"

    # -- records -----------------------------------------------------------------
    def record(self, kind: str, **fields: Any) -> None:
        """Journal one record and update the tables it touches."""
        fields["k"] = kind
        self.journal.append(fields)
        _apply_tables(self.tables, fields, self._open_segments)

    def flush(self) -> None:
        """Make every record so far survive a crash of this process (one ``os.write``)."""
        self.journal.flush()

    def snapshot_due(self) -> bool:
        return time.monotonic() - self._last_snapshot >= self.snapshot_interval

    # -- snapshots ---------------------------------------------------------------
    def write_snapshot(self, controller_state: dict, trials: list, status: str) -> float:
        """Replace ``experiment.h5`` with the full current state; returns seconds taken."""
        started = time.monotonic()
        self.journal.flush()
        seq = self.journal.seq
        self._write_file(self.folder / EXPERIMENT_FILE, controller_state, trials, status, seq)
        self.journal.rotate(seq)
        took = time.monotonic() - started
        self._last_snapshot = time.monotonic()
        self.snapshot_interval = max(self._min_snapshot_interval, 20 * took)
        return took

    def _write_file(self, path: Path, controller_state: dict | None, trials: list, status: str, seq: int) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with h5py.File(tmp, "w", locking=False) as f:
                f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                                "hpctune_version": __version__, "name": self.spec_json["name"],
                                "metric": self.spec_json["metric"], "mode": self.spec_json["mode"],
                                "status": status, "journal_seq": seq, "updated": time.time(),
                                "coordinator_host": self.hostname})
                f["spec"] = json.dumps(self.spec_json, default=to_jsonable)
                f["controller_state"] = json.dumps(controller_state, default=to_jsonable) if controller_state else ""
                self._trials_table(trials).write(f.create_group("trials"))
                for name in ("results", "segments", "decisions"):
                    getattr(self.tables, name).write(f.create_group(name))
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _trials_table(trials: list) -> ColumnTable:
        from ..space import flatten

        table = ColumnTable()
        for trial in trials:
            row = {name: getattr(trial, name) for name in _TRIAL_COLUMNS}
            row["state"] = trial.state.name
            row["config_json"] = json.dumps(trial.config, default=to_jsonable)
            for key, value in flatten(trial.config).items():
                row[f"config/{key}"] = value
            table.append(row)
        return table

    def close(self) -> None:
        self.journal.close()
        os.close(self._lock_fd)
