"""A worker rank lost: the job ends (a hung one: exit 1, by hpctune's watchdog) and resume completes
it; a coordinator that was itself stopped for a while blames no worker."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest

import hpctune

from conftest import BIN, _env, assert_finished, resume_to_the_end, run_pids, running, slow_counter_spec

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


def _left_after(spec, seconds: float) -> list[int]:
    """Processes of the run still there ``seconds`` after it ended (the process manager ends the ranks)."""
    deadline = time.monotonic() + seconds
    while run_pids(spec) and time.monotonic() < deadline:
        time.sleep(0.1)
    return run_pids(spec)


@pytest.mark.parametrize("launcher, signum", [("mpiexec", signal.SIGKILL), ("spawn", signal.SIGKILL),
                                              ("mpiexec", signal.SIGSTOP), ("spawn", signal.SIGSTOP)])
def test_lost_worker_ends_the_job_then_resume_completes(tmp_path, launcher, signum):
    with running(tmp_path, launcher, "lost", num_samples=6, epochs=8, sleep=0.1,
                 env={"HPCTUNE_WORKER_TIMEOUT": "5"}) as (process, folder, spec):
        victim = run_pids(spec, rank=1)
        assert len(victim) == 1 and process.poll() is None
        lost_at = time.monotonic()
        os.kill(victim[0], signum)  # SIGSTOP: a hung node, which no launcher notices
        _, stderr = process.communicate(timeout=30)
        took = time.monotonic() - lost_at
        left = _left_after(spec, 5)  # the process manager ended every rank, the hung one included
    assert left == []
    if launcher == "mpiexec" and signum == signal.SIGKILL:
        # hydra ends the job at once and exits with the killed rank's status (signal 9)
        assert process.returncode == 9 and took < 5, stderr
    else:  # hpctune's watchdog noticed (5 s of silence) and ended the job with exit code 1
        assert process.returncode == 1 and took < 15, stderr
        rank = "1" if signum == signal.SIGSTOP else r"[12]"  # spawned: the process manager ends both
        pattern = (rf"hpctune: error: worker rank {rank} stopped answering \(nothing for \d+ s while running "
                   rf"trial \d+\); its process or node is gone; continue it with "
                   rf"'hpctune resume {re.escape(str(folder))}'")
        assert any(re.fullmatch(pattern, line) for line in stderr.splitlines()), stderr
        assert hpctune.Analysis(folder).status == "interrupted"
    resume_to_the_end(folder, trials=6, epochs=8)


@pytest.mark.parametrize("launcher", ["spawn", "mpiexec"])
def test_frozen_coordinator_blames_no_worker(tmp_path, launcher):
    """The coordinator alone stopped for twice the worker timeout (SIGSTOP: a long GC pause, a
    swapped-out node), then continued: the silence was its own, and the experiment finishes."""
    with running(tmp_path, launcher, "frozen", num_samples=4, epochs=20, sleep=0.1,
                 env={"HPCTUNE_WORKER_TIMEOUT": "3"}) as (process, folder, spec):
        coordinator = run_pids(spec, rank=0)
        assert len(coordinator) == 1 and process.poll() is None
        os.kill(coordinator[0], signal.SIGSTOP)
        time.sleep(6)
        os.kill(coordinator[0], signal.SIGCONT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "stopped answering" not in stderr
    assert_finished(folder, trials=4, epochs=20)


def test_workers_that_cannot_start_end_the_run_with_one_line(tmp_path):
    """MPI_Comm_spawn has no time limit: spawned ranks that die at start would leave it spinning forever."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "sitecustomize.py").write_text("import os\nif 'PMI_RANK' in os.environ or 'PMI_FD' in os.environ:\n"
                                             "    os._exit(3)  # a worker rank whose environment is broken\n")
    spec = slow_counter_spec(tmp_path, "nostart", 2, 2, 0.01)
    env = _env({"HPCTUNE_SPAWN_TIMEOUT": "3"})
    env["PYTHONPATH"] = f"{broken}{os.pathsep}{env['PYTHONPATH']}"
    started = time.monotonic()
    done = subprocess.run([str(BIN / "hpctune"), "run", str(spec), "--workers", "2"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 30
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].startswith(
        "hpctune: error: the 2 spawned worker ranks did not start within 3 s (can ")
