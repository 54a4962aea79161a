"""Backends by name: the registry, ``auto``, and the messages for a bad choice (no MPI started)."""
from __future__ import annotations

import pytest

from hpctune.backends import BACKEND_NAMES, BACKENDS, LocalBackend, MPIBackend, make_backend
from hpctune.errors import SpecError


def _no_mpi(monkeypatch):
    monkeypatch.setattr("hpctune.backends.mpi.launch.import_mpi", lambda: None)


def test_every_name_is_auto_or_registered():
    assert set(BACKEND_NAMES) == {"auto", *BACKENDS.names()}
    assert (BACKENDS.get("local"), BACKENDS.get("mpi")) == (LocalBackend, MPIBackend)


@pytest.mark.parametrize("name, workers, message", [
    ("gpu", None, "backend: must be 'auto', 'mpi', 'local' or 'sim', got 'gpu'"),
    ("local", 0, "workers: must be a positive integer, got 0"),
    ("local", True, "workers: must be a positive integer, got True"),
    ("local", 2.0, "workers: must be a positive integer, got 2.0"),
])
def test_bad_choice(name, workers, message):
    with pytest.raises(SpecError) as info:
        make_backend(name, workers)
    assert str(info.value) == message


def test_local_is_in_process_and_keeps_the_trainable():
    def train(config):
        pass

    backend = make_backend("local", trainable=train)
    assert isinstance(backend, LocalBackend) and not backend.is_worker and backend.trainable is train


def test_auto_without_mpi4py_says_so_and_runs_locally(monkeypatch, capsys):
    _no_mpi(monkeypatch)
    assert isinstance(make_backend("auto", verbose=0), LocalBackend)
    assert capsys.readouterr().err == ""
    assert isinstance(make_backend("auto"), LocalBackend)
    assert capsys.readouterr().err == "[hpctune] mpi4py is not available: running trials in this process, one at a time\n"


def test_mpi_without_mpi4py_is_bad_input(monkeypatch):
    _no_mpi(monkeypatch)
    with pytest.raises(SpecError) as info:
        make_backend("mpi")
    assert str(info.value) == "backend: mpi4py is not installed (pip install 'hpctune[mpich]')"


@pytest.mark.mpi
@pytest.mark.parametrize("mpi_ranks, extra", [(3, ()), (None, ("--workers", "2"))])
def test_a_bad_worker_timeout_is_refused_at_once(run_cli, mpi_ranks, extra, tmp_path):
    """Refused before workers are spawned or waited for: every rank of an mpiexec world is let go."""
    done = run_cli("run", "examples/quickstart.yaml", "--storage", str(tmp_path), *extra, mpi_ranks=mpi_ranks,
                   env={"HPCTUNE_WORKER_TIMEOUT": "soon"}, timeout=30)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == "hpctune: error: HPCTUNE_WORKER_TIMEOUT: expected seconds, got 'soon'"
    assert list(tmp_path.iterdir()) == []     # no experiment left behind
