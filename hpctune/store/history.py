"""The experiment's history tables, rebuilt from journal records by one function.

Four append-only tables grow as the experiment runs: ``results`` (one row per
accepted result), ``segments`` (one row per run of a trial on a worker rank,
written when the run ends), ``decisions`` (every PAUSE or STOP) and ``lineage``
(every config a trial trains with, and where from: its first, each change while it
runs, each copy of another trial's checkpoint, and an ``undo`` row where such a copy
trained nothing and was undone: readers leave out that exploit, see
:attr:`hpctune.Analysis.lineage`). Runs still going are kept apart
(``open_segments``, at most one per worker) until they end.

:meth:`History.apply` maps one journal record onto these tables. The
coordinator's store uses it to collect the rows of its next part file, and
readers use the same method to add the journal written after the last snapshot,
so both always agree.
"""
from __future__ import annotations

import json

from ..enums import RecordKind

__all__ = ["History", "TABLES"]

TABLES = ("results", "segments", "decisions", "lineage")


class History:
    """Rows accepted since the last part file, and the runs still open.

    Args:
        open_segments: runs in progress as of the snapshot this history continues
            (trial id -> ``{"rank", "trial_id", "start", "ranks"}``).
    """

    def __init__(self, open_segments: dict[int, dict] | None = None):
        self.open_segments: dict[int, dict] = dict(open_segments or {})
        self.rows: dict[str, list[dict]] = {name: [] for name in TABLES}
        self.length = 0  # rows collected (kept as a count: the coordinator asks after every message)

    def __len__(self) -> int:
        return self.length

    def apply(self, kind: RecordKind, record: dict) -> None:
        """Add what one journal record of kind ``kind`` changes in the history tables (most change nothing)."""
        apply = _APPLY.get(kind)  # one dict lookup: the coordinator applies every record it writes
        if apply is not None:
            apply(self, record)

    def _result(self, record: dict) -> None:
        self.rows["results"].append(record["row"])
        self.length += 1

    def _launch(self, record: dict) -> None:
        cut = self.open_segments.pop(record["trial"], None)
        if cut is not None:  # its run was cut by a crash: no end is known
            self.rows["segments"].append({**cut, "end": None, "how": None})
            self.length += 1
        ranks = record.get("ranks") or (record["rank"],)
        self.open_segments[record["trial"]] = {"rank": record["rank"], "trial_id": record["trial"],
                                               "start": record["t"], "ranks": ",".join(map(str, ranks))}

    def _end(self, record: dict) -> None:
        run = self.open_segments.pop(record["trial"], None)
        if run is not None:
            self.rows["segments"].append({**run, "end": record["t"], "how": record["how"]})
            self.length += 1

    def _decision(self, record: dict) -> None:
        self.rows["decisions"].append({"trial_id": record["trial"], "training_iteration": record["it"],
                                       "decision": record["d"], "t": record.get("t")})
        self.length += 1

    def _lineage(self, record: dict, event: str, iteration: int, donor: int = -1) -> None:
        config = record.get("config")
        self.rows["lineage"].append({"trial_id": record["trial"], "t": record.get("t"), "event": event,
                                     "training_iteration": iteration, "donor": donor,
                                     "config_json": "" if config is None else json.dumps(config, sort_keys=True)})
        self.length += 1

    def _add(self, record: dict) -> None:
        self._lineage(record, "add", 0)

    def _config(self, record: dict) -> None:
        self._lineage(record, "config", record.get("it", -1))

    def _exploit(self, record: dict) -> None:
        self._lineage(record, "exploit", record["it"], record["donor"])

    def _undo_exploit(self, record: dict) -> None:
        # a row of its own: the exploit's row may be in a part file already (parts are never rewritten)
        self._lineage(record, "undo", record["it"], record["donor"])

    def take_rows(self) -> dict[str, list[dict]]:
        """The rows collected so far (for a part file); the history starts collecting anew."""
        rows = self.rows
        self.rows = {name: [] for name in TABLES}
        self.length = 0
        return rows

    def open_rows(self) -> list[dict]:
        """Runs in progress, as segment rows without an end."""
        return [{**run, "end": None, "how": None} for run in self.open_segments.values()]


_APPLY = {RecordKind.RESULT: History._result, RecordKind.LAUNCH: History._launch, RecordKind.END: History._end,
          RecordKind.DECISION: History._decision,
          RecordKind.ADD: History._add, RecordKind.CONFIG: History._config, RecordKind.EXPLOIT: History._exploit,
          RecordKind.UNDO_EXPLOIT: History._undo_exploit}
"""The record kinds that change the history tables, and how."""
