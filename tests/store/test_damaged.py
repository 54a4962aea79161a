"""A damaged experiment.h5: readers and resume fall back to the previous snapshot and the journal;
with no readable snapshot, one line says what is damaged and what is intact."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import hpctune
from hpctune.store import ExperimentDamaged, is_experiment, load_experiment

from conftest import BIN, _env
from trainable_fixtures import quick

DAMAGE = {
    "empty": lambda path: path.write_bytes(b""),
    "truncated": lambda path: os.truncate(path, path.stat().st_size // 2),
    "garbage": lambda path: path.write_bytes(os.urandom(4096)),
}
REASON = {"empty": "empty file (0 bytes)", "truncated": "truncated file", "garbage": "file signature not found"}


def _interrupted_experiment(tmp_path, epochs=8):
    """An experiment stopped by Ctrl-C in the middle (local backend: no MPI needed)."""
    spec = tmp_path / "d.yaml"
    spec.write_text("name: d\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 3\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: {epochs}, sleep: 0.05}}\nstorage: {tmp_path}\n")
    env = _env({"HPCTUNE_SNAPSHOT_INTERVAL": "0"})
    process = subprocess.Popen([str(BIN / "hpctune"), "run", str(spec), "--backend", "local"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    folder = tmp_path / "d"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if is_experiment(folder) and len(load_experiment(folder).results.get("trial_id", ())) >= 10:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 1, process.stderr.read()
    return folder, env


@pytest.mark.parametrize("how", list(DAMAGE))
def test_damaged_snapshot_readers_and_resume_use_the_previous_one(tmp_path, how):
    folder, env = _interrupted_experiment(tmp_path)
    before = hpctune.Analysis(folder)
    DAMAGE[how](folder / "experiment.h5")
    status = subprocess.run([str(BIN / "hpctune"), "status", str(folder)], env=env, capture_output=True, text=True)
    assert status.returncode == 0
    (line,) = status.stderr.splitlines()
    assert line.startswith(f"hpctune: warning: {folder / 'experiment.h5'} is damaged ({REASON[how]}")
    assert line.endswith("); read experiment.prev.h5 and the journal after it instead")
    assert f"d: interrupted, {len(before.trials)} trials, {len(before.results)} results" in status.stdout
    after = hpctune.Analysis(folder)
    assert after.results.equals(before.results)  # nothing lost: the previous snapshot + the journal

    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder), "--backend", "local"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "is damaged" in done.stderr
    final = hpctune.Analysis(folder)
    assert final.notes == [] and set(final.trials.state) == {"TERMINATED"}
    for _, rows in final.results.groupby("trial_id"):
        assert list(rows.training_iteration) == list(range(1, 9))


def test_no_readable_snapshot_says_what_is_left_in_one_line(tmp_path):
    folder, env = _interrupted_experiment(tmp_path)
    rows = len(hpctune.Analysis(folder).results)
    DAMAGE["garbage"](folder / "experiment.h5")
    DAMAGE["empty"](folder / "experiment.prev.h5")
    for command in ("status", "analyze", "resume"):
        done = subprocess.run([str(BIN / "hpctune"), command, str(folder)], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 1, command
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith(
            f"hpctune: error: {folder}: no snapshot can be read (experiment.h5: file signature not found; "
            "experiment.prev.h5: empty file (0 bytes)), so the experiment cannot be resumed; intact: ")
        parted = int(lines[0].split("intact: ")[1].split()[0])
        assert 0 < parted <= rows  # the parts hold results (the rest is in the journal)


def test_an_experiment_of_another_format_says_so_in_one_line(run_cli, tmp_path):
    import h5py

    folder = tmp_path / "old"
    folder.mkdir()
    with h5py.File(folder / "experiment.h5", "w") as f:  # what hpctune 0.1 wrote at the top of its file
        f.attrs.update({"format": "hpctune-experiment", "format_version": 1, "hpctune_version": "0.1.0"})
    for command in ("status", "resume"):
        done = run_cli(command, str(folder))
        assert (done.returncode, done.stderr.strip()) == (
            1, f"hpctune: error: {folder / 'experiment.h5'}: written in format 1 by hpctune 0.1.0; this hpctune "
               "reads format 2 (docs/hdf5-layout.md)")


def test_a_journal_record_of_unknown_kind_stops_readers_and_resume(tmp_path):
    run = dict(space={"x": hpctune.uniform(0, 1), "epochs": 2}, metric="loss", num_samples=2,
               storage=str(tmp_path), name="k", backend="local", verbose=0)
    hpctune.run(quick, **run)
    folder = tmp_path / "k"
    seq = load_experiment(folder).last_seq + 1
    (folder / "journal" / f"{seq:012d}.jsonl").write_text(f'{{"t":0,"k":"rewind","seq":{seq}}}\n')
    expected = f"{folder}: journal record {seq}: unknown record kind 'rewind' (known: ready, result, "
    with pytest.raises(ExperimentDamaged) as info:
        load_experiment(folder)
    assert str(info.value).startswith(expected)
    with pytest.raises(ExperimentDamaged) as info:
        hpctune.run(quick, resume=True, **run)
    assert str(info.value).startswith(expected)
