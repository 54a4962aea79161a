"""``hpctune run --budget`` and ``resume --budget`` on real worker ranks: the rank-seconds the
segments took (the segments table) stay within the budget, the closing text says what was spent,
and a larger budget on resume lets the experiment go on."""
from __future__ import annotations

import re

import pytest

import hpctune

from conftest import slow_counter_spec

pytestmark = pytest.mark.mpi


def _spent_s(folder) -> float:
    segments = hpctune.Analysis(folder).segments
    return float((segments.end - segments.start).sum())  # one rank a segment


def test_a_budget_stops_the_experiment_within_it_and_a_larger_one_on_resume_goes_on(run_cli, tmp_path):
    """6 trials of 12 iterations of 0.25 s on 2 ranks (about 20 rank-seconds); a budget of 0.002
    rank-hours (7.2 rank-seconds) runs part of it."""
    spec = slow_counter_spec(tmp_path, "b", num_samples=6, epochs=12, sleep=0.25)
    folder = tmp_path / "runs" / "b"
    done = run_cli("run", str(spec), "--workers", "2", "--budget", "0.002")
    assert done.returncode == 0, done.stderr
    spent = _spent_s(folder)
    assert 0.5 * 7.2 < spent <= 7.2
    analysis = hpctune.Analysis(folder)
    assert analysis.spent_s == pytest.approx(spent)
    line = re.search(r"^Budget: (\S+) of 0\.002 rank-hours spent \((\d+)%\)$", done.stdout, re.MULTILINE)
    assert line, done.stdout
    assert float(line.group(1)) == pytest.approx(spent / 3600, rel=1e-2)
    reasons = set(analysis.trials.end_reason)
    assert "budget spent" in reasons and analysis.trials.training_iteration.sum() < 6 * 12
    results = len(analysis.results)
    for command in ("analyze", "status"):
        shown = run_cli(command, str(folder))
        assert shown.returncode == 0 and line.group(0) in shown.stdout.splitlines(), (command, shown.stdout)

    grown = run_cli("resume", str(folder), "--workers", "2", "--budget", "0.004")
    assert grown.returncode == 0, grown.stderr
    more = _spent_s(folder)
    assert spent < more <= 14.4
    assert len(hpctune.Analysis(folder).results) > results


@pytest.mark.parametrize("value", ["0", "-1", "two", "inf"])
def test_a_bad_budget_on_the_command_line_is_one_line_and_exit_2(run_cli, tmp_path, value):
    spec = slow_counter_spec(tmp_path, "bad", num_samples=1, epochs=1, sleep=0.0)
    done = run_cli("run", str(spec), "--budget", value)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert "--budget" in line and "expected hours" in line, done.stderr
    assert not (tmp_path / "runs" / "bad").exists()
