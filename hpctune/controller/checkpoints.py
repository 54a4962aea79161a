"""A trial's checkpoints as the controller keeps them: the newest few of the model it trains, an
exploit that stays tentative until a result follows it, and going back to the newest intact
checkpoint when a resumed trial's newest is missing or damaged.

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
``resume`` derives both again from the results and ends it replays, as it derives the exploit.

Mixed into :class:`hpctune.controller.core.Controller`, whose attributes it reads and sets.
"""
from __future__ import annotations

import copy

from ..enums import RecordKind, TrialState
from ..trial import Trial

__all__ = ["TrialCheckpoints"]


class TrialCheckpoints:
    """:class:`~hpctune.controller.core.Controller`'s bookkeeping of each trial's checkpoints."""

    def _set_checkpoint(self, trial: Trial, path: str, iteration: int, time_total_s: float) -> None:
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
            self._make_obsolete(trial.trial_id, [old], keep=_refs({"history": trial.checkpoint_history}))

    # -- exploits ---------------------------------------------------------------------------
    def _begin_exploit(self, trial: Trial, donor_id: int, copy_ref: str, iteration: int, time_s: float,
                       config: dict | None) -> None:
        """``trial`` goes on from ``copy_ref``, its copy of ``donor_id``'s checkpoint of ``iteration``,
        tentatively: its own state is kept aside until a result follows (see the module docstring)."""
        self.store.check_checkpoint_ref(copy_ref, trial.trial_id)
        own = self._tentative.get(trial.trial_id)
        if own is None:
            own = self._tentative[trial.trial_id] = {
                "config": copy.deepcopy(trial.config), "iteration": trial.iteration,
                "checkpoint": trial.checkpoint, "checkpoint_iteration": trial.checkpoint_iteration,
                "checkpoint_time_s": trial.checkpoint_time_s, "history": trial.checkpoint_history}
        else:  # exploited again before a result: the earlier copy trained nothing either
            self._make_obsolete(trial.trial_id, trial.checkpoint_history, keep=_refs(own) | {copy_ref})
        own["donor"], own["copied_at"] = donor_id, iteration
        trial.checkpoint, trial.checkpoint_iteration, trial.checkpoint_time_s = copy_ref, iteration, time_s
        trial.checkpoint_history = [[copy_ref, iteration, time_s]]
        trial.iteration = iteration  # its next results continue the donor's count
        if config is not None:
            trial.config = config

    def _commit_exploit(self, trial: Trial) -> None:
        """A result after the exploit: the trial's model is the one it copied; its own checkpoints are
        obsolete, but for those of iterations after the copy's. The trial writes those names again as
        it trains on (then they are its newest, deleted in turn), and one deleted later (a deletion
        waits for the fsync) could be the new file."""
        own = self._tentative.pop(trial.trial_id, None)
        if own is None:
            return
        behind = [entry for entry in own["history"] if entry[1] is not None and entry[1] <= own["copied_at"]]
        self._make_obsolete(trial.trial_id, behind, keep=_refs({"history": trial.checkpoint_history}))

    def _undo_exploit(self, trial: Trial) -> None:
        """The exploit trained nothing (the trial finishes, or its copy is lost, before a result after
        it): journaled, the copy obsolete, and the trial's own config, iteration and checkpoints back."""
        own = self._tentative.pop(trial.trial_id, None)
        if own is None:
            return
        self._record(RecordKind.UNDO_EXPLOIT, trial=trial.trial_id, donor=own["donor"], ckpt=trial.checkpoint,
                     it=own["iteration"], config=own["config"])
        self._make_obsolete(trial.trial_id, trial.checkpoint_history, keep=_refs(own))
        trial.config, trial.iteration = own["config"], own["iteration"]
        trial.checkpoint, trial.checkpoint_iteration = own["checkpoint"], own["checkpoint_iteration"]
        trial.checkpoint_time_s, trial.checkpoint_history = own["checkpoint_time_s"], own["history"]

    def _make_obsolete(self, trial_id: int, history: list, keep: set) -> None:
        for entry in history:
            if entry[0] not in keep:
                self._obsolete_checkpoints.append((trial_id, entry[0]))

    def _kept_checkpoints(self, trial: Trial) -> set[str]:
        """Every checkpoint ``trial`` may still go on from: its history and, while an exploit is
        tentative, its own ones kept aside."""
        refs = _refs({"history": trial.checkpoint_history, "checkpoint": trial.checkpoint})
        own = self._tentative.get(trial.trial_id)
        return refs | _refs(own) if own is not None else refs

    # -- after a resume ---------------------------------------------------------------------
    def check_checkpoints(self) -> None:
        """After :meth:`~hpctune.controller.resume.ResumableState.restore`: each trial that runs again
        starts from a checkpoint that is there and opens. A missing or damaged newest one gives way
        to the newest intact one of the same model (a console line naming both; the trial goes on
        from that one's iteration, and the iterations it repeats are not recorded twice), a
        tentative exploit's lost copy to the trial's own (the exploit undone); with none left, the
        trial ends ERROR with one line naming the file, as its results and lineage describe a
        model that is gone. A damaged file is left where it is."""
        for trial in self.trials.values():
            if not trial.state.is_finished:
                self._go_back_to_an_intact_checkpoint(trial)

    def _go_back_to_an_intact_checkpoint(self, trial: Trial) -> None:
        tid = trial.trial_id
        while trial.checkpoint is not None:
            problem = self.store.checkpoint_problem(trial.checkpoint, tid)
            if problem is None:
                return
            lost = trial.checkpoint
            older = [entry for entry in trial.checkpoint_history
                     if entry[0] != lost and entry[1] is not None and entry[1] <= trial.checkpoint_iteration]
            intact = next((entry for entry in reversed(older)
                           if self.store.checkpoint_problem(entry[0], tid) is None), None)
            if intact is not None:
                ref, iteration, time_s = intact
                # a damaged file stays where it is (the trial writes that name again when it gets there)
                trial.checkpoint_history = trial.checkpoint_history[:trial.checkpoint_history.index(intact) + 1]
                trial.checkpoint, trial.checkpoint_iteration, trial.checkpoint_time_s = ref, iteration, time_s
                self._notices.append(f"warning: trial {tid}: its checkpoint {lost} {problem}; it goes on from "
                                     f"{ref} (iteration {iteration})")
                return
            if tid in self._tentative:  # its own checkpoints, kept aside, are checked in the next round
                donor = self._tentative[tid]["donor"]
                self._undo_exploit(trial)
                then = (f"it goes on from its own {trial.checkpoint} (iteration {trial.checkpoint_iteration})"
                        if trial.checkpoint else "it starts again from scratch")
                self._notices.append(f"warning: trial {tid}: its copy {lost} of trial {donor}'s checkpoint "
                                     f"{problem}; the exploit is undone and {then}")
                continue
            line = f"trial {tid}: its checkpoint {lost} {problem} and no older checkpoint of it is intact"
            self._notices.append(f"warning: {line}: it ends as ERROR")
            self._end_in_error(trial, line, "checkpoint lost")
            return

    def _end_in_error(self, trial: Trial, error: str, why: str = "error") -> None:
        """``trial`` is over with ``error``; the scheduler, the searcher and the policy are told."""
        trial.error = error
        self._requeue.pop(trial.trial_id, None)
        self._set_state(trial, TrialState.ERROR, why)
        if self.policy is not None:
            self.policy.on_trial_end(trial.trial_id)
        self.scheduler.on_trial_error(trial)
        self._source.on_trial_complete(trial.trial_id, trial.last_result or None, error=True)


def _refs(state: dict) -> set[str]:
    """The checkpoint paths in a trial's state kept aside (or ``{"history", "checkpoint"}``)."""
    refs = {entry[0] for entry in state["history"]}
    if state.get("checkpoint"):
        refs.add(state["checkpoint"])
    return refs
