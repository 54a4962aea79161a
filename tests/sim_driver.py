"""A deterministic synthetic driver for :class:`hpctune.controller.core.Controller`: virtual workers, no MPI,
and :func:`make_controller`, a Controller on a real experiment folder.

Where a test needs only virtual workers and a clock, it runs the real simulator instead
(``simulated.py``: :mod:`hpctune.backends.sim`). This driver stays for what the real one does not do:

- a failure injected at one trial's iteration (``fail``), where a surrogate sees no trial id;
- a run stopped after a number of events (``run(max_events=)``, ``step()``) and resumed mid-run on a
  restored controller (``resume_with``), each running trial on its worker;
- a check after every event (``on_event``) that reads the workers' state;
- a model-based searcher's suggestions computed in the background (``suggest_in_background``);
- the real :class:`~hpctune.store.ExperimentStore`: a journal on disk to replay, and a checkpoint
  file (empty) for every result, so that PBT's exploit copies files and the checkpoint checks of a
  resume find them (the simulator's stores keep names only).

The driver is the backend: it owns the virtual ranks and places each launch on
an idle one (the longest idle first, as the MPI backend does). Each virtual
worker runs the segment placed on it, one
result per ``duration(config)`` virtual seconds, feeding ``on_result`` rows
whose ``training_iteration`` continues from the trial's checkpoint (a fake
checkpoint path comes with every result, so pause and resume work), until the
decision is PAUSE or STOP or the trial reaches ``config["epochs"]``; then it
ends the segment. A segment that starts at ``config["epochs"]`` or later (PBT copied a
finished model) has nothing to train: it ends COMPLETED without a result, as a trainable's
``for step in range(start + 1, epochs + 1)`` does. Events are ordered by (virtual time,
sequence number), so two runs of the same experiment produce the same events.
"""
from __future__ import annotations

import heapq
import json
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from hpctune.api import open_experiment
from hpctune.controller.core import Controller
from hpctune.enums import Decision, SegmentEnd, TrialState
from hpctune.schedulers import SchedulerDecision
from hpctune.store.trials import trials_from_columns, trials_to_columns

from simulated import default_duration, default_metric, make_spec

__all__ = ["SimDriver", "make_controller", "restored_controller", "default_metric", "json_round_trip", "report_at"]


def json_round_trip(data):
    return json.loads(json.dumps(data))


