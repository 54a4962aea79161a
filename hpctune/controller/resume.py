"""The controller's resume half: its state in a snapshot, and the journal replayed after it.

A snapshot holds :meth:`ResumableState.state_dict` (the scheduler's, the searcher's and the
policy's state included) and the trials; :meth:`ResumableState.restore` loads both, feeds the
journal's records after the snapshot through the controller's own event handlers (journaling
nothing: ``_replaying``), then lets go of the old allocation's workers. Mixed into
:class:`hpctune.controller.core.Controller`, whose attributes it reads and sets.
"""
from __future__ import annotations

from ..enums import RecordKind, SegmentEnd, TrialState
from ..trial import Trial

__all__ = ["ResumableState"]


class ResumableState:
    """:class:`~hpctune.controller.core.Controller`'s snapshot state and journal replay."""

    def state_dict(self) -> dict:
        """Everything needed to continue exactly, besides the trials themselves (:attr:`trials`)."""
        return {
            "next_trial_id": self._next_trial_id, "searcher_finished": self._searcher_finished,
            "metric_seen": self._metric_seen, "free_ranks": self._free_ranks,
            "running": list(self._running),
            "requeue": list(self._requeue), "best": self.best,
            "interrupting": self._interrupting, "interrupted": sorted(self._interrupted),
            "pause_requested": sorted(self._pause_requested),
            "checkpoint_grace": [[tid, n] for tid, n in sorted(self._checkpoint_grace.items())],
            "exploiting": [[tid, donor] for tid, donor in sorted(self._exploiting.items())],
            "tentative": [[tid, own] for tid, own in sorted(self._tentative.items())],
            "exploit_waits": sorted(self._exploit_waits),
            **self._times.state_dict(),
            "started_at": self._started_at,
            "scheduler": self.scheduler.state_dict(), **self._source.state_dict(),
            **({"policy": self.policy.state_dict()} if self.policy is not None else {}),
        }

    def restore(self, state: dict | None, trials: list[Trial], records: list[dict]) -> None:
        """Load a snapshot's state and trials, replay the journal records after it, then let go of the old workers.

        Trials that were running continue from their last checkpoint on whatever
        worker frees first, before anything the scheduler would choose. Checkpoints the replayed
        records made obsolete are handed out again (:meth:`take_obsolete_checkpoints`): a crash may
        have come before they were deleted. The files themselves are not looked at here: ``resume``
        then calls :meth:`~hpctune.controller.checkpoints.TrialCheckpoints.check_checkpoints`.

        Raises:
            SpecError: a stored checkpoint path points outside the experiment folder.
        """
        for trial in trials:
            self.trials[trial.trial_id] = trial
            self.counts[trial.state] += 1
        if state is not None:
            self._next_trial_id = state["next_trial_id"]
            self._searcher_finished = state["searcher_finished"]
            self._metric_seen = state["metric_seen"]
            self._free_ranks = state["free_ranks"]
            self._running = dict.fromkeys(state["running"])
            self._requeue = dict.fromkeys(state["requeue"])
            self.best = tuple(state["best"]) if state["best"] else None
            self._interrupting = state.get("interrupting", False)
            self._started_at = state.get("started_at", self._started_at)
            self._interrupted = set(state.get("interrupted", ()))
            self._pause_requested = set(state.get("pause_requested", ()))
            self._checkpoint_grace = {int(tid): int(n) for tid, n in state.get("checkpoint_grace", ())}
            self._exploiting = {int(tid): int(donor) for tid, donor in state.get("exploiting", ())}
            self._tentative = {int(tid): own for tid, own in state.get("tentative", ())}
            self._exploit_waits = {int(tid) for tid in state.get("exploit_waits", ())}
            self._times.load_state_dict(state)
            self.scheduler.load_state_dict(state["scheduler"])
            self._source.load_state_dict(state)
            if self.policy is not None and "policy" in state:
                self.policy.load_state_dict(state["policy"])
        self._replaying = True
        try:
            for record in records:
                kind, t = RecordKind.from_key(record["k"]), record.get("t")
                if kind is RecordKind.READY:
                    self.on_workers_joined(record["n"], t=t)
                elif kind is RecordKind.RESULT:
                    self.on_result(record["trial"], record["row"], record.get("ckpt"), t=t)
                elif kind is RecordKind.END:
                    self.on_segment_end(record["trial"], SegmentEnd[record["how"]], record.get("error"),
                                        record.get("ckpt"), t=t)
                elif kind is RecordKind.INTERRUPT:
                    self.request_stop(t=t, why=record.get("why"), checkpoint_first=bool(record.get("ckpt_first")))
                elif kind is RecordKind.PAUSE:
                    self.pause_now(record["trial"], t=t)
                elif kind is RecordKind.CONFIG:
                    self.set_config(record["trial"], record["config"], t=t)
                elif kind is RecordKind.DEADLINE:
                    self.set_deadline(record["end"], record.get("window"), t=t)
                elif kind is RecordKind.ADD:  # the trial joins where it did, with the config it got
                    self._replay_add(record["trial"], record["config"], t=t)
                elif kind is RecordKind.SEARCH_END:
                    self._replay_search_end(t=t)
        finally:
            self._replaying = False
        total = self.searcher.total_trials()
        if self._searcher_finished and total is not None and self._next_trial_id < total:
            # grown (resume --num-samples, or num_samples raised in the spec): the search goes on where it
            # was, whether its end was in the snapshot or in the journal after it
            self._searcher_finished = False
        self._launches.clear()
        lost = list(self._running)
        for tid in lost:
            trial = self.trials[tid]
            if not trial.state.is_finished:  # it restarts from its last checkpoint, first in line
                self._set_state(trial, TrialState.PAUSED if trial.checkpoint else TrialState.PENDING,
                                "worker lost")
        self._requeue = dict.fromkeys([*lost, *self._requeue])
        for trial in self.trials.values():  # never open or delete what an edited state points elsewhere
            for path in self._kept_checkpoints(trial):
                self.store.checkpoint_path(path, trial.trial_id)
        self._running.clear()
        self.placements.clear()
        self._free_ranks = 0
        self._interrupting = False
        self._interrupted.clear()
        self._pause_requested.clear()
        self._checkpoint_grace.clear()
        self._exploiting.clear()  # a lost trial goes on from its newest checkpoint: the donor's copy
        self._exploit_waits.clear()
        self._controls.clear()
        self._deadline = None  # the old allocation's; the new one sets its own
        self._times.clear_segments()
        self.stopped_for_deadline = False
        self.storage_full = None
