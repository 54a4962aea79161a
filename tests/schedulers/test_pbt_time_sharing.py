"""Asynchronous PBT with more trials than workers: the population time-shares the workers at the
perturbation intervals (the least-trained waiting member runs next), a pause comes with a
checkpoint, and a recipient's next ranking counts from its donor's perturbation point."""
from __future__ import annotations

import pytest

import hpctune
from hpctune.enums import Decision, SegmentEnd, TrialState
from hpctune.schedulers import FIFOScheduler, PopulationBasedTraining, SchedulerDecision
from hpctune.space import parse_space
from hpctune.trial import Trial

from sim_driver import SimDriver, make_controller
from simulated import simulated

INTERVAL, EPOCHS = 4, 20


@pytest.mark.parametrize("end_delay", [0.0, 0.5])
def test_a_population_of_8_on_4_workers_trains_side_by_side(tmp_path, end_delay):
    """Before, trials 0-3 trained to their last iteration before trials 4-7 started, so the late
    ones were ranked against, and copied, nearly finished models."""
    space = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": EPOCHS}
    controller = make_controller(tmp_path, {"type": "pbt", "perturbation_interval": INTERVAL}, space=space,
                                 num_samples=8)
    pbt = controller.scheduler
    choices = []
    choose = pbt.choose_trial_to_run

    def choose_and_check(trials):
        chosen = choose(trials)
        if chosen is not None and chosen.state == TrialState.PAUSED:  # a paused member, not a new one
            waiting = {tid: trial.iteration for tid, trial in trials.items() if trial.state == TrialState.PAUSED}
            choices.append((chosen.iteration, waiting))
        return chosen

    pbt.choose_trial_to_run = choose_and_check
    spreads, trained_when_all_started, resumed_behind = [], [], []
    launches_seen = 4  # the first 4, new trials, from iteration 0

    def watch(driver):
        nonlocal launches_seen
        for trial_id, _, start in driver.launches[launches_seen:]:  # a pause loses nothing: each segment
            if start != driver.controller.trials[trial_id].iteration:  # starts where its trial stopped (or copied)
                resumed_behind.append((trial_id, start))
        launches_seen = len(driver.launches)
        live = [trial.iteration for trial in driver.controller.trials.values() if not trial.state.is_finished]
        if len(driver.controller.trials) == 8 and live:
            spreads.append(max(live) - min(live))
        if not trained_when_all_started and len({tid for tid, _, _ in driver.launches}) == 8:
            trained_when_all_started.append(max(iteration for _, iteration, _ in driver.log))

    driver = SimDriver(controller, workers=4, end_delay=end_delay, on_event=watch).start()
    assert driver.run()
    controller.finalize()
    assert {tid: (trial.state.name, trial.iteration) for tid, trial in controller.trials.items()} == {
        tid: ("TERMINATED", EPOCHS) for tid in range(8)}
    assert trained_when_all_started == [INTERVAL]  # all 8 started before any trial went past its first interval
    assert max(spreads) <= 2 * INTERVAL  # the most and the least trained member, at every event
    assert choices and all(iteration <= min(waiting.values()) for iteration, waiting in choices)
    assert resumed_behind == []
    pauses = [iteration for (_, iteration, decision) in driver.log if decision == "PAUSE"]
    assert pauses and all(iteration % INTERVAL == 0 for iteration in pauses)


def test_a_population_with_a_worker_each_never_pauses_for_members_that_will_not_come(tmp_path):
    """8 trials on 8 workers: the search of known size ends with its last trial added, so PBT knows
    nobody waits; before, every trial paused at its first interval and started again once."""
    space = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": EPOCHS}
    simulation = simulated(tmp_path, {"type": "pbt", "perturbation_interval": INTERVAL}, space=space, num_samples=8,
                           workers=8)
    controller = simulation.controller
    records = simulation.store.records
    exploits = {(r["trial"], r["it"]) for r in records if r["k"] == "exploit"}
    pauses = [(tid, iteration) for _, tid, iteration, decision in simulation.log if decision == "PAUSE"]
    # every pause is an exploit's (the recipient goes on from its copy of the donor's iteration), never a wait
    assert len(pauses) == len(exploits) and {tid for tid, _ in pauses} == {tid for tid, _ in exploits}
    assert all(trial.iteration == EPOCHS for trial in controller.trials.values())


