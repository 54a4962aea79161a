"""The ``sim`` backend's virtual cluster: the unchanged controller, schedulers and searchers on virtual workers.

Time is a virtual clock that jumps from event to event; a trial is a surrogate
(:mod:`hpctune.backends.sim.surrogates`) that says what each iteration reports and how many virtual
seconds it takes. Events are ordered by (virtual time, sequence number), so the same spec,
seed and surrogate give the same events on any machine. The controller gets the events a
real backend would give it (workers joined, results, segment ends, placements), with the
virtual time, and decides exactly as it would on MPI ranks: what a simulation shows of a
scheduler is what the scheduler does.

A surrogate that raises, or reports a metric that is no number, fails its trial (ERROR, with the
error text; ``max_failures`` retries it), as a trainable does on real ranks.

The coordinator's own time per message (``coordinator_s_per_message``, default 0: each answer is
instant) is one FIFO server (:mod:`hpctune.backends.sim.coordinator_queue`): every message a worker
sends rank 0 (a result, a segment end, each rank's join) occupies it that many virtual seconds; a
message arriving at ``t`` is handled from ``max(t, when the coordinator is free)``, and the
controller hears it, and its answer takes effect, at that start plus the service time: the trial's
next iteration, the STOP or PAUSE (its end delay and its segment-end message follow), a rank's
first or next launch. Time a rank spends waiting for an answer is not busy time. With 0 the events
are exactly those of a simulation without the model (ranks that join together come as one event,
and a segment with no end delay ends with its last result). What the model leaves out: failures of
nodes and lost workers, heartbeats and the coordinator's own periodic work (snapshots, the journal),
contention between trials on a node, and start-up costs that differ by node; see docs/simulator.md.
"""
from __future__ import annotations

import heapq
import numbers
import traceback
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...enums import Control, Decision, SegmentEnd
from ...errors import SpecError
from .coordinator_queue import CoordinatorQueue

if TYPE_CHECKING:
    from ...controller.controls import ControlMessage
    from ...controller.core import Controller, Launch
    from ...spec import ExperimentSpec
    from .surrogates import Surrogate
    from ...controller.housekeeping import Housekeeping

__all__ = ["VirtualClock", "VirtualCluster", "SimOutcome", "iteration_limit", "check_workers"]

_RESULT, _END, _JOIN = 0, 1, 2
_HOW = {Decision.PAUSE: SegmentEnd.PAUSED, Decision.STOP: SegmentEnd.STOPPED}


class VirtualClock:
    """Seconds of virtual time; the simulator moves it to each event's time."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class SimOutcome:
    """What a simulation measured, in virtual seconds.

    Attributes:
        makespan_s: from the workers' start to the last event.
        busy_rank_s: rank-seconds spent in segments (start-ups and end delays included), less the
            time their ranks waited for the coordinator's answers (``waiting_rank_s``).
        workers: virtual worker ranks.
        results, segments, events: how many of each.
        status: ``finished`` or ``interrupted``.
        coordinator_s_per_message: the coordinator's service time per message (0: instant answers,
            and the coordinator's figures below are all 0).
        messages: messages the coordinator handled (results, segment ends, joins).
        coordinator_busy_s: virtual seconds it spent handling them.
        wait_max_s, wait_mean_s: the longest and the mean wait of a message in its queue (arrival to
            the start of its handling).
        waiting_rank_s: rank-seconds that ranks running a segment spent waiting for its answers
            (queue wait and service time).
    """

    makespan_s: float
    busy_rank_s: float
    workers: int
    results: int
    segments: int
    events: int
    status: str = "finished"
    coordinator_s_per_message: float = 0.0
    messages: int = 0
    coordinator_busy_s: float = 0.0
    wait_max_s: float = 0.0
    wait_mean_s: float = 0.0
    waiting_rank_s: float = 0.0

    @property
    def utilization(self) -> float:
        """Busy rank-seconds over the ranks' whole time (0..1)."""
        held = self.workers * self.makespan_s
        return self.busy_rank_s / held if held > 0 else 0.0

    @property
    def coordinator_busy_fraction(self) -> float:
        """The coordinator's busy virtual seconds over the makespan (0..1)."""
        return self.coordinator_busy_s / self.makespan_s if self.makespan_s > 0 else 0.0


