"""``hpctune plan``: predictions from a pilot with a known answer, the table and JSON, exclusions,
the recommendation, and one-line errors for bad input.

The pilot is a real experiment folder written by the ``sim`` backend: 12 trials (FIFO, random
search) of 5 iterations of exactly 2.0 s each on 2 workers. On a virtual clock the coordinator
starts at 0 and the first launch is at 0, so the pilot's measured start-up is 0 and a plan for
12 trials on W workers takes exactly ceil(12 / W) * 5 * 2.0 s.
"""
from __future__ import annotations

import json
import math

import pytest

import hpctune
from hpctune.backends.sim.plan import amount, hms, plan_allocations, render_plan
from hpctune.spec import load_spec


def _loss(config, iteration):
    return {"loss": (config["x"] - 0.3) ** 2 + 1.0 / iteration}, 2.0


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    storage = tmp_path_factory.mktemp("pilot")
    hpctune.run("unused:train", space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=12,
                stop={"training_iteration": 5}, scheduler="fifo", seed=0, backend="sim", surrogate=_loss,
                workers=2, storage=str(storage), name="pilot", verbose=0)
    return storage / "pilot"


def _spec_file(tmp_path, name="planned", **extra) -> str:
    fields = {"name": name, "trainable": "unused:train", "metric": "loss", "num_samples": 12,
              "space": "{x: {uniform: [0, 1]}}", "stop": "{training_iteration: 5}", "scheduler": "fifo",
              "seed": 0, "storage": str(tmp_path / "runs"), **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return str(path)


# W -> the exact makespan: ceil(12 / W) rounds of 5 iterations of 2.0 s
EXPECTED = {1: 120.0, 2: 60.0, 4: 30.0, 8: 20.0}


def test_prediction_matches_the_known_answer(pilot, tmp_path):
    spec = load_spec(_spec_file(tmp_path), check_trainable=False)
    plan = plan_allocations(spec, pilot, [8, 2, 4, 1], seeds=3, price=3.0, ranks_per_node=4)
    assert plan.start_up_s == 0.0  # virtual clock: coordinator start and first launch both at 0
    assert plan.pilot_trials == 12 and plan.pilot_results == 60 and plan.pilot_workers == 2
    assert plan.seeds == [0, 1, 2] and plan.hours_name == "rank-hours"
    best_recorded = hpctune.Analysis(pilot).best_value
    for a, (workers, wall) in zip(plan.allocations, sorted(EXPECTED.items())):
        assert a.workers == workers and a.excluded is None
        assert a.nodes == math.ceil((workers + 1) / 4)
        assert a.wall_s == [wall] * 3
        assert (a.wall_s_median, a.wall_s_min, a.wall_s_max) == (wall, wall, wall)
        assert a.rank_hours == pytest.approx((workers + 1) * wall / 3600)
        assert a.gpu_hours is None
        assert a.cost == pytest.approx(3.0 * a.rank_hours)
        assert a.utilization_median == pytest.approx(12 * 10.0 / (workers * wall))
        assert a.meets_deadline is None
        # seed 0 is the pilot's seed: the same configs, so the same best; other seeds replay the
        # nearest recorded curves, which can never beat the best recorded value
        assert a.best_values[0] == pytest.approx(best_recorded)
        assert all(v >= best_recorded - 1e-12 for v in a.best_values)
    # rank-seconds, coordinator included: W=1 2*120=240, W=2 3*60=180, W=4 5*30=150, W=8 9*20=180
    assert [round(a.rank_hours * 3600, 9) for a in plan.allocations] == [240, 180, 150, 180]
    assert plan.recommended == 4  # no deadline: the cheapest overall
    assert [a.nodes for a in plan.allocations] == [1, 1, 2, 3]


@pytest.mark.parametrize("deadline, workers, recommended", [
    (25.0, [1, 2, 4, 8], 8),    # only W=8 (20 s) meets it
    (40.0, [1, 2, 4, 8], 4),    # W=4 (150 rank-s) is cheaper than W=8 (180 rank-s)
    (60.0, [2, 8], 2),          # W=2 and W=8 both cost 180 rank-s: the fewer workers
])
def test_recommendation_is_the_cheapest_meeting_the_deadline(pilot, tmp_path, deadline, workers, recommended):
    spec = load_spec(_spec_file(tmp_path), check_trainable=False)
    plan = plan_allocations(spec, pilot, workers, seeds=1, deadline_s=deadline, ranks_per_node=4)
    assert plan.recommended == recommended
    assert [a.meets_deadline for a in plan.allocations] == [EXPECTED[w] <= deadline for w in workers]
    chosen = next(a for a in plan.allocations if a.workers == recommended)
    assert render_plan(plan).splitlines()[-1] == (
        f"recommended: {recommended} workers on {chosen.nodes} node{'s' * (chosen.nodes > 1)}: "
        f"{hms(chosen.wall_s_median)} median, "
        f"{hms(chosen.wall_s_max)} worst seed, {amount(chosen.rank_hours)} rank-hours "
        "(the cheapest that meets the deadline)")


def test_gpu_hours_count_worker_gpus_only(pilot, tmp_path):
    spec = load_spec(_spec_file(tmp_path, resources="{gpus_per_rank: 2}"), check_trainable=False)
    plan = plan_allocations(spec, pilot, [1, 2, 4, 8], seeds=1, price=2.0, ranks_per_node=4)
    assert plan.hours_name == "GPU-hours"
    # GPU-seconds W * 2 * wall: 240, 240, 240, 320 -> a three-way tie, the fewest workers win
    assert [round(a.gpu_hours * 3600, 9) for a in plan.allocations] == [240, 240, 240, 320]
    assert [a.cost for a in plan.allocations] == pytest.approx([2.0 * a.gpu_hours for a in plan.allocations])
    assert plan.recommended == 1
    assert "GPU-hours: 2 per worker rank" in render_plan(plan)


def test_default_workers_and_ranks_per_node_come_from_the_pilot(pilot, tmp_path):
    spec = load_spec(_spec_file(tmp_path), check_trainable=False)
    plan = plan_allocations(spec, pilot, None, seeds=1)
    assert [a.workers for a in plan.allocations] == [2, 4, 8, 16]  # the pilot's 2 workers times 1, 2, 4, 8
    # a simulated pilot records no host: its 2 ranks and its coordinator make a node
    assert plan.ranks_per_node == 3
    assert [a.nodes for a in plan.allocations] == [1, 2, 3, 6]
    assert [a.wall_s_median for a in plan.allocations] == [60.0, 30.0, 20.0, 10.0]


def test_none_meets_the_deadline_names_the_fastest(pilot, tmp_path):
    spec = load_spec(_spec_file(tmp_path), check_trainable=False)
    plan = plan_allocations(spec, pilot, [1, 2, 4, 8], seeds=1, deadline_s=10.0, ranks_per_node=4)
    assert plan.recommended is None and plan.fastest == 8
    assert render_plan(plan).splitlines()[-1] == ("no allocation meets the deadline of 0:00:10: the fastest, "
                                                  "8 workers on 3 nodes, takes 0:00:20 (worst seed; 0:00:20 median)")


def test_cli_json_and_table_agree_and_nodes_max_excludes(run_cli, pilot, tmp_path):
    args = ["plan", _spec_file(tmp_path), "--pilot", str(pilot), "--workers", "8,1,2,4", "--ranks-per-node", "4",
            "--nodes-max", "2", "--price-per-gpu-hour", "3", "--deadline", "1m", "--seeds", "2"]
    done = run_cli(*args, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["recommended"], plan["start_up_s"], plan["seeds"], plan["deadline_s"], plan["price"]) == (4, 0.0, [0, 1], 60.0, 3.0)
    rows = {a["workers"]: a for a in plan["allocations"]}
    assert sorted(rows) == [1, 2, 4, 8]
    assert rows[8]["excluded"] == "needs 3 nodes > --nodes-max 2" and rows[8]["wall_s"] == []
    for workers in (1, 2, 4):
        a = rows[workers]
        wall = EXPECTED[workers]
        assert a["excluded"] is None and a["wall_s"] == [wall, wall]
        assert (a["wall_s_median"], a["wall_s_min"], a["wall_s_max"]) == (wall, wall, wall)
        assert a["rank_hours"] == pytest.approx((workers + 1) * wall / 3600)
        assert a["cost"] == pytest.approx(3 * a["rank_hours"]) and a["gpu_hours"] is None
        assert a["meets_deadline"] is (wall <= 60)
    # one progress line per simulated allocation on stderr, none for the excluded one
    assert [line.split(":")[0] for line in done.stderr.splitlines()] == [
        "[hpctune plan] 1 workers", "[hpctune plan] 2 workers", "[hpctune plan] 4 workers"]

    table = run_cli(*args, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith(f"plan for planned (12 samples, scheduler fifo) from the pilot {pilot} "
                               "(12 trials, 60 results on 2 workers), simulated with 2 seeds (0..1)")
    assert "start-up 0.00 s" in lines[1] and "rank-hours stand in for GPU-hours" in lines[1]
    header = next(line for line in lines if line.lstrip().startswith("workers"))
    assert header.split() == ["workers", "nodes", "wall", "median", "[min-max]", "rank-hours", "cost",
                              "best", "loss", "busy", "deadline"]
    for workers in (1, 2, 4):
        a = rows[workers]
        cells = next(line for line in lines if line.split()[:1] == [str(workers)]).split()
        wall = hms(a["wall_s_median"])
        assert cells == [str(workers), str(a["nodes"]), wall, f"[{wall}-{wall}]", amount(a["rank_hours"]),
                         amount(a["cost"]), f"{a['best_value_median']:.6g}",
                         f"{a['utilization_median']:.0%}", "yes" if a["meets_deadline"] else "no"]
    assert "      8      3  excluded: needs 3 nodes > --nodes-max 2" in lines
    assert lines[-1] == (f"recommended: 4 workers on 2 nodes: 0:00:30 median, 0:00:30 worst seed, "
                         f"{amount(rows[4]['rank_hours'])} rank-hours, cost {amount(rows[4]['cost'])} "
                         "(the cheapest that meets the deadline)")


def test_bad_input_one_line_exit_2(run_cli, pilot, tmp_path):
    from hpctune.api import open_experiment

    spec = _spec_file(tmp_path)
    empty = load_spec(_spec_file(tmp_path, name="empty"), check_trainable=False)
    store, _ = open_experiment(empty, resume=False)
    store.close()
    cases = [
        (["--pilot", str(tmp_path)], f"hpctune: error: --pilot: {tmp_path} is not an hpctune experiment (no experiment.h5)"),
        (["--pilot", str(empty.experiment_dir)], f"hpctune: error: --pilot: {empty.experiment_dir} holds no result to replay"),
        (["--pilot", str(pilot), "--workers", "0,abc"],
         "hpctune: error: command line: argument --workers: expected positive integers separated by commas, got '0,abc'"),
        (["--pilot", str(pilot), "--deadline", "soon"],
         "hpctune: error: command line: argument --deadline: expected a duration > 0 such as 4h, 90m, 1h30m, "
         "3600s or 3600, got 'soon'"),
        (["--pilot", str(pilot), "--price-per-gpu-hour", "free"],
         "hpctune: error: command line: argument --price-per-gpu-hour: expected a price > 0, got 'free'"),
    ]
    for extra, line in cases:
        done = run_cli("plan", spec, *extra, cwd=tmp_path)
        assert (done.returncode, done.stderr.strip(), done.stdout) == (2, line, ""), extra
    done = run_cli("plan", _spec_file(tmp_path, name="acc", metric="acc"), "--pilot", str(pilot), cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.strip() == f"hpctune: error: metric: 'acc' is not reported in the pilot {pilot} (it reports 'loss')"
    assert not (tmp_path / "runs" / "planned").exists()


@pytest.mark.parametrize("text, seconds", [("4h", 14400), ("90m", 5400), ("3600s", 3600), ("3600", 3600),
                                           ("1h30m", 5400), ("2.5m", 150)])
def test_deadline_forms(text, seconds):
    from hpctune.cli.commands import _duration

    assert _duration(text) == seconds


def always_nan(config):
    for _ in range(2):
        hpctune.report({"loss": float("nan")})


def test_plan_from_a_pilot_whose_metric_is_always_nan_says_so(run_cli, tmp_path):
    """It said "metric: 'loss' was never reported by the trainable (it reported: nothing)"."""
    hpctune.run(always_nan, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=3, storage=str(tmp_path),
                name="nan", backend="local", verbose=0)
    spec = tmp_path / "plan.yaml"
    spec.write_text("name: planned\ntrainable: nowhere:train\nmetric: loss\nnum_samples: 8\n"
                    "space: {x: {uniform: [0, 1]}}\n")
    done = run_cli("plan", str(spec), "--pilot", str(tmp_path / "nan"), "--workers", "1,2")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"hpctune: error: --pilot: {tmp_path / 'nan'} reported 'loss' 6 time(s), never "
                                        "as a finite number (NaN or infinite each time): nothing to rank its replayed "
                                        "trials by"]
