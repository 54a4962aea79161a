"""A worker rank lost: the job ends non-zero within 30 s instead of hanging, and resume completes it;
a coordinator that was itself stopped for a while blames no worker."""
from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import assert_finished, resume_to_the_end, run_pids, running

pytestmark = [pytest.mark.mpi, pytest.mark.slow]


@pytest.mark.parametrize("launcher, signum", [("mpiexec", signal.SIGKILL), ("spawn", signal.SIGKILL),
                                              ("mpiexec", signal.SIGSTOP)])
def test_lost_worker_ends_the_job_then_resume_completes(tmp_path, launcher, signum):
    with running(tmp_path, launcher, "lost", num_samples=6, epochs=8, sleep=0.1) as (process, folder, spec):
        victim = run_pids(spec, rank=1)  # of this run only: other runs may share the node
        assert len(victim) == 1 and process.poll() is None
        lost_at = time.monotonic()
        os.kill(victim[0], signum)  # SIGSTOP: a hung node, which no launcher notices
        _, stderr = process.communicate(timeout=30)
    assert process.returncode != 0
    assert time.monotonic() - lost_at < 30
    if signum == signal.SIGSTOP:  # hpctune's own watchdog noticed (default: 20 s of silence)
        assert "hpctune: error: worker rank 1 stopped answering" in stderr
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
