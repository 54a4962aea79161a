"""The simulated coordinator's time per message (``coordinator_s_per_message``): one FIFO server.

Every message a worker sends rank 0 (a result, a segment end, each rank's join) occupies the
coordinator ``c`` virtual seconds; its answer takes effect at ``max(arrival, coordinator free) + c``.
The times below follow from that by hand (docs/simulator.md, "The coordinator's time per message").
"""
from __future__ import annotations

import pytest

import hpctune
from hpctune.backends.sim.coordinator_queue import CoordinatorQueue
from hpctune.backends.sim.simulation import simulate
from hpctune.backends.sim.surrogates import FunctionSurrogate
from hpctune.errors import SpecError
from hpctune.reporting.analysis import Analysis
from hpctune.spec import spec_from_dict

ASHA = {"type": "asha", "grace_period": 1, "max_t": 9, "reduction_factor": 3}


def crossing(config, iteration):
    """Curves that cross; iteration times 1 + x virtual seconds."""
    return {"loss": abs(config["x"] - 0.3) + (0.2 + config["y"]) / iteration}, 1.0 + round(config["x"], 3)


def make_spec(tmp_path, scheduler=ASHA, num_samples=40, seed=0, stop=None):
    raw = {"name": "sim", "trainable": "nowhere:train", "metric": "loss", "mode": "min", "num_samples": num_samples,
           "space": {"x": {"uniform": [0, 1]}, "y": {"uniform": [0, 1]}}, "scheduler": scheduler, "seed": seed,
           "stop": stop, "storage": str(tmp_path)}
    return spec_from_dict(raw, check_trainable=False)


def fixed(iterations: int, seconds: float, start_up_s: float = 0.0):
    """``iterations`` iterations of exactly ``seconds`` each, after ``start_up_s``."""
    def timed(config, iteration):
        return {"loss": config["x"]}, seconds
    timed.max_iterations = iterations
    timed.start_up_s = start_up_s
    return FunctionSurrogate(timed, "loss")


def test_the_queue_serves_in_arrival_order_one_message_at_a_time():
    queue = CoordinatorQueue(0.5, start=0.0)
    assert [queue.serve(t) for t in (0.0, 0.1, 0.2, 3.0)] == [0.5, 1.0, 1.5, 3.5]
    assert (queue.messages, queue.busy_s) == (4, 2.0)
    assert queue.wait_max_s == pytest.approx(0.8)  # the third: arrived at 0.2, handled from 1.0
    assert queue.wait_mean_s == pytest.approx((0.0 + 0.4 + 0.8 + 0.0) / 4)
    instant = CoordinatorQueue(0.0, start=0.0)
    assert [instant.serve(t) for t in (0.0, 0.1, 0.1)] == [0.0, 0.1, 0.1]


def test_by_default_the_events_are_exactly_those_of_before(tmp_path):
    """0 (the default) changes nothing: the same records as without the option, and the exact figures
    this simulation gave before the coordinator's model existed."""
    surrogate = FunctionSurrogate(crossing, "loss")
    spec = make_spec(tmp_path, num_samples=60)
    without = simulate(spec, surrogate, 7, keep_records=True, log=True)
    zero = simulate(spec, surrogate, 7, keep_records=True, log=True, coordinator_s_per_message=0.0)
    assert zero.store.records == without.store.records and zero.log == without.log
    assert zero.outcome == without.outcome
    outcome = without.outcome
    assert (outcome.results, outcome.segments, outcome.events) == (136, 86, 137)
    assert outcome.makespan_s == pytest.approx(33.92, rel=1e-12)
    assert outcome.busy_rank_s == pytest.approx(198.255, rel=1e-12)
    assert (outcome.messages, outcome.coordinator_busy_s, outcome.wait_max_s, outcome.waiting_rank_s) == (0, 0, 0, 0)


def test_one_worker_one_trial_waits_c_for_every_answer(tmp_path):
    """k iterations of d s, c s a message, 1 worker: the join is answered at c (the launch), each
    result arrives i*(d+c) and is answered c later, the segment end follows the last answer at once
    and is answered c later: makespan k*(d+c) + 2c; the coordinator handled k + 2 messages, none waited."""
    k, d, c = 5, 2.0, 0.25
    sim = simulate(make_spec(tmp_path, scheduler="fifo", num_samples=1), fixed(k, d), 1, keep_records=True,
                   log=True, coordinator_s_per_message=c)
    outcome = sim.outcome
    assert outcome.makespan_s == pytest.approx(k * (d + c) + 2 * c)  # 11.75
    assert outcome.busy_rank_s == pytest.approx(k * d)  # the waits for answers are not busy time
    assert outcome.waiting_rank_s == pytest.approx((k + 1) * c)  # k results and the segment end
    assert outcome.utilization == pytest.approx(k * d / (k * (d + c) + 2 * c))
    assert outcome.messages == k + 2 and outcome.coordinator_busy_s == pytest.approx((k + 2) * c)
    assert outcome.coordinator_busy_fraction == pytest.approx((k + 2) * c / (k * (d + c) + 2 * c))
    assert (outcome.wait_max_s, outcome.wait_mean_s) == (0.0, 0.0)
    # the controller hears each result when its answer is ready; the row says when it was sent
    assert [t for t, *_ in sim.log] == pytest.approx([i * (d + c) + c for i in range(1, k + 1)])
    rows = [r["row"] for r in sim.store.records if r["k"] == "result"]
    assert [row["timestamp"] for row in rows] == pytest.approx([i * (d + c) for i in range(1, k + 1)])
    # as on real ranks, an iteration's time counts the wait for the previous result's answer
    assert [row["time_this_iter_s"] for row in rows] == pytest.approx([d] + [d + c] * (k - 1))
    assert [(r["k"], r["t"]) for r in sim.store.records if r["k"] in ("launch", "end")] == [
        ("launch", pytest.approx(c)), ("end", pytest.approx(k * (d + c) + 2 * c))]