def iteration_limit(spec: ExperimentSpec, surrogate: Surrogate, scheduler) -> int:
    """The iteration at which a simulated trial completes by itself: the surrogate's own end, else
    ``stop.training_iteration``, else the scheduler's ``max_t`` (its highest rung, counted in iterations).

    Raises:
        SpecError: nothing bounds a trial (a real trainable ends itself; a simulated one must be told).
    """
    candidates = [surrogate.max_iterations, spec.stop.get("training_iteration")]
    if getattr(scheduler, "time_attr", "training_iteration") == "training_iteration":
        candidates.append(max(scheduler.rung_levels() or [0]))
    limits = [int(c) for c in candidates if isinstance(c, (int, float)) and not isinstance(c, bool) and c >= 1]
    if not limits:
        raise SpecError("surrogate", "nothing ends a simulated trial: give the surrogate max_iterations, the spec "
                                     "stop: {training_iteration: N}, or a scheduler with max_t")
    return min(limits)


def check_workers(spec: ExperimentSpec, workers: int) -> None:
    """Refuse a trial that needs more ranks than the simulation has (as the MPI backend does):
    it could never start, and the run would "finish" with no trial.

    Raises:
        SpecError: naming ``resources.ranks_per_trial``.
    """
    ranks = spec.resources.ranks_per_trial
    if ranks > workers:
        raise SpecError("resources.ranks_per_trial",
                        f"{ranks} ranks per trial, but this run has {workers} worker ranks")


