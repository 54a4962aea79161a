"""One whole run of the overhead workload (200 trials x 20 reports of a no-op, 2 spawned workers),
printing the coordinator process's own CPU time per accepted result (``RUSAGE_SELF``: its workers
are not counted), so two source trees can be compared process by process.

Usage (repository root; ``TREE`` the source tree to measure, ``.`` for this one)::

    PYTHONPATH=TREE:scripts/bench python scripts/bench/coordinator_cpu.py [--label NAME] [--log FILE] [--depth N]

Prints (and appends to ``--log``) ``NAME MICROSECONDS``: coordinator CPU microseconds per result.
``--depth N`` calls ``hpctune.run`` N frames deeper: CPython 3.11 maps and unmaps a chunk of its
frame stack whenever a hot call crosses a chunk boundary, which depends on the caller's depth
(BENCHMARKS.md, Step 10's reshaping).
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile

os.environ["SCALE_BENCH_REPORTS"] = "20"

import hpctune  # noqa: E402
from _scale_trainable import train  # noqa: E402

TRIALS, REPORTS, WORKERS = 200, 20, 2


def _run(folder: str, depth: int):
    if depth:
        return _run(folder, depth - 1)
    return hpctune.run(train, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=TRIALS,
                       workers=WORKERS, storage=folder, verbose=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default=os.path.dirname(hpctune.__file__))
    parser.add_argument("--log", help="a file to append the line to")
    parser.add_argument("--depth", type=int, default=0, help="call hpctune.run this many frames deeper")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="hpctune-cpu-")
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        analysis = _run(folder, args.depth)
        after = resource.getrusage(resource.RUSAGE_SELF)
        results = len(analysis.results)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if results != TRIALS * REPORTS:
        raise SystemExit(f"expected {TRIALS * REPORTS} results, got {results}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = f"{args.label} {cpu / results * 1e6:.1f}"
    print(line)
    if args.log:
        with open(args.log, "a") as log:
            log.write(line + "\n")


if __name__ == "__main__":
    main()
