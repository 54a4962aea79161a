"""Analysis: trials, best values and the summary come from the snapshot and the journal (their cost
follows the trials, not the results); the history is read on first use and agrees with them."""
from __future__ import annotations

import shutil

import pytest

import hpctune
from hpctune.store import ExperimentDamaged

from trainable_fixtures import quick


@pytest.mark.parametrize("mode", ["min", "max"])
def test_best_values_agree_with_the_history_and_need_none_of_it(tmp_path, run_cli, monkeypatch, mode):
    monkeypatch.setenv("HPCTUNE_SNAPSHOT_INTERVAL", "0")  # results in part files
    hpctune.run(quick, space={"x": hpctune.uniform(0, 1), "epochs": 4}, metric="loss", mode=mode, num_samples=6,
                storage=str(tmp_path), name="a", backend="local", verbose=0)
    folder = tmp_path / "a"
    full = hpctune.Analysis(folder)
    results = full.results
    best_row = results.loc[results.loss.idxmin() if mode == "min" else results.loss.idxmax()]
    assert full.best_trial_id == best_row.trial_id and full.best_value == best_row.loss
    assert full.best_iteration == best_row.training_iteration
    assert full.best_result["loss"] == best_row.loss
    per_trial = results.groupby("trial_id").loss.agg(mode)
    table = full.best_trials(top=6).set_index("trial_id")
    assert table["best_loss"].to_dict() == per_trial.to_dict()
    assert list(full.trials.loss) == list(results.groupby("trial_id").loss.last())  # last value per trial
    summary = full.summary()

    shutil.move(folder / "parts", tmp_path / "parts-away")  # no history at all now
    light = hpctune.Analysis(folder)
    assert light.summary() == summary and light.num_results == 24
    status = run_cli("status", str(folder))
    assert status.returncode == 0, status.stderr
    assert "a: finished, 6 trials, 24 results" in status.stdout
    assert f"best loss: {best_row.loss:.6g} (trial {best_row.trial_id}, iteration {best_row.training_iteration})" \
        in status.stdout
    with pytest.raises(ExperimentDamaged, match="what the snapshot lists is incomplete"):
        light.results


def test_the_closing_summary_is_the_analysis_summary_and_the_coordinator_never_imports_pandas(tmp_path, run_python):
    """The coordinator prints its closing text from its own trials, without pandas (20-30 MiB on its
    peak memory at the end of a run); Analysis.summary() gives the same text from the files."""
    script = tmp_path / "coordinator.py"
    script.write_text(
        "import sys\nimport hpctune\nfrom trainable_fixtures import quick\n"
        f"hpctune.run(quick, space={{'x': hpctune.grid([0.25, 0.5, 1.0]), 'lr': hpctune.grid([0.001, 2.5e6]), "
        f"'epochs': 3}}, metric='loss', num_samples=1, storage={str(tmp_path)!r}, name='s', workers=2)\n"
        "print('pandas imported:', 'pandas' in sys.modules)\n")
    done = run_python(str(script))
    assert done.returncode == 0, done.stderr
    printed, pandas_line = done.stdout.rstrip("\n").rsplit("\n", 1)
    assert pandas_line == "pandas imported: False"
    summary = hpctune.Analysis(tmp_path / "s").summary()
    assert printed.endswith(summary), (printed, summary)
    lines = summary.splitlines()
    assert lines[0] == "Experiment s: finished, 6 trials (6 TERMINATED), 18 results"
    assert lines[1] == "Best trials by loss (min):"
    assert lines[2].split() == ["trial_id", "state", "training_iteration", "best_loss", "config/x", "config/lr",
                                "config/epochs"]
    assert len(lines) == 2 + 1 + 5 + 1 and lines[-1] == f"Results: {tmp_path / 's' / 'experiment.h5'}"
    assert {line.split()[5] for line in lines[3:8]} <= {"0.001", "2.5e+06"}  # numbers to 6 significant digits