def make_controller(folder: Path, scheduler, searcher="random", space: dict | None = None, num_samples: int = 12,
                    metric: str = "loss", mode: str = "min", max_failures: int = 0, seed: int = 0,
                    **fields) -> Controller:
    """A Controller on a fresh experiment folder (``folder/sim``) of :func:`simulated.make_spec`'s spec."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    spec = make_spec(folder, scheduler, searcher, space, num_samples, metric, mode, max_failures, seed, **fields)
    store, _ = open_experiment(spec, resume=False)
    return Controller(spec, store, clock=lambda: 0.0)


def report_at(controller: Controller, trial_id: int, i: int, t: float, checkpoint: bool = True,
              seconds: float = 10.0) -> Decision:
    """Trial ``trial_id``'s iteration ``i`` (each of ``seconds``) reported at virtual time ``t`` (with a
    checkpoint unless told not); the decision, as a plain :class:`Decision`."""
    row = {"training_iteration": i, "loss": 1.0 / i, "time_this_iter_s": seconds, "time_total_s": seconds * i}
    path = f"trials/{trial_id:06d}/checkpoint_{i:06d}.h5" if checkpoint else None
    decision = controller.on_result(trial_id, row, path, t=t)
    return Decision(getattr(decision, "action", decision))


def restored_controller(folder: Path, state: dict, trials: list, **kwargs) -> Controller:
    """A fresh Controller (fresh scheduler and searcher) restored from a controller ``state_dict`` and
    its trials, both through the form a snapshot stores them in."""
    controller = make_controller(folder, **kwargs)
    controller.restore(json_round_trip(state), trials_from_columns(trials_to_columns(trials)), [])
    return controller


class SimDriver:
    """Drives a controller with ``workers`` virtual workers until the experiment is finished.

    Args:
        controller: the controller to drive.
        workers: number of virtual workers (ranks 1..workers).
        metric: ``metric(config, iteration) -> value`` of the experiment's metric.
        duration: virtual seconds per iteration of a config.
        fail: ``(trial_id, iteration)`` pairs where that trial's segment fails instead of reporting (once each).
        end_delay: virtual seconds between a PAUSE/STOP decision and the segment's end (0: at once),
            so that other workers' events can come in between, as on real ranks.
        on_event: called after every event with the driver (for invariant checks).
    """

    def __init__(self, controller: Controller, workers: int = 3, metric: Callable = default_metric,
                 duration: Callable = default_duration, fail=(), end_delay: float = 0.0,
                 on_event: Callable | None = None):
        self.controller = controller
        self.workers = workers
        self.metric = metric
        self.duration = duration
        self.fail = set(fail)
        self.end_delay = end_delay
        self.on_event = on_event
        self.now = 0.0
        self.events = 0
        self.log: list[tuple[int, int, str]] = []       # (trial_id, iteration, decision) per result
        self.last_config: dict[int, dict] = {}          # trial id -> the config its last result trained with
        self.launches: list[tuple[int, int, int]] = []  # (trial_id, rank, start_iteration)
        self._queue: list[tuple] = []
        self._seq = 0
        self._busy: dict[int, list] = {}                # rank -> [trial_id, next iteration, config]
        self._idle: deque[int] = deque()
        self._keep_time: dict[int, int] = {}            # trial id -> the rank it continues on after a resume

    # -- running ------------------------------------------------------------------
    def start(self) -> "SimDriver":
        for rank in range(1, self.workers + 1):
            self._join(rank)
        return self

    def run(self, max_events: int | None = None) -> bool:
        """Process events until none is left (True) or ``max_events`` were processed in all (False).

        A controller that computes suggestions in the background (``suggest_in_background``) has
        each taken as soon as it is ready, as the MPI backend does between messages."""
        while True:
            if self.controller.suggestion_ready:
                self.controller.on_suggestion(t=self.now)
                self._collect()
            elif self._queue:
                if max_events is not None and self.events >= max_events:
                    return False
                self.step()
            elif self.controller.suggesting:
                time.sleep(0.001)
            else:
                return True

    def step(self) -> None:
        time, _, kind, rank, payload = heapq.heappop(self._queue)
        self.now = time
        self.events += 1
        if kind == "result":
            self._result(rank)
        else:
            self._end(rank, payload)
        if self.on_event is not None:
            self.on_event(self)

    def resume_with(self, controller: Controller) -> None:
        """Continue with ``controller``, restored from the current one's state (the old one is dropped).

        The restored controller lets go of the workers it had; here each of them
        at once ends its segment as interrupted and joins again, busy ones first
        in rank order, so each running trial continues on its worker (the driver
        places it there) from its checkpoint (the last result) at the same
        virtual time as before.
        """
        assert all(kind == "result" for _, _, kind, _, _ in self._queue), "resume only between segment ends"
        idle = list(self._idle)
        self.controller = controller
        busy = sorted(self._busy)
        for rank in busy:   # older controllers left lost trials RUNNING; newer ones requeue them themselves
            if controller.trials[self._busy[rank][0]].state == TrialState.RUNNING:
                controller.on_segment_end(self._busy[rank][0], SegmentEnd.INTERRUPTED, t=self.now)
        self._keep_time = {self._busy[rank][0]: rank for rank in busy}
        self._idle = deque(busy + idle)
        for _ in busy + idle:
            self.controller.on_workers_joined(1, t=self.now)
            self._collect()
        assert not self._keep_time, "a running trial did not come back to its worker"

    # -- internals ------------------------------------------------------------------
    def _push(self, time: float, kind: str, rank: int, payload=None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, rank, payload))

    def _join(self, rank: int) -> None:
        self._idle.append(rank)
        self.controller.on_workers_joined(1, t=self.now)
        self._collect()

    def _collect(self) -> None:
        for launch in self.controller.take_launches():
            task = launch.task
            assert launch.resources.ranks_per_trial == 1
            rank = self._keep_time.pop(task.trial_id, None)
            if rank is None:
                rank = self._idle.popleft()
            else:
                self._idle.remove(rank)
            self.controller.placed(task.trial_id, [rank], t=self.now)
            self.launches.append((task.trial_id, rank, task.start_iteration))
            if rank in self._busy:  # resumed on its worker
                assert self._busy[rank][0] == task.trial_id
                assert self._busy[rank][1] == task.start_iteration + 1
                continue    # its next result is already queued
            self._busy[rank] = [task.trial_id, task.start_iteration + 1, task.config]
            self._push(self.now + self.duration(task.config), "result", rank)

    def _result(self, rank: int) -> None:
        trial_id, iteration, config = self._busy[rank]
        if iteration > config["epochs"]:  # nothing left to train: the trainable returns
            del self._busy[rank]
            self._idle.append(rank)
            self.controller.on_segment_end(trial_id, SegmentEnd.COMPLETED, t=self.now)
            self._collect()
            return
        if (trial_id, iteration) in self.fail:
            self.fail.discard((trial_id, iteration))
            del self._busy[rank]
            self._idle.append(rank)
            self.controller.on_segment_end(trial_id, SegmentEnd.ERROR, error="synthetic failure", t=self.now)
            self._collect()
            return
        value = self.metric(config, iteration)
        row = {self.controller.spec.metric: value, "trial_id": trial_id, "training_iteration": iteration,
               "time_total_s": self.now}
        checkpoint = f"trials/{trial_id:06d}/checkpoint_{iteration:06d}.h5"
        path = self.controller.store.root / checkpoint  # a file, empty: PBT's exploit copies it
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        decision = self.controller.on_result(trial_id, row, checkpoint, t=self.now)
        self.last_config[trial_id] = config
        self._collect()  # a result can start trials on idle workers (a PBT round completed)
        action = decision.action if isinstance(decision, SchedulerDecision) else decision
        self.log.append((trial_id, iteration, Decision(action).name))
        if action == Decision.PAUSE:
            how = SegmentEnd.PAUSED
        elif action == Decision.STOP:
            how = SegmentEnd.STOPPED
        elif iteration >= config["epochs"]:
            how = SegmentEnd.COMPLETED
        else:
            self._busy[rank][1] += 1
            self._push(self.now + self.duration(config), "result", rank)
            return
        if self.end_delay > 0:
            self._push(self.now + self.end_delay, "end", rank, how.name)
        else:
            self._end(rank, how.name)

    def _end(self, rank: int, how: str) -> None:
        trial_id = self._busy.pop(rank)[0]
        self._idle.append(rank)
        self.controller.on_segment_end(trial_id, SegmentEnd[how], t=self.now)
        self._collect()

    # -- checks ---------------------------------------------------------------------
    def iterations(self) -> dict[int, list[int]]:
        """Per trial, the iterations it reported, in order."""
        seen: dict[int, list[int]] = {}
        for trial_id, iteration, _ in self.log:
            seen.setdefault(trial_id, []).append(iteration)
        return seen

    def final_results(self) -> dict[int, tuple]:
        """Per trial: state, last iteration, why it ended, last metric value (None for NaN)."""
        metric = self.controller.spec.metric
        out = {}
        for trial_id, trial in self.controller.trials.items():
            value = trial.last_result.get(metric)
            value = None if value is None or (isinstance(value, float) and math.isnan(value)) else value
            out[trial_id] = (trial.state.name, trial.iteration, trial.end_reason, value)
        return out
