"""Ctrl-C and SIGTERM: running trials pause at a checkpoint, exit 1, and resume finishes the experiment;
a second one stops at once, and resume finishes it too."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import hpctune

from conftest import resume_to_the_end, running

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


@pytest.mark.parametrize("launcher, signum", [("spawn", signal.SIGINT), ("mpiexec", signal.SIGTERM),
                                              ("mpiexec", signal.SIGINT)])
def test_signal_pauses_running_trials_then_resume_finishes(tmp_path, launcher, signum):
    with running(tmp_path, launcher, "sig", num_samples=4, epochs=12, sleep=0.15,
                 stdout=subprocess.PIPE) as (process, folder, _):
        os.killpg(process.pid, signum)  # what a terminal's Ctrl-C or Slurm's time limit does
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    assert f"received {signum.name}: pausing 2 running trial(s) at their next result" in stderr
    assert f"hpctune: experiment interrupted; continue it with 'hpctune resume {folder}'" in stderr
    interrupted = hpctune.Analysis(folder)
    assert interrupted.status == "interrupted"
    assert list(interrupted.trials.state) == ["PAUSED", "PAUSED"]

    analysis = resume_to_the_end(folder, trials=4, epochs=12)
    paused_at = interrupted.trials.set_index("trial_id").training_iteration
    for trial_id, iteration in paused_at.items():
        later = analysis.results[(analysis.results.trial_id == trial_id)
                                 & (analysis.results.training_iteration > iteration)]
        assert (later.started_from == iteration).all()  # continued from the checkpoint taken at the pause


@pytest.mark.parametrize("launcher, signum", [("spawn", signal.SIGINT), ("mpiexec", signal.SIGTERM),
                                              ("mpiexec", signal.SIGINT)])
def test_second_signal_stops_at_once_then_resume_finishes(tmp_path, launcher, signum):
    with running(tmp_path, launcher, "twice", num_samples=2, epochs=3, sleep=3.0,
                 stdout=subprocess.PIPE) as (process, folder, _):
        os.killpg(process.pid, signum)  # both trials just reported: their next results are 3 s away
        time.sleep(1.5)  # hydra has passed the first one on (a second one too soon can crash its proxy, exit 0)
        os.killpg(process.pid, signum)  # a second Ctrl-C: stop at once, without waiting for the trials
        stdout, stderr = process.communicate(timeout=30)
    if launcher == "mpiexec" and signum == signal.SIGINT:
        # hydra keeps a second Ctrl-C to itself: it kills every rank at once and exits 255, or 0 when
        # its proxy, which the Ctrl-C reached too, trips its own assertion as it closes (a race in hydra
        # that a loaded CI node hits); either way the ranks are gone at once and resume finishes
        if process.returncode == 255:
            assert "Ctrl-C caught... cleaning up processes" in stdout
        else:
            assert process.returncode == 0, stderr
            assert "HYD_pmcd_pmip_control_cmd_cb" in stderr and "assert (!closed) failed" in stderr, stderr
    else:
        assert process.returncode == 1, stderr
        assert (f"hpctune: error: a second {signum.name} stopped the experiment at once; "
                f"continue it with 'hpctune resume {folder}'") in stderr.splitlines(), stderr
        interrupted = hpctune.Analysis(folder)
        assert interrupted.status == "interrupted"
        assert list(interrupted.trials.state) == ["RUNNING", "RUNNING"]  # not paused: they restart on resume

    results = resume_to_the_end(folder, trials=2, epochs=3).results
    assert (results[results.training_iteration > 1].started_from == 1).all()  # from the iteration-1 checkpoint
