"""Each scheduler end to end on real MPI ranks: ``hpctune run`` on a tiny spec, checked with Analysis."""
from __future__ import annotations

import pytest
import yaml

import hpctune

GRID9 = {"x": {"grid": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}, "y": 0.5, "epochs": 9}
RANDOM = {"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "epochs": 9}

CASES = {
    # scheduler, searcher, space, num_samples, expected rung counts (None: checked by the invariant)
    "sha": ({"type": "sha", "grace_period": 1, "max_t": 9, "reduction_factor": 3}, "grid", GRID9, 1,
            {1: 9, 3: 3, 9: 1}),
    "asha": ({"type": "asha", "grace_period": 1, "max_t": 9, "reduction_factor": 3}, "random", RANDOM, 12, None),
    "hyperband": ({"type": "hyperband", "max_t": 9, "reduction_factor": 3}, "random", RANDOM, 17,
                  {1: 9, 3: 8, 9: 5}),
    "median": ({"type": "median", "grace_period": 2, "min_samples_required": 3}, "grid", GRID9, 1, None),
}
RUNS = [pytest.param(name, None, id=f"{name}-workers2") for name in CASES]
RUNS += [pytest.param(name, 3, id=f"{name}-mpiexec3") for name in ("sha", "asha", "hyperband")]


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name,mpi_ranks", RUNS)
def test_scheduler_end_to_end(tmp_path, run_cli, name, mpi_ranks):
    scheduler, searcher, space, num_samples, expected = CASES[name]
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({
        "name": f"e2e-{name}", "trainable": "trainables:train", "metric": "loss", "mode": "min",
        "num_samples": num_samples, "space": space, "scheduler": scheduler, "searcher": searcher,
        "storage": str(tmp_path / "runs"),
    }))
    args = ["run", str(spec)] if mpi_ranks else ["run", str(spec), "--workers", "2"]
    done = run_cli(*args, mpi_ranks=mpi_ranks, timeout=90)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    analysis = hpctune.Analysis(tmp_path / "runs" / f"e2e-{name}")
    assert analysis.status == "finished"
    assert set(analysis.trials.state) == {"TERMINATED"}
    for trial_id, iterations in analysis.results.groupby("trial_id").training_iteration:
        assert list(iterations) == list(range(1, len(iterations) + 1)), (trial_id, list(iterations))
    # trials recorded per rung milestone: a PAUSE (or, at max_t, STOP) decision there
    decisions = analysis.decisions
    counts = {m: int((decisions.training_iteration == m).sum()) if not decisions.empty else 0 for m in (1, 3, 9)}
    if expected is not None:
        assert counts == expected
    if name == "asha":
        assert counts[1] == len(analysis.trials) == 12
        assert 1 <= counts[3] <= counts[1] // 3 and counts[9] <= counts[3] // 3
    if name == "median":    # the best config is never worse than a median: it trains to the end
        best = analysis.trials.loc[(analysis.trials["config/x"] - 0.3).abs().idxmin()]
        assert best.training_iteration == 9
    kinds = set(decisions.decision) if not decisions.empty else set()
    assert kinds <= ({"STOP"} if name == "median" else {"PAUSE", "STOP"})
