"""One in-memory simulation, whole process: sim_throughput.py's ASHA + random experiment, 10,000
trials on 100 virtual workers; prints its events per second and what it decided (events, results,
segments, virtual makespan, utilisation, best trial), so that two source trees can be compared for
speed and for identical outcomes.

Usage (repository root; ``TREE`` the source tree to measure, ``.`` for this one; it also runs on trees
from before Step 10, where the simulator was ``hpctune.simulation``)::

    PYTHONPATH=TREE:scripts/bench python scripts/bench/sim_outcome.py [--label NAME]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import hpctune
from hpctune.spec import spec_from_dict
from sim_throughput import curve, raw_spec

try:
    from hpctune.backends.sim.simulation import simulate
    from hpctune.backends.sim.surrogates import FunctionSurrogate
except ImportError:  # a tree from before Step 10
    from hpctune.simulation import simulate
    from hpctune.surrogates import FunctionSurrogate

TRIALS, WORKERS = 10_000, 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default=os.path.dirname(hpctune.__file__))
    args = parser.parse_args()
    storage = tempfile.mkdtemp(prefix="hpctune-simout-")  # the spec checks it; nothing is written there
    try:
        spec = spec_from_dict(raw_spec("outcome", TRIALS, storage), check_trainable=False)
        started = time.perf_counter()
        simulation = simulate(spec, FunctionSurrogate(curve, "loss", name="curve"), WORKERS)
        wall = time.perf_counter() - started
    finally:
        shutil.rmtree(storage, ignore_errors=True)
    o = simulation.outcome
    best_score, best_trial = simulation.controller.best
    print(f"{args.label} {o.events / wall:.0f} events/s | events={o.events} results={o.results} "
          f"segments={o.segments} makespan={o.makespan_s:.6f} utilization={o.utilization:.6f} "
          f"status={o.status} best=trial {best_trial} ({best_score:.12g})")


if __name__ == "__main__":
    main()
