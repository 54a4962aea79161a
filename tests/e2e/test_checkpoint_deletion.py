"""A checkpoint is deleted only once the journal records that made it obsolete are fsynced: a
crash of the node can lose the journal's un-fsynced tail, and the durable prefix left must still
find every checkpoint it names (before, a PBT run killed and resumed with its journal's last lines
dropped had trials ERROR with FileNotFoundError, and the experiment said "finished"). Here a PBT
run on MPI ranks, killed and resumed from every durable prefix; the store's side:
tests/store/test_experiment.py.
"""
from __future__ import annotations

import shutil

import pytest

import hpctune


@pytest.mark.mpi
def test_a_pbt_run_killed_resumes_from_any_durable_prefix_of_its_journal(tmp_path, run_cli):
    """SIGKILL an asynchronous PBT run whose newest journal segment is all un-fsynced (long fsync and
    snapshot intervals), drop the last 2, 4, 8 and 16 lines of that segment (what a node crash
    can lose), resume each: no trial ERROR, the experiment finished, every trial at its last step."""
    from conftest import kill_run, start_run, wait_until

    steps = 16
    spec = tmp_path / "tail.yaml"
    spec.write_text("name: tail\ntrainable: examples.pbt_toy:train\nmetric: Q\nmode: max\nnum_samples: 4\n"
                    f"space: {{h0: {{uniform: [0, 1]}}, h1: {{uniform: [0, 1]}}, lr: 0.02, steps: {steps}, "
                    "sleep: 0.05}\nscheduler: {type: pbt, perturbation_interval: 2, quantile_fraction: 0.5}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    folder = tmp_path / "runs" / "tail"
    env = {"HPCTUNE_FSYNC_INTERVAL": "1000", "HPCTUNE_SNAPSHOT_INTERVAL": "1000"}
    process = start_run(spec, "spawn", env=env)
    try:
        wait_until(folder, lambda run: (run.lineage.event == "exploit").sum() >= 2 and run.num_results >= 24,
                   "fewer than 2 exploits and 24 results", timeout=120, poll=0.05)
    finally:
        kill_run(spec)
        process.wait(timeout=30)
    newest = max((folder / "journal").glob("*.jsonl"))
    lines = newest.read_text().splitlines(keepends=True)
    assert len(lines) > 16
    for dropped in (2, 4, 8, 16):
        copy = tmp_path / f"tail-{dropped}"
        shutil.copytree(folder, copy)
        (copy / "journal" / newest.name).write_text("".join(lines[:-dropped]))
        done = run_cli("resume", str(copy), "--workers", "2", env=env)
        assert done.returncode == 0, done.stderr
        assert "Error" not in done.stderr and "is missing" not in done.stderr, (dropped, done.stderr)
        analysis = hpctune.Analysis(copy)
        assert analysis.status == "finished"
        assert set(analysis.trials.state) == {"TERMINATED"}, (dropped, analysis.trials[["state", "error"]])
        assert set(analysis.trials.training_iteration) == {steps}
        trials = analysis.trials.set_index("trial_id")
        for trial_id, rows in analysis.results.sort_values("timestamp").groupby("trial_id"):
            last = rows.iloc[-1]
            assert last.training_iteration == steps, (dropped, trial_id)
            # the config shown is the one its last result trained with (an exploit of a finished model is undone)
            assert (trials.loc[trial_id, "config/h0"], trials.loc[trial_id, "config/h1"]) == (last.h0, last.h1)