def _pbt(**options) -> PopulationBasedTraining:
    pbt = PopulationBasedTraining(perturbation_interval=INTERVAL, **options)
    pbt.set_space(parse_space({"x": {"uniform": [0, 1]}}))
    pbt.setup("loss", "min", seed=0)
    return pbt


def _started_trials(pbt: PopulationBasedTraining, count: int, running: int) -> dict[int, Trial]:
    """``count`` trials added, the first ``running`` of them chosen to run, the search ended."""
    trials = {tid: Trial(trial_id=tid, config={"x": 0.5}) for tid in range(count)}
    for trial in trials.values():
        pbt.on_trial_add(trial)
    for _ in range(running):
        pbt.choose_trial_to_run(trials).state = TrialState.RUNNING
    pbt.on_no_more_trials()
    return trials


def _report(pbt: PopulationBasedTraining, trial: Trial, iteration: int, loss: float, checkpoint: bool = True):
    """What the controller does with a result before it asks the scheduler, then the scheduler's answer."""
    trial.iteration = iteration
    if checkpoint:
        trial.checkpoint, trial.checkpoint_iteration = f"trials/{trial.trial_id}/c{iteration}.h5", iteration
    return pbt.on_trial_result(trial, {"loss": loss, "training_iteration": iteration})


def test_a_recipient_is_ranked_next_from_its_donor_s_perturbation_point():
    """Trial 0 copies trial 1's checkpoint of iteration 9 (trial 1 was last ranked at 8): its next
    ranking is at 12, not at its next result (10), counted from its own old ranking at 4."""
    pbt = _pbt(quantile_fraction=0.5)
    trials = _started_trials(pbt, 2, running=2)
    for iteration in range(1, 10):
        _report(pbt, trials[1], iteration, loss=0.1)
    for iteration in range(1, 4):
        assert _report(pbt, trials[0], iteration, loss=1.0) == Decision.CONTINUE
    exploit = _report(pbt, trials[0], 4, loss=1.0)
    assert (exploit.action, exploit.checkpoint_of) == (Decision.CONTINUE, 1)  # nobody waits: it goes on at once
    trials[0].iteration = trials[0].checkpoint_iteration = 9  # the controller's copy of trial 1's newest
    assert [_report(pbt, trials[0], iteration, loss=1.0) for iteration in (10, 11)] == [Decision.CONTINUE] * 2
    again = _report(pbt, trials[0], 12, loss=1.0)
    assert (again.action, again.checkpoint_of) == (Decision.CONTINUE, 1)


def test_a_pause_comes_with_a_checkpoint_asked_for_before_the_interval():
    """Trial 2 waits for a worker. Trial 0 reports without checkpoints: at its result before the
    interval it is asked for one; when it reports the interval without one all the same, it goes on,
    asked again, and pauses at its first result with one. Trial 1 then goes on past its interval
    (the paused trial is further along) and pauses at the next, and trial 0, the least trained,
    runs again first."""
    pbt = _pbt()
    trials = _started_trials(pbt, 3, running=2)
    assert [_report(pbt, trials[0], iteration, 0.5, checkpoint=False) for iteration in (1, 2)] == [
        Decision.CONTINUE] * 2
    asked = SchedulerDecision(Decision.CONTINUE, checkpoint_now=True)
    assert _report(pbt, trials[0], 3, 0.5, checkpoint=False) == asked
    assert _report(pbt, trials[0], 4, 0.5, checkpoint=False) == asked  # pausing here would lose 4 iterations
    assert _report(pbt, trials[0], 5, 0.5) == Decision.PAUSE
    trials[0].state = TrialState.PAUSED
    assert pbt.choose_trial_to_run(trials) is trials[2]  # a member that never ran first
    trials[2].state = TrialState.RUNNING
    assert [_report(pbt, trials[1], iteration, 0.1) for iteration in range(1, 8)] == [Decision.CONTINUE] * 7
    assert _report(pbt, trials[1], 8, 0.1) == Decision.PAUSE
    trials[1].state = TrialState.PAUSED
    assert pbt.choose_trial_to_run(trials) is trials[0]  # at 5, before trial 1 at 8


