"""What a resumed experiment may take from an edited spec (``hpctune run SPEC --resume``, which every
Slurm allocation runs), and the one-line refusal of everything else, with nothing touched."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import hpctune

from conftest import kill_run, start_run, wait_until

pytestmark = pytest.mark.mpi

ALLOWED = ("only num_samples (to grow it), time_budget_s, budget, max_failures, checkpoint_keep and tensorboard may "
           "change")


def _pbt_spec(tmp_path: Path, name: str, **changes) -> Path:
    fields = {"perturbation_interval": 3, "quantile_fraction": 0.25, "max_t": None, "num_samples": 4,
              "steps": 24, "sleep": 0.05, "synch": "false", "scheduler": "pbt"}
    fields.update(changes)
    if fields["scheduler"] == "pbt":
        scheduler = (f"{{type: pbt, perturbation_interval: {fields['perturbation_interval']}, "
                     f"quantile_fraction: {fields['quantile_fraction']}, synch: {fields['synch']}}}")
    else:
        scheduler = f"{{type: asha, grace_period: 1, max_t: {fields['max_t']}, reduction_factor: 3}}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ntrainable: examples.pbt_toy:train\nmetric: Q\nmode: max\n"
                    f"num_samples: {fields['num_samples']}\nscheduler: {scheduler}\nseed: 3\n"
                    f"space: {{h0: {{uniform: [0, 1]}}, h1: {{uniform: [0, 1]}}, lr: 0.02, steps: {fields['steps']}, "
                    f"sleep: {fields['sleep']}}}\nstorage: {tmp_path / 'runs'}\n")
    return path


def _fingerprint(folder: Path) -> dict:
    """Every file of the experiment folder with its content's hash: 'nothing touched' is this unchanged."""
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def _killed(tmp_path: Path, spec: Path, trials: int = 2) -> Path:
    """``spec``'s experiment, killed (SIGKILL, every process) once ``trials`` of its trials have reported."""
    folder = tmp_path / "runs" / spec.stem
    start_run(spec, "spawn")
    try:
        wait_until(folder, lambda analysis: analysis.results.trial_id.nunique() >= trials,
                   f"fewer than {trials} trials reported")
    finally:
        kill_run(spec)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("changes, line", [
    ({"perturbation_interval": 5}, "scheduler.perturbation_interval: changed from 3 to 5"),
    ({"quantile_fraction": 0.5}, "scheduler.quantile_fraction: changed from 0.25 to 0.5"),
    ({"steps": 30}, "space.steps: changed from 24 to 30"),
])
def test_a_changed_scheduler_option_or_space_refuses_resume_of_a_killed_run(run_cli, tmp_path, changes, line):
    spec = _pbt_spec(tmp_path, "pk")
    folder = _killed(tmp_path, spec)
    before = _fingerprint(folder)
    _pbt_spec(tmp_path, "pk", **changes)  # the user edits the spec between two allocations
    done = run_cli("run", str(spec), "--resume", "--workers", "2")
    assert (done.returncode, done.stdout, done.stderr.strip()) == (
        2, "", f"hpctune: error: {line} since {folder} started; a resumed experiment keeps it ({ALLOWED})")
    assert _fingerprint(folder) == before  # nothing touched: the stored spec, the journal, the checkpoints
    assert hpctune.Analysis(folder).spec["scheduler"]["perturbation_interval"] == 3


def test_an_asha_max_t_lowered_is_refused_not_a_traceback(run_cli, tmp_path):
    spec = _pbt_spec(tmp_path, "ak", scheduler="asha", max_t=9, steps=9, sleep=0, num_samples=3)
    folder = tmp_path / "runs" / "ak"
    assert run_cli("run", str(spec), "--workers", "2").returncode == 0
    _pbt_spec(tmp_path, "ak", scheduler="asha", max_t=3, steps=9, sleep=0, num_samples=5)
    before = _fingerprint(folder)
    done = run_cli("run", str(spec), "--resume", "--workers", "2")
    assert (done.returncode, done.stderr.strip()) == (
        2, f"hpctune: error: scheduler.max_t: changed from 9 to 3 since {folder} started; a resumed experiment "
           f"keeps it ({ALLOWED})")
    assert _fingerprint(folder) == before


