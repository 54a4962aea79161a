"""Read an experiment again and again while it runs (and is killed and resumed); fail on a torn read.

Usage: ``python reader_loop.py FOLDER STOP_FILE``. Until STOP_FILE exists, opens
the folder with :class:`hpctune.Analysis` and checks that what it sees is a
consistent prefix: the number of results never goes down, and each trial's
iterations are exactly 1..n (no gap, no repeat). Prints ``READS n`` and exits
0, or prints what went wrong and exits 1.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from hpctune.store import ExperimentDamaged, is_experiment, load_experiment


def main(folder: Path, stop: Path) -> int:
    reads, last_count, seen = 0, 0, {}
    while not stop.exists():
        if not is_experiment(folder):
            time.sleep(0.01)
            continue
        try:
            view = load_experiment(folder)
        except ExperimentDamaged as exc:
            print(f"DAMAGED after {reads} reads: {exc}")
            return 1
        results = view.results
        count = len(results.get("trial_id", ()))
        if count < last_count:
            print(f"COUNT WENT DOWN from {last_count} to {count} after {reads} reads")
            return 1
        per_trial: dict[int, list[int]] = {}
        for trial_id, iteration in zip(results.get("trial_id", ()), results.get("training_iteration", ())):
            per_trial.setdefault(int(trial_id), []).append(int(iteration))
        for trial_id, iterations in per_trial.items():
            if iterations != list(range(1, len(iterations) + 1)):
                print(f"TRIAL {trial_id} HAS ITERATIONS {iterations} after {reads} reads")
                return 1
            if len(iterations) < seen.get(trial_id, 0):
                print(f"TRIAL {trial_id} LOST ITERATIONS after {reads} reads")
                return 1
            seen[trial_id] = len(iterations)
        last_count = count
        reads += 1
    print(f"READS {reads}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
