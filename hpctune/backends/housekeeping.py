"""What every backend's coordinator does besides the controller's events.

Durable flushes, checkpoint clean-up, periodic HDF5 snapshots, console progress
and signal handling, shared by the MPI and in-process backends.
"""
from __future__ import annotations

import os
import signal

from ..console import Console
from ..controller import Controller
from ..enums import SegmentEnd, TrialState
from ..store import ExperimentStore

__all__ = ["Housekeeping"]


class Housekeeping:
    """Args:
        store: the experiment's store.
        console: progress output.
        handle_signals: turn SIGINT/SIGTERM into a clean stop (main thread only).
    """

    def __init__(self, store: ExperimentStore, console: Console, handle_signals: bool = True):
        self.store = store
        self.console = console
        self.signal_received: int | None = None
        self.second_signal: int | None = None
        self.defer_second_signal = False  # True: a second signal only sets second_signal, for a loop to act on
        self._previous: dict[int, object] = {}
        if handle_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                try:
                    self._previous[signum] = signal.signal(signum, self._on_signal)
                except ValueError:  # not the main thread
                    break

    def _on_signal(self, signum, frame) -> None:
        if self.signal_received is None:
            self.signal_received = signum
        elif self.defer_second_signal:
            self.second_signal = signum
        else:  # second signal: stop now; the journal has everything
            raise KeyboardInterrupt

    def check_signals(self, controller: Controller) -> None:
        if self.signal_received is not None and not controller.interrupting:
            self.console.message(f"received {signal.Signals(self.signal_received).name}: pausing "
                                 f"{controller.num_running} running trial(s) at their next result, then stopping")
            controller.request_stop()

    def flush(self, controller: Controller) -> None:
        """Make the events so far durable, then delete checkpoints nothing refers to any more."""
        self.store.flush()
        for path in controller.take_obsolete_checkpoints():
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def tick(self, controller: Controller) -> None:
        """Periodic work: a progress line, and a snapshot when one is due."""
        self.console.progress(controller)
        if self.store.snapshot_due():
            self.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), "running")

    def segment_ended(self, controller: Controller, trial_id: int, how, error: str | None) -> None:
        if SegmentEnd(how) == SegmentEnd.ERROR:
            trial = controller.trials[trial_id]
            self.console.trial_error(trial_id, error or "", retrying=trial.state != TrialState.ERROR)

    def finish(self, controller: Controller) -> str:
        """Close the experiment: final status and snapshot; returns the status."""
        status = controller.finalize()
        self.store.flush()
        self.store.write_snapshot(controller.state_dict(), list(controller.trials.values()), status)
        self.store.close()
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self.console.progress(controller, force=True)
        return status

