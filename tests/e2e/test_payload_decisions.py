"""Scheduler decisions that carry a payload (``SchedulerDecision.config`` / ``.checkpoint_of``),
honoured end to end on real MPI ranks: a new config seen by the running trial at its next step,
and a trial going on from a copy of another trial's newest checkpoint (PBT's exploit); the PBT toy
example, asynchronous and in synchronous rounds, and killed and resumed."""
from __future__ import annotations

import hpctune


def test_a_new_config_and_another_trial_s_checkpoint_reach_the_running_trials(tmp_path, run_python):
    done = run_python("tests/scripts/exploit.py", str(tmp_path))
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "payload")
    results = analysis.results.sort_values(["trial_id", "timestamp"])
    rows = {trial_id: group for trial_id, group in results.groupby("trial_id")}

    # trial 0: the new step size from the step after the result it answered (iteration 3 on)
    zero = rows[0]
    assert list(zero.training_iteration) == list(range(1, 9))
    assert list(zero.step) == [1.0, 1.0] + [100.0] * 6
    assert list(zero.total) == [1.0, 2.0] + [2.0 + 100.0 * k for k in range(1, 7)]

    # trial 1: its own total up to its 4th result, then trial 0's state from trial 0's newest checkpoint
    one = rows[1]
    own, taken = one[one.origin == 1], one[one.origin == 0]
    assert list(own.training_iteration) == [1, 2, 3, 4] and list(own.step) == [2.0] * 4
    first = int(taken.training_iteration.iloc[0]) - 1  # the donor's checkpoint it went on from
    assert first >= 1 and list(taken.training_iteration) == list(range(first + 1, 9))
    donor_total = float(zero.set_index("training_iteration").total[first])
    assert list(taken.total) == [donor_total + 10.0 * k for k in range(1, 9 - first)]
    assert set(taken.step) == {10.0}
    decisions = analysis.decisions
    assert decisions[(decisions.trial_id == 1)].decision.tolist() == ["PAUSE"]
    trials = analysis.trials.set_index("trial_id")
    assert trials.loc[1, "config/step"] == 10.0 and set(trials.state) == {"TERMINATED"}
    assert trials.loc[1, "end_reason"] == "completed"

    # trial 2 asked for the checkpoint of a trial that does not exist: ignored, said once
    assert list(rows[2].training_iteration) == list(range(1, 9)) and set(rows[2].origin) == {2}
    assert done.stderr.count("warning: the scheduler asked trial 2 to go on from trial 99's checkpoint, but it has "
                             "none: ignored") == 1


def test_the_pbt_toy_example_exploits_and_explores_on_mpi_ranks(tmp_path, run_python):
    done = run_python("examples/pbt_toy.py", "--storage", str(tmp_path), "--name", "toy")
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(tmp_path / "toy")
    assert analysis.status == "finished" and len(analysis.trials) == 4
    assert set(analysis.trials.state) == {"TERMINATED"}
    exploited = analysis.decisions[analysis.decisions.decision == "PAUSE"]
    assert len(exploited) >= 1  # each exploit pauses the trial, which goes on from the donor's copy
    # a trial that went on from a copy taken before the last iteration trained on with explored
    # hyperparameters (a copy of a donor's iteration-40 checkpoint leaves nothing to train)
    copies = analysis.lineage[(analysis.lineage.event == "exploit") & (analysis.lineage.training_iteration < 40)]
    assert len(copies) >= 1
    for trial_id in set(copies.trial_id):
        rows = analysis.results[analysis.results.trial_id == trial_id]
        assert len(set(zip(rows.h0, rows.h1))) > 1
    assert analysis.best_value > 0.0 and "exploit(s)" in done.stderr  # Q = -0.42 at the start
    best = analysis.best_trial_id
    shown = run_python("-m", "hpctune.cli", "analyze", str(tmp_path / "toy"), "--lineage", str(best))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    start = lines.index(f"Lineage of trial {best} (iterations from..to, the trial that trained them, its config):")
    assert lines[start + 1].split()[:3] == ["trial_id", "from_iteration", "to_iteration"]
    assert lines[start + 2].split()[1] == "0" and lines[-1].split()[2] == "40"
    # the best model trained again from scratch with its schedule: the very same Q, bit for bit
    replayed = run_python("-m", "hpctune.cli", "replay", str(tmp_path / "toy"), str(best), "--workers", "2")
    assert replayed.returncode == 0, replayed.stderr
    again = hpctune.Analysis(tmp_path / f"toy-trial{best}")
    assert len(again.trials) == 1 and again.status == "finished"
    final = analysis.results[analysis.results.trial_id == best].sort_values("timestamp").iloc[-1]
    rows = again.results.sort_values("training_iteration")
    assert list(rows.training_iteration) == list(range(1, 41)) and rows.Q.iloc[-1] == final.Q
    schedule = analysis.schedule(best)
    for stretch in schedule.to_dict("records"):  # each stretch trained with its h
        trained = rows[(rows.training_iteration > stretch["from_iteration"])
                       & (rows.training_iteration <= stretch["to_iteration"])]
        assert set(trained.h0) == {stretch["config/h0"]} and set(trained.h1) == {stretch["config/h1"]}
    missing = run_python("-m", "hpctune.cli", "analyze", str(tmp_path / "toy"), "--lineage", "99")
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.splitlines() == [f"hpctune: error: --lineage: no trial 99 in {tmp_path / 'toy'}"]


