"""Growing an experiment across allocations: ``hpctune resume DIR --num-samples N``."""
from __future__ import annotations

import pytest

import hpctune

pytestmark = pytest.mark.mpi


def _spec(tmp_path, name: str, num_samples: int) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ntrainable: trainable_fixtures:quick\nmetric: loss\nnum_samples: {num_samples}\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 2}}\nseed: 7\nstorage: {tmp_path / 'runs'}\n")
    return str(path)


def test_more_samples_grow_a_finished_experiment_as_if_asked_for_from_the_start(run_cli, tmp_path):
    folder = tmp_path / "runs" / "grown"
    assert run_cli("run", _spec(tmp_path, "grown", 3), "--workers", "2").returncode == 0
    before = hpctune.Analysis(folder).trials
    done = run_cli("resume", str(folder), "--num-samples", "5", "--workers", "2")
    assert done.returncode == 0, done.stderr
    grown = hpctune.Analysis(folder)
    assert grown.status == "finished" and grown.spec["num_samples"] == 5
    assert len(grown.trials) == 5 and set(grown.trials.state) == {"TERMINATED"}
    assert list(grown.trials["config/x"][:3]) == list(before["config/x"])  # the first three untouched
    # the searcher went on where it was: the same five configs as a run asked for five at once
    assert run_cli("run", _spec(tmp_path, "five", 5), "--workers", "2").returncode == 0
    assert list(grown.trials["config/x"]) == list(hpctune.Analysis(tmp_path / "runs" / "five").trials["config/x"])
    assert grown.results.groupby("trial_id").training_iteration.max().tolist() == [2] * 5


def test_an_experiment_never_shrinks(run_cli, tmp_path):
    folder = tmp_path / "runs" / "small"
    assert run_cli("run", _spec(tmp_path, "small", 3), "--workers", "2").returncode == 0
    done = run_cli("resume", str(folder), "--num-samples", "2")
    assert (done.returncode, done.stderr.strip()) == (
        2, "hpctune: error: --num-samples: 2 is below the experiment's num_samples (3): an experiment grows, "
           "never shrinks")
    assert hpctune.Analysis(folder).spec["num_samples"] == 3
