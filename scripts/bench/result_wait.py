"""How long a trial's report waits for the coordinator's answer while a model-based searcher
suggests: tpe and gp, their suggestions computed in the background (hpctune's way under MPI)
against the same sampler asked inline between messages; 4 worker ranks, trials of three 20 ms
epochs, each report timing the one before. Median, 99th percentile and longest wait, and the
run's wall time.

    python scripts/bench/result_wait.py --runs tpe:600 gp:120
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(storage: str, searcher: str, trials: int, mode: str) -> tuple[float, list[float]]:
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "bench" / "_result_wait_run.py"), storage, searcher,
                          str(trials), mode], check=True, capture_output=True, text=True, cwd=REPO).stdout.split()
    return float(out[1]), [float(value) for value in out[2:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=["tpe:600", "gp:120"], help="SEARCHER:TRIALS")
    args = parser.parse_args()
    print("| searcher | trials | suggestions | median wait | p99 wait | longest wait | wall time |")
    print("|---|---:|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as storage:
        for run in args.runs:
            searcher, trials = run.split(":")
            for mode in ("inline", "background"):
                wall, waits = _run(storage, searcher, int(trials), mode)
                waits.sort()
                p99 = waits[min(len(waits) - 1, int(0.99 * len(waits)))]
                print(f"| {searcher} | {trials} | {mode} | {statistics.median(waits) * 1e3:.1f} ms | "
                      f"{p99 * 1e3:.1f} ms | {waits[-1] * 1e3:.0f} ms | {wall:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