def test_synchronous_pbt_on_mpi_ranks_trains_every_trial_to_the_end_in_rounds(tmp_path, run_python):
    """The PBT paper's rounds on real ranks, as many as trials and half as many (time-sliced): each
    trial reports iterations 1..40 once each through its donors (equal compute: 160 steps in all),
    exploits only at round boundaries, and the two runs decide alike (the same seed, the same rounds,
    whatever the timing). Before, a trial released while its pause was on its way was forgotten and
    the run ended at the first rounds."""
    runs = {}
    for workers in (4, 2):
        name = f"rounds{workers}"
        done = run_python("examples/pbt_toy.py", "--synch", "--workers", str(workers), "--storage", str(tmp_path),
                          "--name", name)
        assert done.returncode == 0, done.stderr
        analysis = hpctune.Analysis(tmp_path / name)
        assert analysis.status == "finished" and set(analysis.trials.training_iteration) == {40}
        for _, rows in analysis.results.groupby("trial_id"):
            assert sorted(rows.training_iteration) == list(range(1, 41))
        exploits = analysis.lineage[analysis.lineage.event == "exploit"]
        assert len(exploits) >= 3 and set(exploits.training_iteration % 4) == {0}
        runs[workers] = (analysis.results.sort_values(["trial_id", "training_iteration"])[["trial_id", "Q"]],
                         exploits.sort_values(["training_iteration", "trial_id"])[
                             ["trial_id", "training_iteration", "donor", "config_json"]])
    assert runs[4][0].values.tolist() == runs[2][0].values.tolist()
    assert runs[4][1].values.tolist() == runs[2][1].values.tolist()


def test_a_pbt_run_killed_and_resumed_loses_nothing_and_continues_its_lineage(tmp_path, run_cli):
    from conftest import kill_run, start_run, wait_until

    spec = tmp_path / "pbtkill.yaml"
    spec.write_text("name: pbtkill\ntrainable: examples.pbt_toy:train\nmetric: Q\nmode: max\nnum_samples: 2\n"
                    "space: {h0: {uniform: [0, 1]}, h1: {uniform: [0, 1]}, lr: 0.02, steps: 40, sleep: 0.1}\n"
                    "scheduler: {type: pbt, perturbation_interval: 4, quantile_fraction: 0.5}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    folder = tmp_path / "runs" / "pbtkill"
    process = start_run(spec, "spawn")
    try:
        # SIGKILL once an exploit happened and the run goes on
        wait_until(folder, lambda run: (run.lineage.event == "exploit").any() and run.num_results >= 30,
                   "no exploit", timeout=120, poll=0.2)
    finally:
        kill_run(spec)
        process.wait(timeout=30)
    before = hpctune.Analysis(folder)
    assert before.status == "interrupted"
    lineage_before, results_before = before.lineage, before.results
    done = run_cli("resume", str(folder), "--workers", "2")
    assert done.returncode == 0, done.stderr
    after = hpctune.Analysis(folder)
    assert after.status == "finished" and set(after.trials.state) == {"TERMINATED"}
    key = ["trial_id", "event", "training_iteration", "donor", "config_json"]
    assert after.lineage[key].iloc[:len(lineage_before)].equals(lineage_before[key])  # the lineage goes on
    kept = results_before.merge(after.results, on=["trial_id", "training_iteration", "timestamp"])
    assert len(kept) == len(results_before)  # every result accepted before the kill is still there
    for trial_id in after.trials.trial_id:
        schedule = after.schedule(trial_id)
        assert schedule.from_iteration.iloc[0] == 0 and schedule.to_iteration.iloc[-1] == 40
        assert list(schedule.from_iteration.iloc[1:]) == list(schedule.to_iteration.iloc[:-1])
