"""A trial's checkpoints as the controller keeps them: the newest few of the model it trains, an
exploit that stays tentative until a result follows it, and the checkpoints that no trial can go
on from any more (obsolete: the backend has the store retire them).

Why an exploit is tentative: PBT can exploit a trial after its last iteration (the trial pauses at
the interval, then goes on from the donor's checkpoint with an explored config), and the trainable
then has nothing left to train and returns (so too for a trial that copied a finished model). Such a
trial's model is its own, trained with its own config. So until the trial reports a result after the
exploit, its own config, iteration and checkpoints are kept aside (none of them obsolete); its first
result makes the exploit final (its own checkpoints become obsolete), and a run from the copy that
ends first, or a trial that finishes first, has the exploit undone: an ``undo_exploit`` record, the
copy obsolete, and config, iteration and checkpoints its own again; its own model then goes on from
its own checkpoint (:meth:`~hpctune.controller.Controller.on_segment_end`), and ends at once if it
was done too.
``resume`` derives both again from the results and ends it replays, as it derives the exploit;
going back to an intact checkpoint after a resume is :mod:`hpctune.controller.resume`'s.
"""
from __future__ import annotations

import copy

from ..enums import RecordKind
from ..spec import ExperimentSpec
from ..store.base import Store
from ..trial import Trial
from .events import EventLog
from .state import ControllerState

__all__ = ["TrialCheckpoints"]


class TrialCheckpoints:
    """The controller's bookkeeping of each trial's checkpoints (``state.tentative``,
    ``state.obsolete_checkpoints``).

    Args:
        state: the controller's state.
        log: its clock and journal.
        store: checks each checkpoint reference (it must stay in the trial's folder).
        spec: ``checkpoint_keep``: how many of a trial's newest checkpoints are kept.
    """

    def __init__(self, state: ControllerState, log: EventLog, store: Store, spec: ExperimentSpec):
        self.state = state
        self.log = log
        self.store = store
        self.spec = spec

    def set_checkpoint(self, trial: Trial, path: str, iteration: int, time_total_s: float) -> None:
        """``path`` (taken at ``iteration``) is ``trial``'s newest checkpoint; the oldest beyond
        ``checkpoint_keep`` become obsolete."""
        if path == trial.checkpoint:
            return
        self.store.check_checkpoint_ref(path, trial.trial_id)
        trial.checkpoint = path
        trial.checkpoint_iteration = iteration
        trial.checkpoint_time_s = time_total_s
        trial.checkpoint_history.append([path, iteration, time_total_s])
        while len(trial.checkpoint_history) > self.spec.checkpoint_keep:
            old = trial.checkpoint_history.pop(0)
            # a name written again (a trial that went back to an older iteration) is the newer file now
            self.make_obsolete(trial.trial_id, [old], keep=_refs({"history": trial.checkpoint_history}))

    # -- exploits ---------------------------------------------------------------------------
    def begin_exploit(self, trial: Trial, donor_id: int, copy_ref: str, iteration: int, time_s: float,
                      config: dict | None) -> None:
        """``trial`` goes on from ``copy_ref``, its copy of ``donor_id``'s checkpoint of ``iteration``,
        tentatively: its own state is kept aside until a result follows (see the module docstring)."""
        self.store.check_checkpoint_ref(copy_ref, trial.trial_id)
        tentative = self.state.tentative
        own = tentative.get(trial.trial_id)
        if own is None:
            own = tentative[trial.trial_id] = {
                "config": copy.deepcopy(trial.config), "iteration": trial.iteration,
                "checkpoint": trial.checkpoint, "checkpoint_iteration": trial.checkpoint_iteration,
                "checkpoint_time_s": trial.checkpoint_time_s, "history": trial.checkpoint_history}
        else:  # exploited again before a result: the earlier copy trained nothing either
            self.make_obsolete(trial.trial_id, trial.checkpoint_history, keep=_refs(own) | {copy_ref})
        own["donor"], own["copied_at"] = donor_id, iteration
        trial.checkpoint, trial.checkpoint_iteration, trial.checkpoint_time_s = copy_ref, iteration, time_s
        trial.checkpoint_history = [[copy_ref, iteration, time_s]]
        trial.iteration = iteration  # its next results continue the donor's count
        if config is not None:
            trial.config = config

    def is_tentative(self, trial_id: int) -> bool:
        """``trial_id`` goes on from a copy that no result has followed yet."""
        return trial_id in self.state.tentative

    def commit_exploit(self, trial: Trial) -> None:
        """A result after the exploit: the trial's model is the one it copied; its own checkpoints are
        obsolete, but for those of iterations after the copy's. The trial writes those names again as
        it trains on (then they are its newest, deleted in turn), and one deleted later (a deletion
        waits for the fsync) could be the new file."""
        own = self.state.tentative.pop(trial.trial_id, None)
        if own is None:
            return
        behind = [entry for entry in own["history"] if entry[1] is not None and entry[1] <= own["copied_at"]]
        self.make_obsolete(trial.trial_id, behind, keep=_refs({"history": trial.checkpoint_history}))

    def undo_exploit(self, trial: Trial) -> None:
        """The exploit trained nothing (the trial finishes, or its copy is lost, before a result after
        it): journaled, the copy obsolete, and the trial's own config, iteration and checkpoints back."""
        own = self.state.tentative.pop(trial.trial_id, None)
        if own is None:
            return
        self.log.record(RecordKind.UNDO_EXPLOIT, trial=trial.trial_id, donor=own["donor"], ckpt=trial.checkpoint,
                        it=own["iteration"], config=own["config"])
        self.make_obsolete(trial.trial_id, trial.checkpoint_history, keep=_refs(own))
        trial.config, trial.iteration = own["config"], own["iteration"]
        trial.checkpoint, trial.checkpoint_iteration = own["checkpoint"], own["checkpoint_iteration"]
        trial.checkpoint_time_s, trial.checkpoint_history = own["checkpoint_time_s"], own["history"]

    def make_obsolete(self, trial_id: int, history: list, keep: set) -> None:
        """The checkpoints of ``history`` (``[path, iteration, time]`` each) not in ``keep`` are obsolete."""
        for entry in history:
            if entry[0] not in keep:
                self.state.obsolete_checkpoints.append((trial_id, entry[0]))

    def kept_checkpoints(self, trial: Trial) -> set[str]:
        """Every checkpoint ``trial`` may still go on from: its history and, while an exploit is
        tentative, its own ones kept aside."""
        refs = _refs({"history": trial.checkpoint_history, "checkpoint": trial.checkpoint})
        own = self.state.tentative.get(trial.trial_id)
        return refs | _refs(own) if own is not None else refs


def _refs(state: dict) -> set[str]:
    """The checkpoint paths in a trial's state kept aside (or ``{"history", "checkpoint"}``)."""
    refs = {entry[0] for entry in state["history"]}
    if state.get("checkpoint"):
        refs.add(state["checkpoint"])
    return refs
