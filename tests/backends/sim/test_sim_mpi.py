"""Decisions in simulation equal decisions on real ranks for the same events.

An ASHA experiment runs on real MPI ranks (a trainable whose iterations take 0.1-0.5 s by
config); the simulator then replays its recorded iteration times, start-ups and end delays
(its own experiment folder as the surrogate) with the same spec and seed, and must promote
the same trials to the same rungs, pause them at the same iterations, and end about when
the real run ended.
"""
from __future__ import annotations

import pytest

from hpctune.reporting.analysis import Analysis
from hpctune.backends.sim.simulation import simulate
from hpctune.spec import load_spec
from hpctune.backends.sim.surrogates import RecordedSurrogate

RUNGS = (1, 3, 9)


def _spec(tmp_path, trainable="trainable_fixtures:sleepy_curve"):
    spec = tmp_path / "equal.yaml"
    spec.write_text(f"name: real\ntrainable: {trainable}\nmetric: loss\nnum_samples: 14\n"
                    "space: {x: {uniform: [0, 1]}, y: {uniform: [0, 2]}, epochs: 9}\n"
                    "scheduler: {type: asha, grace_period: 1, max_t: 9, reduction_factor: 3}\n"
                    f"seed: 3\nstorage: {tmp_path / 'runs'}\n")
    return spec


def _rungs(iterations: dict[int, int]) -> dict[int, set[int]]:
    """Rung -> the trials that reached it."""
    return {rung: {t for t, it in iterations.items() if it >= rung} for rung in RUNGS}


def _decisions(frame) -> set[tuple[int, int, str]]:
    return set(zip(frame.trial_id.astype(int), frame.training_iteration.astype(int), frame.decision))


@pytest.mark.slow
def test_a_replay_of_a_run_on_mpi_ranks_decides_as_the_run_did(run_cli, tmp_path):
    spec_path = _spec(tmp_path)
    done = run_cli("run", str(spec_path), "--workers", "2", timeout=180)
    assert done.returncode == 0, done.stderr
    real = Analysis(tmp_path / "runs" / "real")
    real_rungs = _rungs(dict(zip(real.trials.trial_id, real.trials.training_iteration)))
    assert len(real_rungs[3]) >= 4 and real_rungs[9], real_rungs  # promotions happened: the order mattered

    # in memory, through the same spec
    spec = load_spec(spec_path, check_trainable=False)
    sim = simulate(spec, RecordedSurrogate(real.path), 2, keep_records=True)
    simulated = {tid: trial.iteration for tid, trial in sim.controller.trials.items()}
    assert _rungs(simulated) == real_rungs
    decided = {(r["trial"], r["it"], r["d"]) for r in sim.store.records if r["k"] == "decision"}
    assert decided == _decisions(real.decisions)
    segments = real.segments
    real_span = segments.end.max() - segments.start.min()
    assert sim.outcome.makespan_s == pytest.approx(real_span, rel=0.05)

    # from the command line, the real run's folder as the surrogate: an experiment folder that says the same
    replay = run_cli("run", str(spec_path), "--backend", "sim", "--surrogate", str(real.path), "--workers", "2",
                     "--name", "replayed", timeout=120)
    assert replay.returncode == 0, replay.stderr
    replayed = Analysis(tmp_path / "runs" / "replayed")
    assert _rungs(dict(zip(replayed.trials.trial_id, replayed.trials.training_iteration))) == real_rungs
    assert _decisions(replayed.decisions) == _decisions(real.decisions)
    assert replayed.rung_counts() == real.rung_counts()
