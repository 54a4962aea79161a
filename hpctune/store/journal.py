"""The append-only journal: every event the coordinator accepts, one JSON line each.

Why a journal next to the HDF5 file: HDF5 is not crash-safe (a writer killed
with the file open leaves it unopenable, see shared/notes). So the HDF5 file is
only ever replaced whole (atomic snapshot), and everything accepted since the
last snapshot lives here. A record reaches the operating system (``os.write``)
before the coordinator answers the worker that sent it, so a crash of any
process loses nothing accepted; ``fsync`` every ``fsync_interval`` seconds
bounds what a crash of the node itself can lose. :attr:`Journal.durable_seq` says up to which
record a crash of the node can lose nothing: a checkpoint is deleted only once the records that
made it obsolete are there (:meth:`hpctune.store.experiment.ExperimentStore.retire_checkpoint`).

Layout: ``journal/<first seq>.jsonl`` segments. A new segment starts at every
snapshot and at every (re)start; segments wholly covered by the snapshots that
are kept are deleted. A torn last line (crash mid-write) is ignored on reading
and cut off before a segment is appended to again.

Sequence numbers are contiguous, so a reader knows whether it saw every record
after a snapshot: :func:`read_journal_after` raises :class:`JournalGap` when a
segment it needed was deleted under it (the reader then starts over from the
newer snapshot).
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Journal", "JournalGap", "read_journal", "read_journal_after", "to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """``json.dumps`` default: numpy scalars and arrays become Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return repr(value)


_ENCODER = json.JSONEncoder(separators=(",", ":"), default=to_jsonable)  # one, not one per record


def _dumps(record: dict) -> str:
    return _ENCODER.encode(record)


def _segments(folder: Path) -> list[tuple[int, Path]]:
    found = []
    for path in folder.glob("*.jsonl"):
        try:
            found.append((int(path.stem), path))
        except ValueError:
            continue
    return sorted(found)


def _cut_torn_tail(fd: int) -> None:
    """Truncate a segment after its last complete line: a record torn by a crash was never
    acknowledged, and a record appended after it would be unreadable."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    keep = size
    while keep > 0:
        start = max(0, keep - 65536)
        block = os.pread(fd, keep - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            keep = start + newline + 1
            break
        keep = start
    os.ftruncate(fd, keep)


def read_journal(folder: str | os.PathLike, after_seq: int = 0) -> Iterator[dict]:
    """Records with ``seq > after_seq``, in order; torn or partial last lines skipped.

    A segment is named after its first record, so a segment followed by one that starts at or
    before ``after_seq + 1`` holds nothing wanted and is not read (the journal keeps what the
    previous snapshot covers: reading it all would make a reader's cost follow the history).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    segments = _segments(folder)
    for i, (_, path) in enumerate(segments):
        if i + 1 < len(segments) and segments[i + 1][0] <= after_seq + 1:
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # deleted by a snapshot while we listed
        for line in data.split(b"\n"):
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash (only ever the last of a segment)
            if record.get("seq", 0) > after_seq:
                yield record


class JournalGap(Exception):
    """Records a reader needed are no longer in the journal (a newer snapshot holds them)."""


def read_journal_after(folder: str | os.PathLike, after_seq: int) -> list[dict]:
    """Every record with ``seq > after_seq``, checked to be contiguous from ``after_seq + 1``.

    Raises:
        JournalGap: a record in between is missing.
    """
    records = []
    expected = after_seq + 1
    for record in read_journal(folder, after_seq):
        seq = record.get("seq", 0)
        if seq < expected:
            continue
        if seq > expected:
            raise JournalGap(f"journal record {expected} is missing (next found: {seq})")
        records.append(record)
        expected += 1
    return records


class Journal:
    """Appends records to the current segment; written by the coordinator alone.

    Args:
        folder: the journal folder (created).
        next_seq: sequence number of the next record.
        fsync_interval: seconds between ``fsync`` calls (0: fsync every flush).

    Attributes:
        durable_seq: the last record fsynced: up to it, a crash of the node loses nothing.
    """

    def __init__(self, folder: str | os.PathLike, next_seq: int, fsync_interval: float = 1.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.seq = next_seq - 1
        self.fsync_interval = fsync_interval
        self._buffer: list[str] = []
        self._broken: OSError | None = None
        self._fd: int | None = None
        self._last_fsync = time.monotonic()
        self._sync_newest_segment()  # a killed coordinator's last records may be in the page cache only
        self.durable_seq = self.seq
        self._open_segment()

    def _sync_newest_segment(self) -> None:
        segments = _segments(self.folder)
        if segments:
            fd = os.open(segments[-1][1], os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def _open_segment(self) -> None:
        """Continue in a new segment; the old one stays the current one if that fails."""
        path = self.folder / f"{self.seq + 1:012d}.jsonl"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        _cut_torn_tail(fd)
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self.durable_seq = self.seq  # the buffer was written before (rotate flushes first)
        self._fd = fd

    def append(self, record: dict) -> int:
        """Buffer one record (``seq`` is added); returns its sequence number."""
        self.seq += 1
        record["seq"] = self.seq
        self._buffer.append(_dumps(record))
        return self.seq

    def flush(self) -> None:
        """Hand every buffered record to the operating system (one write).

        Raises:
            OSError: the write failed (a full disk); the journal then takes no more records,
                since a record written after a torn one would be lost on reading.
        """
        if self._broken is not None:
            raise self._broken
        if self._buffer:
            data = ("\n".join(self._buffer) + "\n").encode()
            self._buffer.clear()
            view = memoryview(data)
            try:
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
            except OSError as exc:
                self._broken = exc
                raise
        now = time.monotonic()
        if now - self._last_fsync >= self.fsync_interval:
            os.fsync(self._fd)
            self._last_fsync = now
            self.durable_seq = self.seq

    def rotate(self, covered_seq: int) -> None:
        """Start a new segment and delete segments whose records are all ``<= covered_seq``."""
        self.flush()
        self._open_segment()
        segments = _segments(self.folder)
        for (first, path), (next_first, _) in zip(segments, segments[1:]):
            if next_first - 1 <= covered_seq:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is None:
            return
        try:
            if self._broken is None:
                self.flush()
                os.fsync(self._fd)
                self.durable_seq = self.seq
        finally:
            os.close(self._fd)
            self._fd = None