def test_on_mpi_ranks_the_population_shares_the_workers_and_pauses_with_checkpoints(tmp_path, run_python):
    """4 trials on 2 ranks; the trainable checkpoints only every 10th iteration or when asked."""
    done = run_python("tests/scripts/pbt_time_sharing.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "shared")
    assert analysis.status == "finished"
    assert analysis.trials.set_index("trial_id").training_iteration.to_dict() == {tid: 12 for tid in range(4)}
    results = analysis.results.sort_values("timestamp").reset_index(drop=True)
    first = results.groupby("trial_id").head(1)
    past_interval = results[results.training_iteration > 3].index.min()
    assert (first.index < past_interval).all()  # trials 2 and 3 started before 0 and 1 went past 3
    # every segment started from the checkpoint of the iteration its trial paused at (or copied):
    # its results are the next iterations, none lost to a pause without a checkpoint
    for trial_id, rows in results.groupby("trial_id"):
        segments = []  # (started_from, iterations), in time order
        for iteration, started_from in zip(rows.training_iteration, rows.started_from):
            if not segments or segments[-1][0] != started_from or segments[-1][1][-1] != iteration - 1:
                segments.append((started_from, [iteration]))
            else:
                segments[-1][1].append(iteration)
        assert all(iterations[0] == started_from + 1 for started_from, iterations in segments), (trial_id, segments)
    pauses = analysis.decisions[analysis.decisions.decision == "PAUSE"]
    assert len(pauses) >= 8 and set(pauses.training_iteration % 3) == {0}
    assert results[results.training_iteration % 3 == 0].asked.all()  # asked for one just in time


def test_a_checkpoint_written_again_after_copying_one_behind_is_kept(tmp_path):
    """Trial 1 keeps checkpoints 2 and 3, copies trial 0's of iteration 2, trains 3 again and writes
    checkpoint_000003.h5 anew: that file is its newest, never obsolete (it was handed over for
    deletion as the old entry of the same name, and the resumed trial found it gone)."""

    class CopyOnce(FIFOScheduler):  # defined here: a named class joins the registry when it is defined
        """Trial 1, at iteration 3, goes on from trial 0's checkpoint of iteration 2 (behind it)."""

        name = "copy-once-test"
        copied = False

        def on_trial_result(self, trial, result):
            if trial.trial_id == 1 and result["training_iteration"] == 3 and not self.copied:
                self.copied = True
                return SchedulerDecision(Decision.CONTINUE, checkpoint_of=0)
            return Decision.CONTINUE

    controller = make_controller(tmp_path, CopyOnce(), num_samples=2)
    controller.on_workers_joined(2, t=0.0)
    assert [launch.trial_id for launch in controller.take_launches()] == [0, 1]

    def report(trial_id, iteration):
        path = f"trials/{trial_id:06d}/checkpoint_{iteration:06d}.h5"
        (tmp_path / "sim" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sim" / path).touch()
        return controller.on_result(trial_id, {"loss": 1.0, "training_iteration": iteration}, path, t=iteration)

    for iteration in (1, 2):
        report(0, iteration)
    assert [report(1, iteration) for iteration in (1, 2, 3)] == [Decision.CONTINUE] * 2 + [Decision.PAUSE]
    controller.on_segment_end(1, SegmentEnd.PAUSED, t=3.5)
    assert [(launch.trial_id, launch.task.start_iteration) for launch in controller.take_launches()] == [(1, 2)]
    report(1, 3)
    obsolete = [path for _, path in controller.take_obsolete_checkpoints()]
    assert controller.trials[1].checkpoint == "trials/000001/checkpoint_000003.h5"
    assert controller.trials[1].checkpoint not in obsolete
    assert "trials/000001/checkpoint_000002.h5" in obsolete
