"""Shared fixtures: the repository root, the CLI as a subprocess, and mpiexec."""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("PYTHONFAULTHANDLER", "1")  # a crash of any hpctune process shows its Python stack
    env.update(extra or {})
    return env


@pytest.fixture(scope="session")
def slurm():
    """Slurm answers here; in CI (HPCTUNE_CI=1, where .ci/run starts it) a Slurm that is not up fails."""
    up = shutil.which("sbatch") is not None and subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.split()[:1] in (["idle"], ["mixed"],
                                                                                              ["allocated"])
    if not up:
        if os.environ.get("HPCTUNE_CI"):
            pytest.fail("Slurm is not up (scripts/local-slurm.sh should have started it)")
        pytest.skip("no Slurm here (scripts/local-slurm.sh starts one, as root)")


CLUSTER_CONF = Path(os.environ.get("HPCTUNE_CLUSTER_DIR", "/var/lib/hpctune-cluster")) / "slurm.conf"


def _on_cluster(*command: str) -> str:
    """What a Slurm command printed, run against the virtual cluster."""
    return subprocess.run(list(command), capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, SLURM_CONF=str(CLUSTER_CONF))).stdout


def cluster_queue() -> str:
    """The virtual cluster's queue as ``squeue`` shows it (for assertion messages)."""
    return _on_cluster("squeue", "-o", "%i %T %R %N")


@pytest.fixture
def cluster(monkeypatch):
    """The multi-node Slurm cluster of ``scripts/virtual-cluster.sh`` (node1..node3), every node idle
    and no job queued; Slurm's commands, here and in what the test starts, reach it (``SLURM_CONF``).
    A job the test leaves behind (it failed before its job ended) is cancelled afterwards, so that the
    next test finds the nodes free. In CI (HPCTUNE_CI=1, where .ci/run starts it) a cluster that is
    not up fails."""
    nodes: dict[str, str] = {}
    jobs: list[str] = []
    deadline = time.monotonic() + 30  # a node may still be completing the previous test's job
    while shutil.which("sinfo") is not None and CLUSTER_CONF.exists():
        states = _on_cluster("sinfo", "-h", "-N", "-o", "%N %T").split("\n")
        nodes = dict(line.split() for line in states if line.strip())
        jobs = _on_cluster("squeue", "-h", "-o", "%i").split()
        if not nodes or (set(nodes.values()) == {"idle"} and not jobs) or time.monotonic() > deadline:
            break
        time.sleep(1)
    if not nodes or set(nodes.values()) != {"idle"} or jobs:
        if os.environ.get("HPCTUNE_CI") or jobs:
            pytest.fail(f"the virtual cluster is not up and idle ({nodes or 'no answer'}; queued: {jobs}): "
                        "scripts/virtual-cluster.sh up")
        pytest.skip("no virtual cluster here (scripts/virtual-cluster.sh up starts one, as root)")
    monkeypatch.setenv("SLURM_CONF", str(CLUSTER_CONF))
    # MPICH over libfabric's tcp provider, not UCX: UCX's addresses make a PMI value long enough that
    # MPICH splits it, and Slurm 22.05's pmi2 plugin then misreads a piece now and then ("mpi/pmi2:
    # value not properly terminated"), the ranks waiting in MPI_Init until the time limit (README)
    monkeypatch.setenv("MPIR_CVAR_CH4_NETMOD", "ofi")
    monkeypatch.setenv("FI_PROVIDER", "tcp")
    yield sorted(nodes)
    left = _on_cluster("squeue", "-h", "-o", "%i").split()
    if left:
        _on_cluster("scancel", *left)


