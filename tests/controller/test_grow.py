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


def _pbt_spec(tmp_path, name: str, num_samples: int, synch: bool = False) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ntrainable: examples.pbt_toy:train\nmetric: Q\nmode: max\nnum_samples: {num_samples}\n"
                    f"scheduler: {{type: pbt, perturbation_interval: 3, synch: {str(synch).lower()}}}\nseed: 5\n"
                    "space: {h0: {uniform: [0, 1]}, h1: {uniform: [0, 1]}, lr: 0.02, steps: 30, sleep: 0.15}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    return str(path)


def _journal_has(folder, kind: str) -> bool:
    return any(f'"k":"{kind}"' in path.read_text() for path in (folder / "journal").glob("*.jsonl"))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["spec", "option"])
def test_a_killed_pbt_experiment_grows_alike_through_the_spec_or_the_option(run_cli, tmp_path, how):
    """The search's end was journaled after the last snapshot (the case that grew nothing, for ever)."""
    import subprocess

    from conftest import BIN, _env, kill_run, wait_until

    spec = _pbt_spec(tmp_path, "pg", 2)
    folder = tmp_path / "runs" / "pg"
    # 3 workers for 2 trials: the third asks the searcher at once, and hears that the search has ended;
    # one snapshot, at the start, so that the journal holds that end
    subprocess.Popen([str(BIN / "hpctune"), "run", spec, "--workers", "3"], start_new_session=True,
                     env=_env({"HPCTUNE_TEST_RUN": spec, "HPCTUNE_SNAPSHOT_INTERVAL": "3600"}),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(folder, lambda analysis: _journal_has(folder, "search_end"), "the search did not end", timeout=90)
    finally:
        kill_run(spec)
    # killed before its end (read as interrupted once the killed coordinator's lock is gone)
    wait_until(folder, lambda analysis: analysis.status == "interrupted", "the killed run did not read as interrupted")
    if how == "spec":
        _pbt_spec(tmp_path, "pg", 4)
        done = run_cli("run", spec, "--resume", "--workers", "2")
    else:
        done = run_cli("resume", str(folder), "--num-samples", "4", "--workers", "2")
    assert done.returncode == 0, done.stderr
    grown = hpctune.Analysis(folder)
    assert grown.status == "finished" and grown.spec["num_samples"] == 4
    assert list(grown.trials.trial_id) == list(range(4)) and set(grown.trials.state) == {"TERMINATED"}
    assert set(grown.results.trial_id) == set(range(4))  # the two new trials trained
    again = run_cli("resume", str(folder), "--num-samples", "4", "--workers", "2")  # asked twice: nothing more
    assert again.returncode == 0 and len(hpctune.Analysis(folder).trials) == 4


def test_synchronous_pbt_refuses_to_grow_either_way(run_cli, tmp_path):
    spec = _pbt_spec(tmp_path, "ps", 2, synch=True)
    folder = tmp_path / "runs" / "ps"
    assert run_cli("run", spec, "--workers", "2").returncode == 0
    why = ("an experiment under scheduler 'pbt' cannot grow: with synch: true its rounds rank the whole "
           "population at the same iteration, and a trial added now would start at iteration 0; start a new "
           "experiment instead")
    done = run_cli("resume", str(folder), "--num-samples", "3")
    assert (done.returncode, done.stderr.strip()) == (2, f"hpctune: error: --num-samples: {why}")
    _pbt_spec(tmp_path, "ps", 3, synch=True)
    done = run_cli("run", spec, "--resume")
    assert (done.returncode, done.stderr.strip()) == (2, f"hpctune: error: num_samples: {why}")
    assert hpctune.Analysis(folder).spec["num_samples"] == 2 and len(hpctune.Analysis(folder).trials) == 2


def test_grown_sha_halves_the_new_trials_in_a_bracket_of_their_own(tmp_path):
    """sha's base rung closed when the first search ended: the grown trials are halved among themselves."""
    from trainable_fixtures import quick

    def run(num_samples, resume=False):
        return hpctune.run(quick, space={"x": hpctune.uniform(0, 1), "epochs": 9}, metric="loss", seed=2,
                           num_samples=num_samples, scheduler={"type": "sha", "max_t": 9}, storage=str(tmp_path),
                           name="sg", backend="local", verbose=0, resume=resume)

    first = run(9)
    reached = first.results.groupby("trial_id").training_iteration.max()
    assert sorted(reached.tolist()) == [1] * 6 + [3] * 2 + [9]  # rungs of 9, 3, 1
    grown = run(12, resume=True)
    reached = grown.results.groupby("trial_id").training_iteration.max()
    assert reached[:9].tolist() == first.results.groupby("trial_id").training_iteration.max().tolist()
    assert sorted(reached[9:].tolist()) == [1, 1, 9]  # 3 new trials: rungs of 3, 1, 1 (at least one goes on)
    assert set(grown.trials.state) == {"TERMINATED"}
