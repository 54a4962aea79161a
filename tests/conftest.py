"""Shared fixtures: the repository root, the CLI as a subprocess, and mpiexec."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
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


def start_run(spec, launcher: str, stdout=subprocess.DEVNULL, env: dict | None = None) -> subprocess.Popen:
    """``hpctune run SPEC`` in the background, in its own session (for killpg): 2 workers,
    spawned (``launcher="spawn"``) or under ``mpiexec -n 3``."""
    command = [str(BIN / "hpctune"), "run", str(spec)]
    command = [mpiexec_path(), "-n", "3", *command] if launcher == "mpiexec" else [*command, "--workers", "2"]
    return subprocess.Popen(command, env=_env(env), start_new_session=True, stdout=stdout,
                            stderr=subprocess.PIPE, text=True)


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
