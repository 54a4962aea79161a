"""TensorBoard event files, one folder per trial (docs/tensorboard.md): the coordinator hands the rows
(:class:`TensorBoardWriter`) to a writer process of their own (``python -m hpctune.reporting.tensorboard``)."""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import math
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import types
from collections import OrderedDict
from pathlib import Path

__all__ = ["MAX_OPEN", "TensorBoardWriter"]

MAX_OPEN = 64                  # event files it keeps open (HPCTUNE_TENSORBOARD_WRITERS)
MAX_PENDING_BYTES = 64 << 20   # rows it has not read yet, beyond which TensorBoard is given up
_LENGTH, _CRC = struct.Struct("<Q"), struct.Struct("<I")
_TIME_TAGS = {"time_total_s": "hpctune/time_total_s", "time_this_iter_s": "hpctune/time_this_iter_s"}
_KINDS = {bool: "bool_value", int: "number_value", float: "number_value", str: "string_value"}  # of hparams


class TensorBoardWriter:
    """The coordinator's side: hands the result rows to the writer process in frames, never waiting.

    ``store``: the :class:`~hpctune.store.ExperimentStore` (rows it holds already, a resumed experiment's, are
    written only above the step the trial's folder holds); ``warn`` prints one line (a failure of the writer
    process is one warning, then off); ``max_open``: event files it keeps open (least recently used closed first).
    """

    def __init__(self, store, warn, max_open: int = MAX_OPEN):
        from ..trial import RESULT_FIELDS
        from ..space import flatten

        self.store, self._warn, self._flatten = store, warn, flatten
        skip = [field for field in RESULT_FIELDS if field not in _TIME_TAGS]
        self._args = [str(store.folder / "tb"), str(max_open), json.dumps(skip)]
        self._rows = store.history.rows["results"]
        self._next, self._check = 0, len(self._rows)  # handed over up to _next; rows before _check: checked
        self._named, self._proc, self._fd, self._pending, self.off = set(), None, -1, bytearray(), False

    def collect(self, trials: dict) -> None:
        """Hand over the rows accepted since the last call, never waiting (``trials``: id -> Trial)."""
        if self.off:
            return
        if self._proc is not None and self._proc.poll() is not None:
            return self._fail(self._status() or "the writer process ended")
        rows = self.store.history.rows["results"]
        if rows is not self._rows:  # a part file took them: the rest of the old list, then the new one
            self._send(self._rows, trials)
            self._rows, self._next, self._check = rows, 0, 0
        self._send(rows, trials)

    def _send(self, rows: list, trials: dict) -> None:
        start, end = self._next, len(rows)
        if end <= start:
            return
        self._next, split = end, max(start, min(self._check, end))
        new = {row["trial_id"] for row in rows[start:end]} - self._named
        self._named |= new
        names = {i: (os.path.basename(self.store.trial_dir(i)), self._hparams(trials[i].config) if i in trials
                     else None) for i in new}
        frame = pickle.dumps((rows[start:split], rows[split:end], names), pickle.HIGHEST_PROTOCOL)  # plain values
        self._pending += _LENGTH.pack(len(frame)) + frame
        self._write()

    def _hparams(self, config: dict) -> dict:
        """The flattened config in plain numbers, text and booleans (the rest as JSON text): no numpy."""
        return {name: value if type(value) in _KINDS else value.item() if getattr(value, "size", None) == 1
                and type(value.item()) in _KINDS else json.dumps(value, default=str)
                for name, value in self._flatten(config).items() if value is not None}

    def _write(self) -> None:
        try:
            if self._proc is None:
                path = os.pathsep.join(filter(None, [str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH")]))
                self._proc = subprocess.Popen(  # in a session of its own: Ctrl-C and a killpg of the run spare it
                    [sys.executable, "-m", "hpctune.reporting.tensorboard", *self._args], env={**os.environ, "PYTHONPATH": path},
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
                self._fd = self._proc.stdin.fileno()
                os.set_blocking(self._fd, False)
                with contextlib.suppress(AttributeError, OSError):  # a larger pipe where Linux allows
                    fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, 1 << 20)
            while self._pending:
                del self._pending[:os.write(self._fd, self._pending)]
        except BlockingIOError:  # the pipe is full: the rest goes next time
            if len(self._pending) > MAX_PENDING_BYTES:
                self._fail("the writer process fell too far behind")
        except OSError as exc:  # it ended (its end of the pipe is closed), or could not start
            self._fail(self._status() or f"the writer process: {exc}")

    def _status(self) -> str:  # why the writer process ended ("" if it has not, or ended well)
        if self._proc is None or self._proc.poll() is None:
            return ""
        said = self._proc.stdout.read().decode("utf-8", "replace").strip()
        return "" if said == "ok" else said.removeprefix("error: ") or f"its exit code was {self._proc.returncode}"

    def _fail(self, reason: str | None) -> None:
        if reason:
            self.off = True
            self._warn(f"warning: TensorBoard: {reason}; no more event files are written in this run "
                       "(the experiment goes on)")
        self._pending.clear()
        if self._fd >= 0:  # the pipe closed: the writer process ends once it has written what it got
            self._fd = -1
            self._proc.stdin.close()

    def close(self, trials: dict, timeout: float = 60.0) -> None:
        """Hand over the last rows, wait until the writer process has written them (at most ``timeout`` s)."""
        self.collect(trials)
        proc, self.off = self._proc, True
        if proc is None or proc.returncode is not None:
            return
        deadline = time.monotonic() + timeout
        while self._pending and self._fd >= 0 and time.monotonic() < deadline:
            select.select([], [self._fd], [], max(deadline - time.monotonic(), 0.0))
            self._write()
        failed = self._fd < 0  # given up already (one warning said so)
        self._fail(None)
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
            reason = self._status()
        except subprocess.TimeoutExpired:
            reason = f"the writer process did not finish within {timeout:.0f} s (it goes on in the background)"
        self._fail(None if failed else reason)


class _EventFiles:
    """The writer process's side: one folder per trial, at most ``max_open`` event files open."""

    def __init__(self, root: Path, max_open: int, skip: set):
        if "tensorboardX" not in sys.modules:  # its protobuf modules and checksum alone: its __init__ imports
            package = types.ModuleType("tensorboardX")  # numpy, and PyTorch if it can
            package.__path__ = list(importlib.util.find_spec("tensorboardX").submodule_search_locations)
            sys.modules["tensorboardX"] = package
        from tensorboardX.crc32c import crc32c  # native when the crc32c package is installed
        from tensorboardX.proto import event_pb2, plugin_hparams_pb2, summary_pb2

        self.root, self.max_open, self.skip, self.crc32c = root, max_open, skip, crc32c
        self.Event, self.Summary, self.hparams = event_pb2.Event, summary_pb2.Summary, plugin_hparams_pb2
        self.heads: dict[int, bytes] = {}  # record length -> its header and the header's checksum
        self.open: OrderedDict[int, object] = OrderedDict()  # least recently used first
        self.trials: dict[int, tuple] = {}  # trial id -> (folder name, config)

    def write(self, check: list, rows: list, trials: dict) -> None:
        """An event per row: its numbers at step ``training_iteration`` (``check``: above the folder's)."""
        self.trials.update(trials)
        highest = {trial: self._highest_step(trial) for trial in {row["trial_id"] for row in check}}
        Value, touched = self.Summary.Value, set()
        for row in [row for row in check if row["training_iteration"] > highest[row["trial_id"]]] + rows:
            values = [Value(tag=_TIME_TAGS.get(key, key), simple_value=value if type(value) is float or
                            abs(value) < 1e308 else math.copysign(math.inf, value))
                      for key, value in row.items() if type(value) in (float, int) and key not in self.skip and key]
            if values:
                stamp, trial = row.get("timestamp"), row["trial_id"]
                self._record(self._file(trial), wall_time=stamp if type(stamp) is float else time.time(),
                             step=row["training_iteration"], summary=self.Summary(value=values))
                touched.add(trial)
        for trial in touched & self.open.keys():
            self.open[trial].flush()  # TensorBoard sees them now (no fsync: the journal is what must last)

    def _record(self, file, **event) -> None:
        data = self.Event(**event).SerializeToString()
        if (head := self.heads.get(len(data))) is None:
            head = self.heads[len(data)] = _LENGTH.pack(len(data)) + self._crc(_LENGTH.pack(len(data)))
        file.write(b"".join((head, data, self._crc(data))))

    def _crc(self, data: bytes) -> bytes:
        crc = self.crc32c(data)  # masked, as TFRecord files have it
        return _CRC.pack((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    def _file(self, trial: int):
        if (file := self.open.get(trial)) is not None:
            self.open.move_to_end(trial)
            return file
        if len(self.open) >= self.max_open:
            self.open.popitem(last=False)[1].close()
        name, config = self.trials.get(trial, (f"{trial:06d}", None))
        folder, now = self.root / name, time.time()
        new = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        file = self.open[trial] = open(folder / f"events.out.tfevents.{int(now)}.{socket.gethostname()}."
                                                f"{time.time_ns()}.{os.getpid()}", "wb")  # names sort by age
        self._record(file, wall_time=now, file_version="brain.Event:2")
        if new and config is not None:  # the trial's first file: its flattened config as hparams
            start = self.hparams.SessionStartInfo()
            for key, value in config.items():
                setattr(start.hparams[key], _KINDS[type(value)], value)
            entry = self.Summary.Value(tag="_hparams_/session_start_info")
            entry.metadata.plugin_data.plugin_name = "hparams"
            entry.metadata.plugin_data.content = self.hparams.HParamsPluginData(
                session_start_info=start, version=0).SerializeToString()
            self._record(file, wall_time=now, step=0, summary=self.Summary(value=[entry]))
        return file

    def _highest_step(self, trial: int) -> int:
        """The highest step of the trial's scalar events on disk (0: none): what an earlier run wrote."""
        highest = 0
        for path in (self.root / self.trials.get(trial, (f"{trial:06d}",))[0]).glob("*tfevents*"):
            data, at = path.read_bytes(), 0
            with contextlib.suppress(Exception):  # a record cut short by a crash ends the file
                while at + 12 <= len(data) and (end := at + 12 + _LENGTH.unpack_from(data, at)[0]) + 4 <= len(data):
                    event, at = self.Event.FromString(data[at + 12:end]), end + 4
                    highest = max(highest, event.step) if event.summary.value else highest
        return highest


def _main(argv: list[str]) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)  # it ends when the coordinator closes the pipe
    os.nice(19)  # the coordinator, the workers and the trials come first
    root, message = Path(argv[0]), ""
    try:
        files = _EventFiles(root, int(argv[1]), set(json.loads(argv[2])))
        root.mkdir(parents=True, exist_ok=True)
        with open(root / ".lock", "a") as lock:  # the writer of an earlier run of the experiment finishes first
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:  # until the coordinator closes the pipe (a frame its death cut short is dropped)
                while len(head := sys.stdin.buffer.read(8)) == 8 and len(
                        frame := sys.stdin.buffer.read(size := _LENGTH.unpack(head)[0])) == size:
                    files.write(*pickle.loads(frame))
            finally:
                for file in files.open.values():
                    file.close()
    except OSError as exc:
        message = f"cannot write {exc.filename or root}: {os.strerror(exc.errno).lower() if exc.errno else exc}"
    except Exception as exc:  # tensorboardX missing or broken, or a bug
        message = f"{type(exc).__name__}: {exc}"
    sys.stdout.write(f"error: {message}\n" if message else "ok\n")
    return 1 if message else 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
