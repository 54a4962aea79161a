"""A full disk is the storage's failure, not the trials': pause, stop with one line (exit 1), lose nothing,
and resume reruns the trials from their last good checkpoint once there is space."""
from __future__ import annotations

import subprocess

import pytest

import hpctune

from conftest import BIN, _env

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


def _run(command, folder_or_spec, env, workers="2"):
    return subprocess.run([str(BIN / "hpctune"), command, str(folder_or_spec), "--workers", workers], env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("trainable, space", [
    ("big_checkpoints", "{x: {uniform: [0, 1]}, epochs: 6, floats: 40000}"),   # 320 kB checkpoints: a worker's write fails
    ("big_metrics", "{x: {uniform: [0, 1]}, epochs: 6, chars: 60000, sleep: 0.05}"),  # 60 kB rows: the coordinator's writes fail
])
def test_full_disk_stops_cleanly_and_resume_completes(small_disk, tmp_path, trainable, space):
    disk, resize = small_disk
    spec = tmp_path / "full.yaml"
    spec.write_text(f"name: full\ntrainable: trainable_fixtures:{trainable}\nmetric: loss\nnum_samples: 12\n"
                    f"space: {space}\nstorage: {disk}\n")
    folder = disk / "full"
    env = _env({"HPCTUNE_SNAPSHOT_INTERVAL": "0.2"})
    full = _run("run", spec, env)
    assert full.returncode == 1, full.stderr
    assert full.stderr.splitlines()[-1] == f"hpctune: error: {folder}: no space left on device"
    assert "Traceback" not in full.stderr
    stopped = hpctune.Analysis(folder)
    assert stopped.status == "interrupted"
    assert "ERROR" not in set(stopped.trials.state)  # nobody's fault: no trial failed
    assert set(stopped.trials.num_failures) == {0}
    kept = stopped.results[["trial_id", "training_iteration", "loss"]]

    resize("256m")  # space freed
    done = _run("resume", folder, env)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(folder)
    assert len(analysis.trials) == 12 and set(analysis.trials.state) == {"TERMINATED"}
    for _, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, 7))  # no gap, no repeat
    merged = kept.merge(analysis.results, on=["trial_id", "training_iteration"], suffixes=("", "_after"))
    assert len(merged) == len(kept) and (merged.loss == merged.loss_after).all()  # nothing accepted was lost
    if trainable == "big_checkpoints":  # trials cut by the full disk went on from their last good checkpoint
        assert (analysis.results.started_from > 0).any()
