"""A worker rank lost: the job ends non-zero within 30 s instead of hanging, and resume completes it."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

import hpctune

from conftest import BIN, _env, start_run

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


def _worker_rank_pids(spawned: bool) -> list[int]:
    """Processes of worker rank 1: the rank itself and its trial process."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            command = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if spawned and b"hpctune.backends.launch" in command and b"PMI_RANK=0" in env:
            found.append(int(pid))
        if not spawned and b"hpctune" in command and b"PMI_RANK=1" in env and b"trial_process" not in command:
            found.append(int(pid))
    return found


@pytest.mark.parametrize("launcher, signum", [("mpiexec", signal.SIGKILL), ("spawn", signal.SIGKILL),
                                              ("mpiexec", signal.SIGSTOP)])
def test_lost_worker_ends_the_job_then_resume_completes(tmp_path, launcher, signum):
    spec = tmp_path / "lost.yaml"
    spec.write_text("name: lost\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 6\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 8, sleep: 0.1}}\nstorage: {tmp_path / 'runs'}\n")
    process = start_run(spec, launcher, stdout=subprocess.DEVNULL)
    time.sleep(2.5)
    victims = _worker_rank_pids(spawned=launcher == "spawn")
    assert victims and process.poll() is None
    lost_at = time.monotonic()
    for pid in victims:  # SIGSTOP: a hung node, which no launcher notices
        os.kill(pid, signum)
    try:
        _, stderr = process.communicate(timeout=30)
    finally:
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    assert process.returncode != 0
    assert time.monotonic() - lost_at < 30
    if signum == signal.SIGSTOP:  # hpctune's own watchdog noticed (default: 20 s of silence)
        assert "hpctune: error: worker rank 1 stopped answering" in stderr
    folder = tmp_path / "runs" / "lost"
    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder), "--workers", "2"], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    analysis = hpctune.Analysis(folder)
    assert len(analysis.trials) == 6 and set(analysis.trials.state) == {"TERMINATED"}
    for _, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, 9))