def test_the_next_launch_waits_for_the_answer_to_the_segment_end(tmp_path):
    """Two trials (k iterations of d s after s s of start-up) one after the other on 1 worker: a
    segment spans s + k*d + (k+1)*c from its launch to its end's answer, where the next one launches."""
    k, d, s, c = 3, 2.0, 1.5, 0.25
    sim = simulate(make_spec(tmp_path, scheduler="fifo", num_samples=2), fixed(k, d, start_up_s=s), 1,
                   keep_records=True, coordinator_s_per_message=c)
    span = s + k * d + (k + 1) * c
    launches = [r["t"] for r in sim.store.records if r["k"] == "launch"]
    assert launches == pytest.approx([c, c + span])
    assert sim.outcome.makespan_s == pytest.approx(c + 2 * span)  # 17.25
    assert sim.outcome.busy_rank_s == pytest.approx(2 * (s + k * d))
    assert sim.outcome.messages == 1 + 2 * (k + 1)


def test_a_pause_s_end_delay_and_segment_end_follow_the_answer(tmp_path):
    """ASHA on 1 worker, iterations of 2 s, an end delay of 0.5 s, c = 0.25: within a segment two
    results are d + c apart; across a pause, c (the PAUSE) + 0.5 (the end delay) + c (the segment
    end's answer, the next launch) + d."""
    def paused_late(config, iteration):
        return config["x"] / iteration, 2.0
    paused_late.end_delay_s = 0.5
    sim = simulate(make_spec(tmp_path, num_samples=9), FunctionSurrogate(paused_late, "loss"), 1, log=True,
                   coordinator_s_per_message=0.25)
    gaps = {round(b[0] - a[0], 9) for a, b in zip(sim.log, sim.log[1:])}
    assert gaps == {2.25, 3.0}
    assert sim.outcome.wait_max_s == 0.0  # one worker never finds the coordinator busy


def test_the_same_seed_gives_the_same_events_with_a_busy_coordinator(tmp_path):
    surrogate = FunctionSurrogate(crossing, "loss")
    runs = [simulate(make_spec(tmp_path, num_samples=60), surrogate, 7, keep_records=True, log=True,
                     coordinator_s_per_message=0.2) for _ in range(2)]
    assert runs[0].store.records == runs[1].store.records and runs[0].outcome == runs[1].outcome
    assert runs[0].outcome.wait_max_s > 0  # 7 workers, iterations of 1..2 s, 0.2 s a message: some queue
    times = [t for t, *_ in runs[0].log]
    assert times == sorted(times)


def test_a_saturated_coordinator_halves_the_workers_utilisation(tmp_path):
    """W = 20 workers, iterations of T = 0.5..1.5 s (mean about 1 s, varying from one iteration to the next), c = 0.1 s: the workers would send
    W / T = 20 results a second, the coordinator answers 1 / c = 10: W*c/T = 2.

    The coordinator is the bottleneck, so the makespan is at least its busy time, messages * c, and
    the workers' utilisation at most (compute rank-seconds) / (W * messages * c): each result brings
    T of compute, each message costs c, so with only results that bound is T / (W*c) = 0.5; the
    20 joins and 20 segment ends (40 of 1,040 messages) lower it to about 0.48. It is reached up to the
    ramp-up (the first results arrive after 0.5 s) and the tail (the last trials end unqueued), each
    about one iteration of 104 s: hence busy fraction >= 0.97 and utilisation in 0.45..bound. With
    c = 0 the same experiment keeps every worker busy."""
    def jittered(config, iteration):
        return {"loss": config["x"]}, 0.5 + (config["y"] + 0.618034 * iteration) % 1.0
    jittered.max_iterations = 50
    spec = make_spec(tmp_path, scheduler="fifo", num_samples=20)
    surrogate = FunctionSurrogate(jittered, "loss")
    instant = simulate(spec, surrogate, 20).outcome
    assert instant.utilization > 0.95
    outcome = simulate(spec, surrogate, 20, coordinator_s_per_message=0.1).outcome
    assert outcome.messages == 20 + 20 * 50 + 20
    compute = instant.busy_rank_s  # the same iterations, the same seconds
    assert outcome.busy_rank_s == pytest.approx(compute)
    bound = compute / (20 * outcome.messages * 0.1)
    assert 0.47 < bound < 0.5
    assert outcome.coordinator_busy_fraction >= 0.97
    assert 0.45 <= outcome.utilization <= bound + 1e-9
    assert outcome.makespan_s >= outcome.coordinator_busy_s * (1 - 1e-12)  # (the clock's sums round)
    assert outcome.makespan_s > 1.9 * instant.makespan_s
    # a worker's cycle: about T computing, about W*c - T waiting: the mean wait is near 1 s
    assert 0.6 < outcome.wait_mean_s < 1.2
    assert outcome.waiting_rank_s / (20 * outcome.makespan_s) == pytest.approx(1 - outcome.utilization, abs=0.05)


