"""Nothing lost: SIGKILL of the whole MPI job at random moments, then resume, again and again."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import h5py
import pytest

import hpctune
from hpctune.store import is_experiment, load_experiment

from conftest import BIN, _env, mpiexec_path

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

TRIALS, EPOCHS = 16, 10


def _accepted(folder) -> set:
    """(trial_id, iteration, loss) of every result the experiment holds, read while it may run."""
    view = load_experiment(folder)
    columns = view.results.columns
    rows = zip(columns.get("trial_id", []), columns.get("training_iteration", []), columns.get("loss", []))
    return {(int(t), int(i), round(float(v), 12)) for t, i, v in rows}


def test_sigkill_at_ten_random_moments_then_resume_loses_nothing(tmp_path):
    spec = tmp_path / "crash.yaml"
    spec.write_text(f"name: crash\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\n"
                    f"num_samples: {TRIALS}\nspace: {{x: {{uniform: [0, 1]}}, epochs: {EPOCHS}, sleep: 0.05}}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    folder = tmp_path / "runs" / "crash"
    env = _env({"HPCTUNE_SNAPSHOT_INTERVAL": "0.3"})  # snapshots and journal rotations between kills too
    rng = random.Random(20261123)
    kills, durable, resumed = 0, set(), 0
    while kills < 10:
        resuming = is_experiment(folder)
        command = ["resume", str(folder)] if resuming else ["run", str(spec)]
        process = subprocess.Popen([mpiexec_path(), "-n", "3", str(BIN / "hpctune"), *command],
                                   env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30  # let each run accept a few results, then kill at a random moment
        while time.monotonic() < deadline and process.poll() is None:
            if is_experiment(folder) and len(_accepted(folder) - durable) >= 3:
                break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5))
        if process.poll() is not None:
            pytest.fail(f"the experiment ended before kill {kills + 1}: {process.stderr.read()[-2000:]}")
        before = _accepted(folder) if is_experiment(folder) else set()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        kills += 1
        resumed += resuming
        if is_experiment(folder):
            with h5py.File(folder / "experiment.h5", "r") as f:  # plain h5py, no repair
                assert f.attrs["format"] == "hpctune-experiment"
            after = _accepted(folder)
            assert before <= after, "a result that was durable before the kill is gone"
            assert durable <= after
            durable = after
    assert resumed >= 8
    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder)], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(folder)
    assert len(analysis.trials) == TRIALS  # num_samples counts over the whole experiment
    assert analysis.trials["config/x"].nunique() == TRIALS  # and the searcher repeated no config
    assert set(analysis.trials.state) == {"TERMINATED"}
    for trial_id, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, EPOCHS + 1)), trial_id  # no gap, no duplicate
    assert durable <= _accepted(folder)
    # trials cut by a kill restarted from a checkpoint, not from scratch
    assert (analysis.results.started_from > 0).any()
