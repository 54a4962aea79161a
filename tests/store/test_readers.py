"""Readers work while an experiment runs: ``hpctune status`` and Analysis from another process, and a
reader in a loop that sees a consistent prefix while snapshots, part files and the journal rotate."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

import hpctune

from conftest import BIN, REPO, _env


@pytest.mark.mpi
def test_status_and_analysis_while_it_runs_from_another_process(tmp_path):
    spec = tmp_path / "live.yaml"
    spec.write_text("name: live\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 4\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 15, sleep: 0.1}}\nstorage: {tmp_path}\n")
    process = subprocess.Popen([str(BIN / "hpctune"), "run", str(spec), "--workers", "2"], env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = []
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if (tmp_path / "live" / "experiment.h5").exists():
                status = subprocess.run([str(BIN / "hpctune"), "status", str(tmp_path / "live")], env=_env(),
                                        capture_output=True, text=True, timeout=30)
                assert status.returncode == 0, status.stderr
                seen.append((status.stdout, len(hpctune.Analysis(tmp_path / "live").results)))
            time.sleep(0.3)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    running = [text for text, _ in seen if "live: running" in text and "RUNNING    2" in text]
    assert running, seen  # status saw the experiment mid-run, with both workers busy
    counts = [n for _, n in seen]
    assert counts == sorted(counts) and any(0 < n < 60 for n in counts)  # grew while it ran, never shrank
    assert len(hpctune.Analysis(tmp_path / "live").results) == 60


@pytest.mark.mpi
def test_readers_see_a_consistent_prefix_while_snapshots_rotate(tmp_path):
    """Many snapshots, part files and journal rotations while a reader reads in a loop: its counts
    never go down and no trial ever shows a gap (tests/scripts/reader_loop.py checks every read)."""
    spec = tmp_path / "rot.yaml"
    spec.write_text("name: rot\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 30\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 20, sleep: 0.002}}\nstorage: {tmp_path}\n")
    env = _env({"HPCTUNE_SNAPSHOT_INTERVAL": "0.02"})
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, str(REPO / "tests" / "scripts" / "reader_loop.py"),
                               str(tmp_path / "rot"), str(stop)], env=env, stdout=subprocess.PIPE, text=True)
    done = subprocess.run([str(BIN / "hpctune"), "run", str(spec), "--workers", "2"], env=env,
                          capture_output=True, text=True, timeout=120)
    stop.touch()
    out, _ = reader.communicate(timeout=60)
    assert done.returncode == 0, done.stderr
    assert reader.returncode == 0, out
    assert int(out.split()[-1]) >= 10
    assert len(hpctune.Analysis(tmp_path / "rot").results) == 600
