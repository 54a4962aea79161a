"""An estimate, with the simulator, of where one coordinator saturates at 1,000 and 10,000 ranks.

The coordinator's own time per message is the measured CPU per result of rank 0
(``scripts/bench/cluster_coordinator.py``; ``--us-per-message``). The simulator (``simulate(...,
coordinator_s_per_message=c)``, docs/simulator.md) runs a FIFO experiment of ``--trials-per-worker``
trials per worker, each ``--iterations`` iterations of exactly T virtual seconds (``--seconds``: a
no-op trainable reporting every T seconds), on W workers: every result, segment end and join
occupies rank 0 for c. Printed per (W, T): the offered load W·c/T, the coordinator's busy
fraction, the workers' utilisation (answers waited for left out), the makespan against the
ideal (iterations × trials per worker × T) and the mean and longest wait of a message.

Next to the CPU: the journal is fsynced once per ``HPCTUNE_FSYNC_INTERVAL`` (1 s by default), not per
message, so it does not grow with the rate; and the network carries one result message and one
decision per result, whose pickled sizes are printed with the rate at saturation (1/c).

Usage (repository root, hpctune's virtual environment)::

    python scripts/bench/coordinator_saturation.py [--us-per-message 155] [--workers 1000 10000]
        [--seconds 10 1 0.5] [--trials-per-worker 2] [--iterations 20]
"""
from __future__ import annotations

import argparse
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT)]

from hpctune.backends.sim.simulation import simulate  # noqa: E402
from hpctune.backends.sim.surrogates import FunctionSurrogate  # noqa: E402
from hpctune.enums import Decision  # noqa: E402
from hpctune.spec import spec_from_dict  # noqa: E402


def surrogate_of(seconds: float) -> FunctionSurrogate:
    def no_op(config: dict, iteration: int) -> tuple[dict, float]:
        return {"loss": float(iteration)}, seconds
    return FunctionSurrogate(no_op, "loss", name=f"no-op every {seconds} s")


def one(workers: int, seconds: float, c: float, trials_per_worker: int, iterations: int) -> dict:
    storage = tempfile.mkdtemp(prefix="hpctune-saturation-")
    try:
        spec = spec_from_dict({"name": "saturation", "trainable": "bench:none", "metric": "loss",
                               "num_samples": workers * trials_per_worker, "space": {"x": {"uniform": [0, 1]}},
                               "stop": {"training_iteration": iterations}, "storage": storage, "seed": 0},
                              check_trainable=False)
        started = time.perf_counter()
        o = simulate(spec, surrogate_of(seconds), workers, coordinator_s_per_message=c).outcome
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    ideal = trials_per_worker * iterations * seconds
    return {"workers": workers, "seconds": seconds, "offered_load": workers * c / seconds,
            "coordinator_busy": o.coordinator_busy_fraction, "utilization": o.utilization,
            "makespan_s": o.makespan_s, "ideal_s": ideal, "wait_mean_ms": o.wait_mean_s * 1e3,
            "wait_max_ms": o.wait_max_s * 1e3, "messages": o.messages, "wall_s": wall}


def message_sizes() -> tuple[int, int]:
    """Pickled bytes of a result message (as a worker sends it) and of its decision."""
    row = {"loss": 0.25, "started": 1.8e9, "training_iteration": 7, "time_this_iter_s": 0.01,
           "time_total_s": 0.07, "timestamp": 1.8e9, "hostname": "node-0042", "gpus": "0", "rank": 417}
    return len(pickle.dumps((12345, row, None))), len(pickle.dumps(Decision.CONTINUE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--us-per-message", type=float, default=155.0)
    parser.add_argument("--workers", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 1.0, 0.5])
    parser.add_argument("--trials-per-worker", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20)
    args = parser.parse_args()
    c = args.us_per_message * 1e-6
    print(f"c = {args.us_per_message} µs a message; {args.trials_per_worker} trials a worker x "
          f"{args.iterations} iterations of T s (FIFO)")
    print("| workers | T s | W·c/T | coordinator busy | utilisation | makespan s (ideal) | wait mean / max ms |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for workers in args.workers:
        for seconds in args.seconds:
            r = one(workers, seconds, c, args.trials_per_worker, args.iterations)
            print(f"| {workers:,} | {seconds:g} | {r['offered_load']:.2f} | {r['coordinator_busy']:.1%} | "
                  f"{r['utilization']:.1%} | {r['makespan_s']:.1f} ({r['ideal_s']:.0f}) | "
                  f"{r['wait_mean_ms']:.2f} / {r['wait_max_ms']:.1f} |", flush=True)
    result, decision = message_sizes()
    rate = 1 / c
    print(f"\nresult message {result} B, decision {decision} B (pickled); at saturation ({rate:,.0f} results/s): "
          f"{rate * result / 1e6:.1f} MB/s in, {rate * decision / 1e6:.2f} MB/s out at rank 0")


if __name__ == "__main__":
    main()