class VirtualCluster:
    """Runs ``controller``'s experiment on ``workers`` virtual ranks until nothing is left to run.

    Args:
        controller: a controller whose clock is ``clock``.
        surrogate: what each iteration reports and takes.
        workers: virtual worker ranks (1..workers), each joining at the surrogate's ``join_s(rank)``;
            a free rank is the one idle the longest.
        clock: the virtual clock (set to each event's time before the controller hears of it).
        log: keep :attr:`log`, one ``(time, trial, iteration, decision)`` per result (tests).
        coordinator_s_per_message: the coordinator's virtual seconds per message (see the module docstring).

    Raises:
        SpecError: ``coordinator_s_per_message`` is no number >= 0 (and see :func:`iteration_limit`,
            :func:`check_workers`).
    """

    def __init__(self, controller: Controller, surrogate: Surrogate, workers: int, clock: VirtualClock,
                 log: bool = False, coordinator_s_per_message: float = 0.0):
        self.controller = controller
        self.surrogate = surrogate
        self.workers = workers
        self.clock = clock
        check_workers(controller.spec, workers)
        self.limit = iteration_limit(controller.spec, surrogate, controller.scheduler)
        self.metric = controller.spec.metric
        self.log: list[tuple] | None = [] if log else None
        self.results = self.segments = self.events = 0
        self.busy_rank_s = 0.0
        self._queue: list[tuple] = []
        self._seq = 0
        self._idle: deque[int] = deque()
        self.coordinator = CoordinatorQueue(coordinator_s_per_message, clock.now)
        self._queued = self.coordinator.s_per_message > 0  # else every answer is instant (no queue at all)
        self.waiting_rank_s = 0.0
        # trial -> [ranks, config, iteration, metrics, seconds, total, start, waited, last wait]: waited, the
        # seconds its run waited for the coordinator so far; last wait, that of its last result's answer
        self._running: dict[int, list] = {}
        self._errors: dict[int, str] = {}     # trial -> why it fails (its END event is queued)
        self._housekeeping: Housekeeping | None = None
        self._runs_of: dict[int, int] = {}    # trial -> segments started
        self._warm: set[int] = set()          # ranks that ran something (a rank's first run pays its warm-up)
        self._start = clock.now

    def run(self, housekeeping: Housekeeping | None = None) -> SimOutcome:
        """Process every event, then finish the experiment; ``housekeeping`` (a run with a folder and
        a console) flushes, snapshots and hears signals after each, as on real ranks. Returns what
        was measured, with the final status."""
        from ...controller.step import CoordinatorStep

        self._housekeeping = housekeeping
        step = CoordinatorStep(self.controller, self, housekeeping)
        joins: dict[float, list[int]] = {}
        for rank in range(1, self.workers + 1):
            joins.setdefault(self.surrogate.join_s(rank), []).append(rank)
        for delay, ranks in sorted(joins.items()):  # ranks that join together come as one event, unless
            for group in ([rank] for rank in ranks) if self._queued else [ranks]:  # each rank's message counts
                self._push(self._start + delay, _JOIN, group)
        queue, pop, serve = self._queue, heapq.heappop, self.coordinator.serve
        while queue:
            time, _, kind, subject = pop(queue)  # the arrival; the coordinator answers when it has served it
            now = self.clock.now = serve(time) if self._queued else time
            self.events += 1
            replies = []
            if kind == _RESULT:
                replies = self._result(subject, time)
            elif kind == _END:
                self._end(subject, SegmentEnd.ERROR if subject in self._errors else self._running[subject][3], time)
            else:
                self._idle.extend(subject)
                self.controller.on_workers_joined(len(subject), t=now)
            step.after_event(replies)
            step.tick()
        coordinator = self.coordinator
        outcome = SimOutcome(makespan_s=self.clock.now - self._start, busy_rank_s=self.busy_rank_s,
                             workers=self.workers, results=self.results, segments=self.segments, events=self.events,
                             coordinator_s_per_message=coordinator.s_per_message, messages=coordinator.messages,
                             coordinator_busy_s=coordinator.busy_s, wait_max_s=coordinator.wait_max_s,
                             wait_mean_s=coordinator.wait_mean_s, waiting_rank_s=self.waiting_rank_s)
        outcome.status = step.finish()
        return outcome

    # -- the coordinator step's workers (hpctune.controller.step.Workers) ----------------
    def place(self, launch: Launch) -> list[int]:
        """The ranks idle the longest; the segment is computed when it is sent (:meth:`send_run`)."""
        task = launch.task
        ranks = [self._idle.popleft() for _ in range(launch.resources.ranks_per_trial)]
        self._running[task.trial_id] = [ranks, task.config, task.start_iteration, None, 0.0, task.time_total_s,
                                        self.clock.now, 0.0, 0.0]
        return ranks

    def send_controls(self, controls: list[ControlMessage]) -> None:
        """A new config (a live policy, PBT's explore) reaches its running trial at once: the trial's
        next iteration, not yet computed, trains with it (CHECKPOINT and PAUSE need nothing: every
        result carries a checkpoint, and the controller answers PAUSE itself)."""
        for message in controls:
            if message.control == Control.CONFIG and message.trial_id in self._running:
                self._running[message.trial_id][1] = message.payload

    def send_decision(self, trial_id: int, decision: Decision) -> None:
        """The trial goes on (only CONTINUE is sent): its next iteration is computed now, after the
        controls, so that a config its result changed is in force for it."""
        self._next(trial_id, self._running[trial_id], self.clock.now)

    def send_run(self, launch: Launch, ranks: list[int]) -> None:
        """Start the segment: a rank's first run pays its warm-up, every run the start-up."""
        now = self.clock.now
        task = launch.task
        trial_id = task.trial_id
        cold = [rank for rank in ranks if rank not in self._warm]
        self._warm.update(cold)
        run = self._runs_of.get(trial_id, 0)
        self._runs_of[trial_id] = run + 1
        self.segments += 1
        state = self._running[trial_id]
        try:
            warm_up = max(self.surrogate.warm_up_s(rank) for rank in cold) if cold else 0.0
            start_up = self.surrogate.start_up_s(trial_id, task.config, run)
        except Exception:  # the surrogate's own error: this trial fails, as a trainable that raises does
            self._fail(trial_id, now, traceback.format_exc())
            return
        if task.start_iteration >= self.limit:  # nothing left to train (a copy of a finished model, say): the
            state[3] = SegmentEnd.COMPLETED       # run returns at once, as a trainable's loop over its iterations does
            self._push(now + warm_up + start_up, _END, trial_id)
            return
        self._next(trial_id, state, now + warm_up + start_up)

    # -- events ----------------------------------------------------------------------
    def _next(self, trial_id: int, state: list, start: float) -> None:
        """Compute the trial's next iteration and queue its report (or its failure)."""
        iteration = state[2] + 1
        try:
            metrics, seconds = self.surrogate.step(trial_id, state[1], iteration)
        except SpecError:  # what it returned is not (metrics, seconds) at all: the surrogate is refused
            raise
        except Exception:  # the surrogate's own error: this trial fails at the iteration's start
            self._fail(trial_id, start, traceback.format_exc())
            return
        value = metrics.get(self.metric, 0.0)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's numbers are Real too
            # as hpctune.report() fails a trial on real ranks, when the iteration reports
            self._fail(trial_id, start + seconds, f"{self.surrogate.describe()} reported the metric {self.metric!r} "
                                                  f"as {value!r} ({type(value).__name__}), not a number "
                                                  f"(trial {trial_id}, iteration {iteration})")
            return
        state[2], state[3], state[4] = iteration, metrics, seconds
        self._push(start + seconds, _RESULT, trial_id)

    def _fail(self, trial_id: int, at: float, error: str) -> None:
        """The trial's run ends in ERROR at virtual time ``at`` (the controller retries it or not)."""
        self._errors[trial_id] = error
        self._push(at, _END, trial_id)

    def _result(self, trial_id: int, sent: float) -> list[tuple[int, Decision]]:
        """The controller hears the result the trial sent at ``sent``; returns the reply owed (a trial
        that goes on), or none. As on real ranks, the row's ``timestamp`` is when it was sent, and its
        ``time_this_iter_s`` counts the wait for the previous result's answer."""
        now = self.clock.now
        state = self._running[trial_id]
        ranks, _, iteration, row, seconds, total, _, _, last_wait = state
        if last_wait:  # (0: the row is exactly as without the coordinator's model)
            seconds += last_wait
        total += seconds
        state[5] = total
        wait = state[8] = now - sent
        state[7] += wait
        row["trial_id"] = trial_id
        row["training_iteration"] = iteration
        row["time_this_iter_s"] = seconds
        row["time_total_s"] = total
        row["timestamp"] = sent
        row["rank"] = ranks[0]
        self.results += 1
        decision = self.controller.on_result(trial_id, row, f"trials/{trial_id:06d}/sim_{iteration:06d}", t=now)
        action = Decision(getattr(decision, "action", decision))
        if self.log is not None:
            self.log.append((now, trial_id, iteration, action.name))
        if action == Decision.CONTINUE and iteration < self.limit:
            return [(trial_id, action)]  # its next iteration: when the step sends the answer (send_decision)
        how = _HOW.get(action, SegmentEnd.COMPLETED)
        delay = self.surrogate.end_delay_s(trial_id, state[1], self._runs_of[trial_id] - 1) if action != Decision.CONTINUE else 0.0
        if delay > 0 or self._queued:  # the run ends, then its segment-end message queues for the coordinator
            state[3] = how
            self._push(now + delay, _END, trial_id)
        else:
            self._end(trial_id, how, now)
        return []

    def _end(self, trial_id: int, how: SegmentEnd, sent: float) -> None:
        """The segment whose end was sent at ``sent`` ends: its ranks are free (now)."""
        now = self.clock.now
        ranks, *_, start, waited, _ = self._running.pop(trial_id)
        waited += now - sent
        self.busy_rank_s += (now - start - waited) * len(ranks)
        self.waiting_rank_s += waited * len(ranks)
        self._idle.extend(ranks)
        error = self._errors.pop(trial_id, None)
        self.controller.on_segment_end(trial_id, how, error=error, t=now)
        if error is not None and self._housekeeping is not None:
            self._housekeeping.segment_ended(self.controller, trial_id, how, error)

    def _push(self, time: float, kind: int, subject) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, subject))