def _local(tmp_path, **changes):
    from trainable_fixtures import quick

    kwargs = dict(space={"x": hpctune.uniform(0, 1), "epochs": 2}, metric="loss", num_samples=2, scheduler="fifo",
                  storage=str(tmp_path), name="r", backend="local", verbose=0)
    kwargs.update(changes)
    return hpctune.run(quick, **kwargs)


@pytest.mark.parametrize("changes, line", [
    ({"space": {"x": hpctune.uniform(0, 2), "epochs": 2}}, "space.x.uniform: changed from [0, 1] to [0, 2]"),
    ({"metric": "accuracy"}, 'metric: changed from "loss" to "accuracy"'),
    ({"mode": "max"}, 'mode: changed from "min" to "max"'),
    ({"seed": 4}, "seed: changed from 0 to 4"),
    ({"stop": {"loss": 0.1}}, "stop.loss: changed from (not set) to 0.1"),
    ({"searcher": {"type": "random", "seed": 3}}, "searcher.seed: changed from null to 3"),
    ({"scheduler": {"type": "asha", "max_t": 2}}, 'scheduler.type: changed from "fifo" to "asha"'),
    ({"resources": {"ranks_per_trial": 2}}, "resources.ranks_per_trial: changed from 1 to 2"),
    ({"policy": {"type": "plateau_lr", "key": "x"}}, 'policy: changed from null to {"type": "plateau_lr", '
                                                     '"key": "x"}'),
    ({"num_samples": 1}, "num_samples: 1 is below the experiment's num_samples (2) in {folder}: an experiment "
                         "grows, never shrinks"),
])
def test_every_field_a_resumed_experiment_keeps_is_refused_naming_old_and_new(tmp_path, changes, line):
    _local(tmp_path)
    folder = tmp_path / "r"
    with pytest.raises(hpctune.SpecError) as info:
        _local(tmp_path, resume=True, **changes)
    expected = line.format(folder=folder) if "{folder}" in line else (
        f"{line} since {folder} started; a resumed experiment keeps it ({ALLOWED})")
    assert str(info.value) == expected


def test_spelling_out_a_default_is_no_change(tmp_path):
    _local(tmp_path, scheduler={"type": "asha", "max_t": 2})
    again = _local(tmp_path, resume=True, scheduler={"type": "asha", "max_t": 2, "grace_period": 1,
                                                    "reduction_factor": 3, "brackets": 1})
    assert again.status == "finished" and len(again.trials) == 2


def test_what_may_change_is_taken_and_stored(tmp_path):
    _local(tmp_path)
    grown = _local(tmp_path, resume=True, num_samples=3, max_failures=2, checkpoint_keep=4, time_budget_s=600,
                   tensorboard=False)
    assert len(grown.trials) == 3
    stored = hpctune.Analysis(tmp_path / "r").spec
    assert (stored["num_samples"], stored["max_failures"], stored["checkpoint_keep"], stored["time_budget_s"],
            stored["tensorboard"]) == (3, 2, 4, 600.0, False)


def test_submit_refuses_a_changed_spec_before_queueing(run_cli, tmp_path):
    spec = _pbt_spec(tmp_path, "sq", scheduler="asha", max_t=3, steps=3, sleep=0, num_samples=2)
    assert run_cli("run", str(spec), "--workers", "2").returncode == 0
    _pbt_spec(tmp_path, "sq", scheduler="asha", max_t=9, steps=3, sleep=0, num_samples=2)
    done = run_cli("submit", str(spec), "--tasks-per-node", "3", "--time", "5", "--dry-run")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip().startswith("hpctune: error: scheduler.max_t: changed from 3 to 9 since")


def test_a_field_the_stored_spec_predates_counts_as_its_default(tmp_path):
    """An experiment stored before a spec field existed (no ``policy`` in its spec) resumes unchanged."""
    import h5py

    _local(tmp_path, num_samples=1)
    head = tmp_path / "r" / "experiment.h5"
    with h5py.File(head, "r+") as f:
        stored = json.loads(f["spec"].asstr()[()])
        del stored["policy"], stored["stop"]
        del f["spec"]
        f["spec"] = json.dumps(stored)
    grown = _local(tmp_path, resume=True, num_samples=2)
    assert len(grown.trials) == 2
