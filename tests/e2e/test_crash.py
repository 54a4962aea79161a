"""Nothing lost: SIGKILL of the whole MPI job at random moments, then resume, again and again.

While it runs, a reader process reads the experiment in a loop and checks that
every read is a consistent prefix (tests/scripts/reader_loop.py). The run is
started in a project folder whose trainable module is importable only from
there, with relative storage; every resume runs from another working folder.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import h5py
import pytest

import hpctune
from hpctune.store import is_experiment, load_experiment

from conftest import BIN, REPO, _env, mpiexec_path

pytestmark = [pytest.mark.mpi, pytest.mark.slow]

TRIALS, EPOCHS = 24, 10


def _wait_until_gone(group: int, timeout: float = 10.0) -> None:
    """Wait until no process of the killed group is left: a rank in the middle of an fsync dies only
    when the call returns, and until then it still holds the experiment's lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    pytest.fail(f"processes of group {group} still alive {timeout} s after SIGKILL")


def _accepted(folder) -> set:
    """(trial_id, iteration, loss) of every result the experiment holds, read while it may run."""
    columns = load_experiment(folder).results
    rows = zip(columns.get("trial_id", []), columns.get("training_iteration", []), columns.get("loss", []))
    return {(int(t), int(i), round(float(v), 12)) for t, i, v in rows}


def test_sigkill_at_ten_random_moments_then_resume_loses_nothing(tmp_path):
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    shutil.copy(REPO / "tests" / "trainable_fixtures.py", project / "crash_trainable.py")
    spec = project / "crash.yaml"
    spec.write_text(f"name: crash\ntrainable: crash_trainable:slow_counter\nmetric: loss\n"
                    f"num_samples: {TRIALS}\nspace: {{x: {{uniform: [0, 1]}}, epochs: {EPOCHS}, sleep: 0.05}}\n"
                    "storage: runs\n")
    folder = project / "runs" / "crash"
    # in elsewhere/, the same relative path holds a stranger's files: never read, never deleted
    stranger = elsewhere / "runs" / "crash" / "trials" / "000000" / "checkpoint_000001.h5"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"a stranger's file")
    env = _env({"HPCTUNE_SNAPSHOT_INTERVAL": "0.3"})  # snapshots, parts and journal rotations between kills
    stop = tmp_path / "stop-reading"
    reader = subprocess.Popen([sys.executable, str(REPO / "tests" / "scripts" / "reader_loop.py"), str(folder),
                               str(stop)], env=env, stdout=subprocess.PIPE, text=True)
    rng = random.Random(20261123)
    kills, durable, resumed = 0, set(), 0
    while kills < 10:
        resuming = is_experiment(folder)
        command = ["resume", str(folder)] if resuming else ["run", str(spec)]
        process = subprocess.Popen([mpiexec_path(), "-n", "3", str(BIN / "hpctune"), *command],
                                   cwd=elsewhere if resuming else project, env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
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
        _wait_until_gone(process.pid)
        kills += 1
        resumed += resuming
        if is_experiment(folder):
            with h5py.File(folder / "experiment.h5", "r") as f:  # plain h5py, no repair
                assert f.attrs["format"] == "hpctune-experiment"
            after = _accepted(folder)
            assert load_experiment(folder).status == "interrupted"  # no coordinator holds it any more
            assert before <= after, "a result that was durable before the kill is gone"
            assert durable <= after
            durable = after
    assert resumed >= 8
    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    stop.touch()
    reads, _ = reader.communicate(timeout=60)
    assert reader.returncode == 0, reads
    assert int(reads.split()[-1]) > 50  # it really read while the experiment ran
    analysis = hpctune.Analysis(folder)
    assert len(analysis.trials) == TRIALS  # num_samples counts over the whole experiment
    assert analysis.trials["config/x"].nunique() == TRIALS  # and the searcher repeated no config
    assert set(analysis.trials.state) == {"TERMINATED"}
    for trial_id, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, EPOCHS + 1)), trial_id  # no gap, no duplicate
    assert durable <= _accepted(folder)
    # trials cut by a kill restarted from a checkpoint (found from elsewhere/), not from scratch
    assert (analysis.results.started_from > 0).any()
    assert stranger.read_bytes() == b"a stranger's file"
