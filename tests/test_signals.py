"""Ctrl-C and SIGTERM: running trials pause at a checkpoint, exit 1, and resume finishes the experiment."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import hpctune

from conftest import BIN, _env, start_run

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


@pytest.mark.parametrize("launcher, signum", [("spawn", signal.SIGINT), ("mpiexec", signal.SIGTERM),
                                              ("mpiexec", signal.SIGINT)])
def test_signal_pauses_running_trials_then_resume_finishes(tmp_path, launcher, signum):
    spec = tmp_path / "sig.yaml"
    spec.write_text("name: sig\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 4\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 12, sleep: 0.15}}\nstorage: {tmp_path / 'runs'}\n")
    process = start_run(spec, launcher, stdout=subprocess.PIPE)
    time.sleep(2.5)
    assert process.poll() is None
    os.killpg(process.pid, signum)  # what a terminal's Ctrl-C or Slurm's time limit does
    stdout, stderr = process.communicate(timeout=30)
    folder = tmp_path / "runs" / "sig"
    assert process.returncode == 1, stderr
    assert f"received {signum.name}: pausing 2 running trial(s) at their next result" in stderr
    assert f"hpctune: experiment interrupted; continue it with 'hpctune resume {folder}'" in stderr
    interrupted = hpctune.Analysis(folder)
    assert interrupted.status == "interrupted"
    assert list(interrupted.trials.state) == ["PAUSED", "PAUSED"]

    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder), "--workers", "2"], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(folder)
    assert analysis.status == "finished" and len(analysis.trials) == 4
    assert set(analysis.trials.state) == {"TERMINATED"}
    for trial_id, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, 13))
    paused_at = interrupted.trials.set_index("trial_id").training_iteration
    for trial_id, iteration in paused_at.items():
        later = analysis.results[(analysis.results.trial_id == trial_id)
                                 & (analysis.results.training_iteration > iteration)]
        assert (later.started_from == iteration).all()  # continued from the checkpoint taken at the pause