def test_the_python_api_records_it_and_refuses_bad_values(tmp_path):
    common = {"space": {"x": hpctune.uniform(0, 1), "y": hpctune.uniform(0, 1)}, "metric": "loss", "num_samples": 10,
              "scheduler": ASHA, "backend": "sim", "surrogate": crossing, "workers": 3, "storage": str(tmp_path),
              "verbose": 0}
    analysis = hpctune.run("nowhere:train", name="busy", coordinator_s_per_message=0.05, **common)
    assert analysis.status == "finished"
    simulation = analysis.spec["simulation"]
    assert simulation["surrogate"].endswith("crossing")
    assert {key: simulation[key] for key in ("workers", "coordinator_s_per_message")} == {
        "workers": 3, "coordinator_s_per_message": 0.05}
    for bad in (-1, "0.1", float("nan"), float("inf"), True):
        with pytest.raises(SpecError, match=r"^coordinator_s_per_message: expected seconds >= 0 \(the coordinator's "
                                            r"time per message\), got "):
            hpctune.run("nowhere:train", name="bad", coordinator_s_per_message=bad, **common)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SpecError, match=r"^coordinator_s_per_message: only the sim backend models the coordinator's "
                                        r"time per message \(backend is 'local'\)$"):
        hpctune.run("nowhere:train", space={"x": 1}, metric="loss", backend="local", storage=str(tmp_path),
                    name="nope", verbose=0, coordinator_s_per_message=0.1)


@pytest.fixture
def small_spec(tmp_path):
    (tmp_path / "coordinated.py").write_text(
        "def curve(config, iteration):\n"
        "    return {'loss': config['x'] + 1.0 / iteration}, 1.0\n"
        "curve.max_iterations = 4\n")
    spec = tmp_path / "small.yaml"
    spec.write_text(f"name: small\ntrainable: not_importable_here:train\nmetric: loss\nnum_samples: 8\n"
                    f"space: {{x: {{uniform: [0, 1]}}}}\nscheduler: fifo\nstorage: {tmp_path / 'runs'}\n")
    return spec


def test_the_cli_flag_is_recorded_and_its_outcome_shown(run_cli, tmp_path, small_spec):
    """4 workers, 8 trials of 4 iterations of 1 s, c = 0.5: W*c/T = 2 (saturated)."""
    done = run_cli("run", str(small_spec), "--backend", "sim", "--surrogate", "coordinated:curve", "--workers", "4",
                   "--coordinator-s-per-message", "0.5", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    analysis = Analysis(tmp_path / "runs" / "small")
    assert analysis.spec["simulation"] == {"surrogate": "coordinated:curve", "workers": 4,
                                           "coordinator_s_per_message": 0.5}
    closing = [line for line in done.stderr.splitlines() if "] coordinator (0.5 s a message): " in line]
    assert len(closing) == 1, done.stderr
    # 4 joins + 8 * (4 results + 1 end) = 44 messages of 0.5 s: the coordinator is busy all the time
    assert " busy with 44 messages; a message waited " in closing[0]
    assert "] coordinator (" not in run_cli("run", str(small_spec), "--backend", "sim", "--surrogate",
                                            "coordinated:curve", "--workers", "4", "--name", "instant",
                                            cwd=tmp_path).stderr


SIM = ["--backend", "sim", "--surrogate", "coordinated:curve"]


@pytest.mark.parametrize("args, message", [
    ([*SIM, "--coordinator-s-per-message", "-1"],
     "command line: argument --coordinator-s-per-message: expected seconds >= 0, got '-1'"),
    ([*SIM, "--coordinator-s-per-message", "fast"],
     "command line: argument --coordinator-s-per-message: expected seconds, got 'fast'"),
    ([*SIM, "--coordinator-s-per-message=inf"],
     "command line: argument --coordinator-s-per-message: expected seconds >= 0, got 'inf'"),
    (["--backend", "local", "--coordinator-s-per-message", "0.001"], "--coordinator-s-per-message: needs --backend sim"),
])
def test_a_bad_flag_is_one_line_exit_2_and_writes_nothing(run_cli, tmp_path, small_spec, args, message):
    done = run_cli("run", str(small_spec), *args, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (2, f"hpctune: error: {message}\n")
    assert not (tmp_path / "runs").exists()
