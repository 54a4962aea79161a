"""When trials stop by the spec: time_budget_s (no new trial after the budget, running trials end at
their next result), and a ``stop`` criterion no result reports (a warning, once)."""
from __future__ import annotations

import time

import pytest

import hpctune
from trainable_fixtures import slow_counter


@pytest.mark.parametrize("backend", ["local", "mpi"])
def test_time_budget_ends_the_experiment(tmp_path, backend):
    started = time.monotonic()
    analysis = hpctune.run(slow_counter, space={"x": hpctune.uniform(0, 1), "epochs": 50, "sleep": 0.05},
                           metric="loss", num_samples=200, time_budget_s=1.5, storage=str(tmp_path),
                           name="budget", backend=backend, workers=2, verbose=0)
    took = time.monotonic() - started
    assert took < 15
    assert analysis.status == "finished"
    assert 1 <= len(analysis.trials) < 200
    assert set(analysis.trials.state) == {"TERMINATED"}
    assert "time budget spent" in set(analysis.trials.end_reason)
    last_start = analysis.segments.start.max() - analysis.segments.start.min()
    assert last_start < 1.5 + 0.5  # nothing started after the budget
    for _, rows in analysis.results.groupby("trial_id"):
        assert sorted(rows.training_iteration) == list(range(1, len(rows) + 1))


def test_stop_key_never_reported_warns_once(run_cli, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("name: s\ntrainable: trainable_fixtures:quick\nmetric: loss\nnum_samples: 3\n"
                    "space: {x: 0.5, epochs: 3}\nstop: {accuracy: 0.9, training_iteration: 2}\n"
                    f"storage: {tmp_path}\n")
    done = run_cli("run", str(spec), "--backend", "local")
    assert done.returncode == 0, done.stderr
    warning = ("[hpctune s] warning: stop.accuracy: the first result has no 'accuracy' (it reported: loss); "
               "this criterion stops only trials that report it")
    assert done.stderr.splitlines().count(warning) == 1
    assert set(hpctune.Analysis(tmp_path / "s").trials.training_iteration) == {2}  # the other key still stops
