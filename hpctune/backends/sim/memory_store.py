"""A store that keeps nothing on disk: the simulator's, where only the outcome matters
(``hpctune plan`` simulates each allocation size several times)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...enums import RecordKind
from ...store.base import NamedCheckpoints, Store

__all__ = ["MemoryStore"]


class MemoryStore(NamedCheckpoints, Store):
    """Counts results and keeps the last snapshot's state in memory; writes nothing.

    Args:
        folder: the experiment folder the spec names (never created; checkpoint refs are relative to it).
        spec_json: the spec as it would be stored.
        keep_records: keep every record in :attr:`records` (tests compare runs event for event).
    """

    def __init__(self, folder: str | os.PathLike, spec_json: dict, keep_records: bool = False):
        self.folder = Path(folder)
        self.root = Path(os.path.abspath(self.folder))
        self.spec_json = spec_json
        self.records: list[dict] | None = [] if keep_records else None
        self.snapshot: tuple[dict, list, str] | None = None
        self._results = 0

    def record(self, kind: RecordKind, **fields: Any) -> None:
        if kind is RecordKind.RESULT:
            self._results += 1
        if self.records is not None:
            fields["k"] = kind.key
            self.records.append(fields)

    @property
    def result_count(self) -> int:
        return self._results

    def write_snapshot(self, controller_state: dict, trials: list, status: str) -> float:
        self.snapshot = (controller_state, trials, status)
        return 0.0
