"""What every backend's coordinator does besides the controller's events.

Durable flushes, checkpoint clean-up, periodic HDF5 snapshots, console progress,
signal handling and the rows for TensorBoard, shared by every backend; the coordinator step
(:mod:`hpctune.controller.step`) calls them in its order.
"""
from __future__ import annotations

import signal
import time
import traceback
from typing import TYPE_CHECKING, Any

from ..enums import SegmentEnd, TrialState
from ..errors import SpecError, StorageFailed, describe_os_error
from .core import Controller

if TYPE_CHECKING:  # handed in by the entry (hpctune.api): the controller never imports reporting
    from ..reporting.live.console import Console
    from ..reporting.tensorboard import TensorBoardWriter
    from ..store import ExperimentStore

__all__ = ["Housekeeping"]

TENSORBOARD_INTERVAL_S = 1.0
"""Rows go to TensorBoard's writer process at most this often (and before every part file)."""


class Housekeeping:
    """Args:
        store: the experiment's store.
        console: progress output.
        handle_signals: turn SIGINT/SIGTERM into a clean stop, SIGUSR1 into "every running
            trial checkpoints at its next report", and SIGUSR2 into "the allocation ends soon"
            (main thread only).
        wrap_up_at: Unix time at which this allocation's end is near (Slurm; None: no end): as
            for SIGUSR2, every running trial is told to checkpoint now and pauses at its next
            result, nothing new starts, and the coordinator stops (:attr:`time_limit` then True).
        tensorboard: hands the accepted result rows to TensorBoard's writer (None: off); given
            the rows at every tick (at most once a second) and before every part file, and closed
            by :meth:`close`, by a snapshot that ends the run, or by :meth:`close_tensorboard`.
    """

    def __init__(self, store: ExperimentStore, console: Console, handle_signals: bool = True,
                 wrap_up_at: float | None = None, tensorboard: TensorBoardWriter | None = None):
        self.store = store
        self.console = console
        self.tensorboard = tensorboard
        self._tensorboard_due = 0.0
        self.wrap_up_at = wrap_up_at
        self.time_limit = False  # stopped because this allocation ends: the next one continues
        self._allocation_signal = False
        self.signal_received: int | None = None
        self._snapshot_errors = 0
        self.second_signal: int | None = None
        self.checkpoint_signal = False
        self.defer_second_signal = False  # True: a second signal only sets second_signal, for a loop to act on
        self._previous: dict[int, Any] = {}  # signal -> the handler it had (what signal.signal returned)
        if handle_signals:
            handlers = {signal.SIGINT: self._on_signal, signal.SIGTERM: self._on_signal,
                        signal.SIGUSR1: self._on_checkpoint_signal, signal.SIGUSR2: self._on_allocation_signal}
            for signum, handler in handlers.items():
                try:
                    self._previous[signum] = signal.signal(signum, handler)
                except ValueError:  # not the main thread
                    break

    def _on_checkpoint_signal(self, signum, frame) -> None:
        self.checkpoint_signal = True

    def _on_allocation_signal(self, signum, frame) -> None:
        self._allocation_signal = True

    def _on_signal(self, signum, frame) -> None:
        if self.signal_received is None:
            self.signal_received = signum
        elif self.defer_second_signal:
            self.second_signal = signum
        else:  # second signal: stop now; the journal has everything
            raise KeyboardInterrupt

    def check_signals(self, controller: Controller) -> None:
        if self.checkpoint_signal:
            self.checkpoint_signal = False
            asked = controller.checkpoint_now()
            self.console.message(f"received SIGUSR1: {len(asked)} running trial(s) checkpoint at their next report")
        if not self.time_limit and (self._allocation_signal or
                                    (self.wrap_up_at is not None and time.time() >= self.wrap_up_at)):
            self.time_limit = True
            why = "received SIGUSR2" if self._allocation_signal else "this allocation ends soon"
            self.console.message(f"{why}: {controller.num_running} running trial(s) checkpoint and pause at their "
                                 "next result; nothing new starts; the next allocation continues")
            controller.request_stop(why="time limit", checkpoint_first=True)
        if self.signal_received is not None and not controller.interrupting:
            self.console.message(f"received {signal.Signals(self.signal_received).name}: pausing "
                                 f"{controller.num_running} running trial(s) at their next result, then stopping")
            controller.request_stop()

    def make_durable(self) -> None:
        """Make the events journaled so far survive a crash (the coordinator step calls it, then
        retires the checkpoints they made obsolete: :meth:`retire_checkpoint`).

        Raises:
            StorageFailed: the journal cannot be written: nothing more can be accepted, so the
                experiment ends now, with no answer sent for what was not written.
        """
        try:
            self.store.flush()
        except OSError as exc:
            raise StorageFailed(self.store.folder, describe_os_error(exc)) from None

    def retire_checkpoint(self, trial_id: int, checkpoint: str) -> None:
        """Hand the store a checkpoint no trial can resume from any more (it deletes it once the records
        that made it obsolete are fsynced); one it refuses to touch is only warned of."""
        try:
            self.store.retire_checkpoint(checkpoint, trial_id)
        except SpecError as refused:
            self.console.message(f"warning: {refused}")

    def tick(self, controller: Controller) -> None:
        """Periodic work: a progress line, rows for TensorBoard, and a part file or a snapshot when one is due."""
        self.console.progress(controller)
        if self.tensorboard is not None and time.monotonic() >= self._tensorboard_due:
            self._tensorboard_due = time.monotonic() + TENSORBOARD_INTERVAL_S
            self.tensorboard.collect(controller.trials)
        if controller.storage_full is None:
            if self.store.snapshot_due():
                self.snapshot(controller, "running")
            elif self.store.part_due():
                self._write(controller, self.store.write_part)

    def snapshot(self, controller: Controller, status: str) -> None:
        """Write a snapshot; a failure never stops the experiment by itself (the journal has
        everything), but a full disk stops it cleanly (see :meth:`_write`). A status other than
        ``running`` ends the run: TensorBoard's writer is closed."""
        self._write(controller, lambda: self.store.write_snapshot(controller.state_dict(),
                                                                  list(controller.trials.values()), status))
        if status != "running":
            self.close_tensorboard(controller)

    def close_tensorboard(self, controller: Controller) -> None:
        """Hand TensorBoard's writer its last rows and wait until it has written them (once; on every way out)."""
        tensorboard, self.tensorboard = self.tensorboard, None
        if tensorboard is not None:
            tensorboard.close(controller.trials)

    def _write(self, controller: Controller, write) -> None:
        if self.tensorboard is not None:  # the part file takes the rows: TensorBoard's writer gets them first
            self.tensorboard.collect(controller.trials)
        try:
            write()
        except OSError as exc:
            reason = describe_os_error(exc)
            self.console.message(f"cannot write {self.store.folder}: {reason}; pausing the running trials "
                                 "at their next result, then stopping")
            controller.on_storage_full(reason)
        except Exception:  # a bug: keep running on the journal, which holds everything; retried later
            self._snapshot_errors += 1
            if self._snapshot_errors == 1:
                self.console.message("warning: the snapshot could not be written (the journal keeps every "
                                     "result; retrying):\n" + traceback.format_exc())

    def segment_ended(self, controller: Controller, trial_id: int, how, error: str | None) -> None:
        if SegmentEnd(how) == SegmentEnd.ERROR:
            trial = controller.trials[trial_id]
            self.console.trial_error(trial_id, error or "", retrying=trial.state != TrialState.ERROR)

    def close(self, controller: Controller, status: str) -> None:
        """Close the experiment once its final status is journaled and flushed
        (:meth:`~hpctune.controller.step.CoordinatorStep.finish`): the final snapshot, TensorBoard's
        last rows, the store closed, the signal handlers given back, the console's last line."""
        if controller.storage_full is None:
            self.snapshot(controller, status)
        self.close_tensorboard(controller)
        self.store.close()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self.console.final(controller, status)
