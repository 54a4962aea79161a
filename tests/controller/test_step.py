"""The coordinator step (hpctune/controller/step.py): the one order in which every backend hands
out the controller's output, on a real controller and a real experiment folder.

The backend here is a recorder (the step's ``Workers`` protocol): at each call it notes what was
sent and how far the journal's files went then, so the tests assert that nothing leaves the
coordinator before the records that caused it are durable, and that controls come before
decisions, and decisions before runs. Each backend's own half (MPI messages, the in-process
trial, the simulator's virtual ranks) runs in the suite's whole runs.
"""
from __future__ import annotations

import io
import json

from hpctune.controller.housekeeping import Housekeeping
from hpctune.controller.step import CoordinatorStep
from hpctune.enums import Control, Decision, SegmentEnd
from hpctune.reporting.live.console import Console

from sim_driver import make_controller


class RecordingWorkers:
    """Two virtual ranks; every call noted with the journal's last record and the last one a reader
    of its files finds then (written to the operating system: what a crash of any process keeps)."""

    def __init__(self, store):
        self.store = store
        self.idle = [1, 2]
        self.calls: list[tuple] = []

    def _note(self, *what) -> None:
        self.calls.append((*what, self.store.journal.seq, max((r["seq"] for r in _journal(self.store.root)), default=0)))

    def place(self, launch):
        ranks = [self.idle.pop(0)]
        self._note("place", launch.trial_id)
        return ranks

    def send_controls(self, controls):
        for message in controls:
            self._note("control", message.trial_id, message.control)

    def send_decision(self, to, decision):
        self._note("decision", to, decision)

    def send_run(self, launch, ranks):
        self._note("run", launch.trial_id, ranks)


def _journal(folder):
    return [json.loads(line) for path in sorted((folder / "journal").glob("*.jsonl"))
            for line in path.read_text().splitlines() if line.strip()]


def _step(tmp_path):
    controller = make_controller(tmp_path, {"type": "fifo"}, num_samples=3, space={"x": {"uniform": [0, 1]}, "epochs": 2})
    console = Console("sim", "loss", "min", 3, verbose=0, stream=io.StringIO())
    housekeeping = Housekeeping(controller.store, console, handle_signals=False)
    workers = RecordingWorkers(controller.store)
    return controller, CoordinatorStep(controller, workers, housekeeping), workers


def test_launches_are_placed_then_journaled_with_their_ranks_and_durable_before_they_run(tmp_path):
    controller, step, workers = _step(tmp_path)
    controller.on_workers_joined(2)
    step.after_event()
    kinds = [call[0] for call in workers.calls]
    assert kinds == ["place", "place", "run", "run"]
    placed_at = {call[1]: call[2] for call in workers.calls if call[0] == "place"}
    for call in workers.calls:
        if call[0] == "run":
            *_, seq, durable = call
            assert durable == seq, "a run was sent before its records were written"
    records = _journal(controller.store.root)
    placed = {r["trial"]: (r["seq"], r["rank"]) for r in records if r["k"] == "launch"}
    assert placed == {0: (placed[0][0], 1), 1: (placed[1][0], 2)}
    # each launch is journaled with its ranks after the backend placed it
    assert placed[0][0] > placed_at[0] and placed[1][0] > placed_at[1]


def test_controls_then_decisions_then_runs_all_after_the_journal_is_durable(tmp_path):
    controller, step, workers = _step(tmp_path)
    controller.on_workers_joined(2)
    step.after_event()
    workers.calls.clear()
    controller.checkpoint_now()  # both running trials will be told to checkpoint
    row = {"loss": 0.5, "training_iteration": 1, "time_total_s": 1.0}
    decision = controller.on_result(0, dict(row, trial_id=0), None)
    assert decision == Decision.CONTINUE
    step.after_event([(1, decision)])  # the reply goes to rank 1, which runs trial 0
    assert [call[:3] for call in workers.calls] == [("control", 0, Control.CHECKPOINT),
                                                   ("control", 1, Control.CHECKPOINT),
                                                   ("decision", 1, Decision.CONTINUE)]
    assert all(call[-1] == call[-2] for call in workers.calls)

    # trial 0 ends: its rank gets trial 2, and the answer to trial 1's result goes before that run
    workers.calls.clear()
    workers.idle.append(1)
    controller.on_segment_end(0, SegmentEnd.COMPLETED)
    decision = controller.on_result(1, dict(row, trial_id=1), None)
    step.after_event([(2, decision)])
    assert [call[0] for call in workers.calls] == ["place", "decision", "run"]
    assert workers.calls[-1][1:3] == (2, [1])
    assert workers.calls[-1][-1] == workers.calls[-1][-2]


def test_finish_journals_the_final_status_durably_and_closes_the_experiment(tmp_path):
    controller, step, workers = _step(tmp_path)
    controller.on_workers_joined(2)
    step.after_event()
    ranks = {1: 0, 2: 1}
    while ranks:
        rank, trial_id = next(iter(ranks.items()))
        for iteration in (1, 2):
            controller.on_result(trial_id, {"loss": 0.1 * iteration, "trial_id": trial_id,
                                            "training_iteration": iteration, "time_total_s": float(iteration)}, None)
            step.after_event()
        del ranks[rank]
        workers.idle.append(rank)
        controller.on_segment_end(trial_id, SegmentEnd.COMPLETED)
        workers.calls.clear()
        step.after_event()
        for call in workers.calls:
            if call[0] == "run":
                ranks[call[2][0]] = call[1]
    assert step.finish() == "finished"
    records = _journal(controller.store.root)
    assert records[-1]["k"] == "status" and records[-1]["status"] == "finished"
    assert sorted(r["trial"] for r in records if r["k"] == "launch") == [0, 1, 2]