@pytest.fixture
def run_cli(tmp_path):
    """Run ``hpctune ARGS`` (optionally under ``mpiexec -n N``) in the repository root."""

    def run(*args: str, mpi_ranks: int | None = None, timeout: float = 240, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        command = [str(BIN / "hpctune"), *args]
        if mpi_ranks:
            command = [mpiexec_path(), "-n", str(mpi_ranks), *command]
        return subprocess.run(command, cwd=cwd or REPO, env=_env(env), capture_output=True, text=True,
                              timeout=timeout)

    return run


@pytest.fixture
def run_python(tmp_path):
    """Run ``python SCRIPT ARGS`` (optionally under mpiexec) in the repository root."""

    def run(*args: str, mpi_ranks: int | None = None, timeout: float = 240, env: dict | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, *args]
        if mpi_ranks:
            command = [mpiexec_path(), "-n", str(mpi_ranks), *command]
        return subprocess.run(command, cwd=cwd or REPO, env=_env(env), capture_output=True, text=True,
                              timeout=timeout)

    return run


def mpiexec_path() -> str:
    found = shutil.which("mpiexec", path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail("mpiexec not found: install the test extra (pip install -e '.[test]')")
    return found


def slow_counter_spec(tmp_path: Path, name: str, num_samples: int, epochs: int, sleep: float) -> Path:
    """A spec for ``trainable_fixtures:slow_counter`` (``sleep`` seconds an iteration), stored in tmp_path/runs."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"name: {name}\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\n"
                    f"num_samples: {num_samples}\nspace: {{x: {{uniform: [0, 1]}}, epochs: {epochs}, "
                    f"sleep: {sleep}}}\nstorage: {tmp_path / 'runs'}\n")
    return spec


def assert_finished(folder: Path, trials: int, epochs: int):
    """The experiment finished: each trial TERMINATED, with iterations 1..epochs once each; its Analysis."""
    import hpctune

    analysis = hpctune.Analysis(folder)
    assert analysis.status == "finished"
    assert len(analysis.trials) == trials and set(analysis.trials.state) == {"TERMINATED"}
    for _, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, epochs + 1))
    return analysis


def resume_to_the_end(folder: Path, trials: int, epochs: int):
    """``hpctune resume`` finishes the experiment (see :func:`assert_finished`); its Analysis."""
    done = subprocess.run([str(BIN / "hpctune"), "resume", str(folder), "--workers", "2"], env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return assert_finished(folder, trials, epochs)


def start_run(spec, launcher: str, stdout=subprocess.DEVNULL, env: dict | None = None) -> subprocess.Popen:
    """``hpctune run SPEC`` in the background, in its own session (for killpg): 2 workers,
    spawned (``launcher="spawn"``) or under ``mpiexec -n 3``. Every process of the run carries
    ``HPCTUNE_TEST_RUN=<spec>`` in its environment (see :func:`run_pids`)."""
    command = [str(BIN / "hpctune"), "run", str(spec)]
    command = [mpiexec_path(), "-n", "3", *command] if launcher == "mpiexec" else [*command, "--workers", "2"]
    return subprocess.Popen(command, env=_env({"HPCTUNE_TEST_RUN": str(spec), **(env or {})}),
                            start_new_session=True, stdout=stdout, stderr=subprocess.PIPE, text=True)


@contextmanager
def running(tmp_path: Path, launcher: str, name: str, num_samples: int, epochs: int, sleep: float,
            stdout=subprocess.DEVNULL, env: dict | None = None) -> Iterator[tuple[subprocess.Popen, Path, Path]]:
    """A :func:`slow_counter_spec` experiment started with :func:`start_run`, once two of its trials
    have reported (a fixed sleep is too short on a loaded node): ``(process, folder, spec)``.
    Whatever is left of the run is killed at the end."""
    spec = slow_counter_spec(tmp_path, name, num_samples, epochs, sleep)
    folder = tmp_path / "runs" / name
    process = start_run(spec, launcher, stdout, env)
    try:
        wait_for_results(folder)
        yield process, folder, spec
    finally:
        kill_run(spec)


def run_pids(spec, rank: int | None = None) -> list[int]:
    """Processes of the run :func:`start_run` started for ``spec`` (never another test's or user's);
    with ``rank``, only that rank's own process (0: the coordinator, 1 and 2: the workers)."""
    mark = f"HPCTUNE_TEST_RUN={spec}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
            command = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if mark in env and (rank is None or _rank_of(command, env) == rank):
            found.append(int(pid))
    return found


def kill_run(spec) -> None:
    """SIGKILL whatever is left of the run :func:`start_run` started for ``spec``."""
    for pid in run_pids(spec):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _rank_of(command: list[bytes], env: list[bytes]) -> int | None:
    """The rank a process of a run is (None: a trial process, mpiexec, hydra_pmi_proxy)."""
    pmi_rank = next((int(item[9:]) for item in env if item.startswith(b"PMI_RANK=")), None)
    if b"hpctune.backends.mpi.launch" in command:  # a spawned worker: remote rank + 1
        return pmi_rank + 1
    if command[1:2] and command[1].endswith(b"/hpctune"):  # python .../bin/hpctune run ...
        return pmi_rank or 0  # a rank under mpiexec, or the coordinator that spawned its workers
    return None


def wait_until(folder, condition, what: str, timeout: float = 60, poll: float = 0.1) -> None:
    """Wait until ``condition(hpctune.Analysis(folder))`` holds for the experiment running in
    ``folder`` (not created yet, or a table still empty, counts as not yet); else fail saying
    ``what`` did not happen."""
    import hpctune

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition(hpctune.Analysis(folder)):
                return
        except Exception:  # not created yet, or no result yet
            pass
        time.sleep(poll)
    raise AssertionError(f"{what} in {folder} within {timeout} s")


def wait_for_results(folder, trials: int = 2, timeout: float = 60) -> None:
    """Wait until ``trials`` trials of the experiment running in ``folder`` have reported."""
    wait_until(folder, lambda analysis: analysis.results.trial_id.nunique() >= trials,
               f"fewer than {trials} trials reported", timeout)


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of a few MiB (tmpfs; needs root, as CI has): ``(folder, resize)``.

    ``resize("64m")`` grows it in place, as freeing space would. Skipped where it cannot be
    mounted, except in CI (HPCTUNE_CI=1), where that is a failure.
    """
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        if os.environ.get("HPCTUNE_CI"):
            pytest.fail(f"cannot mount a tmpfs for the full-disk tests: {mounted.stderr.strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(folder)], check=True)

    try:
        yield folder, resize
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


NEEDS_TORCH = pytest.mark.skipif(importlib.util.find_spec("torch") is None and not os.environ.get("HPCTUNE_CI"),
                                 reason="gp (Optuna's GPSampler) needs torch; CI installs it (.ci/run)")
"""For tests of the ``gp`` searcher: skipped without PyTorch, except in CI, where that fails."""
