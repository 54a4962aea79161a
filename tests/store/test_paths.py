"""Checkpoint paths are relative to the experiment folder: resume works from any working folder, and
a stored path that leads outside the folder is refused, never opened and never deleted."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import h5py
import pytest

import hpctune
from hpctune.store import is_experiment, load_experiment

from conftest import BIN, REPO, _env


def _interrupted(tmp_path):
    """A project folder with its own trainable module and relative storage, run there, stopped by Ctrl-C."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "tests" / "trainable_fixtures.py", project / "my_trainable.py")
    (project / "p.yaml").write_text("name: p\ntrainable: my_trainable:slow_counter\nmetric: loss\nnum_samples: 2\n"
                                    "space: {x: {uniform: [0, 1]}, epochs: 12, sleep: 0.05}\nstorage: runs\n")
    env = _env({"HPCTUNE_SNAPSHOT_INTERVAL": "0"})
    process = subprocess.Popen([str(BIN / "hpctune"), "run", "p.yaml", "--backend", "local"], cwd=project, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder = project / "runs" / "p"
    while not (is_experiment(folder) and len(load_experiment(folder).results.get("trial_id", ())) >= 4):
        time.sleep(0.05)
        assert process.poll() is None, process.stderr.read()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 1
    return folder, env


def test_resume_from_another_working_folder_continues_from_the_checkpoints(tmp_path):
    folder, env = _interrupted(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    stranger = elsewhere / "runs" / "p" / "trials" / "000000" / "checkpoint_000004.h5"
    stranger.parent.mkdir(parents=True)
    stranger.write_bytes(b"not ours")  # what the old relative paths pointed at from here
    paused = hpctune.Analysis(folder).trials.set_index("trial_id")
    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder), "--backend", "local"], cwd=elsewhere,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(folder)
    assert set(analysis.trials.state) == {"TERMINATED"} and set(analysis.trials.num_failures) == {0}
    for trial_id, rows in analysis.results.groupby("trial_id"):
        assert list(rows.training_iteration) == list(range(1, 13))
        start = paused.training_iteration.get(trial_id, 0)  # trials not started yet start at 0
        assert (rows[rows.training_iteration > start].started_from == start).all()
    assert paused.training_iteration.max() >= 4
    assert stranger.read_bytes() == b"not ours"


@pytest.mark.parametrize("edit", ["absolute", "dotdot", "link"])
def test_a_stored_checkpoint_outside_the_folder_is_refused_and_kept(tmp_path, edit):
    folder, env = _interrupted(tmp_path)
    victim = tmp_path / "victim.h5"
    victim.write_bytes(b"precious")
    trial_id = 0
    with h5py.File(folder / "experiment.h5", "r+") as f:  # what an edited (or malicious) snapshot says
        ids = list(f["trials/trial_id"][()])
        row = ids.index(trial_id)
        if edit == "absolute":
            new = str(victim)
        elif edit == "dotdot":
            new = f"trials/{trial_id:06d}/../../../../victim.h5"
        else:  # a link inside the trial's folder that leads outside
            new = f"trials/{trial_id:06d}/checkpoint_999999.h5"
            os.symlink(victim, folder / new)
        paths = list(f["trials/checkpoint"].asstr()[()])
        paths[row] = new
        del f["trials/checkpoint"]  # written anew: a fixed-length column cannot take a longer path in place
        f["trials"].create_dataset("checkpoint", data=paths, dtype=h5py.string_dtype()).attrs["name"] = "checkpoint"
    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder), "--backend", "local"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"hpctune: error: checkpoint: trial 0's checkpoint {new!r} ")
    assert line.endswith("; refusing to open or delete it")
    assert victim.read_bytes() == b"precious"
