"""What starting a multi-rank trial costs: one segment of a k-rank trial, from the leader's worker's
side, on an otherwise idle machine.

A :class:`~hpctune.backends.mpi.trial_group.GroupTrialProcess` runs ``tests/trainable_fixtures.py``'s
``group_sum`` (an allreduce and a checkpoint per iteration, 3 iterations) on k processes of this
host, ``--repeats`` times; printed: seconds to the first result (``mpiexec``, k Python processes
importing mpi4py, numpy and h5py, the connection back), to the segment's end, and to the job's exit.

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/group_start.py [--ranks 2] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])

from hpctune.backends.mpi.launch import import_mpi  # noqa: E402
from hpctune.backends.mpi.trial_group import GroupTrialProcess  # noqa: E402
from hpctune.enums import Decision  # noqa: E402
from hpctune.trial import TrialTask  # noqa: E402


def one_segment(ranks: int, folder: str, trial_id: int) -> tuple[float, float, float]:
    host = socket.gethostname()
    members = [{"rank": r + 1, "host": host, "gpus": None} for r in range(ranks)]
    trial_dir = os.path.join(folder, str(trial_id))
    os.makedirs(trial_dir)
    task = TrialTask(trial_id=trial_id, trainable="trainable_fixtures:group_sum", config={"x": 0.5, "epochs": 3},
                     experiment_dir=folder, trial_dir=trial_dir, checkpoint=None, start_iteration=0,
                     time_total_s=0.0, metric="loss", group=members)
    process = GroupTrialProcess(1, members, trial_dir)
    started, results = time.perf_counter(), []

    def on_result(row, checkpoint):
        results.append(time.perf_counter() - started)
        return Decision.CONTINUE

    how, error = process.run(task, on_result, None, 5.0, lambda: None)
    ended = time.perf_counter() - started
    process.close()
    assert error is None and len(results) == 3, error
    return results[0], ended, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import_mpi()  # this MPI's mpiexec first on PATH, as on a worker rank
    with tempfile.TemporaryDirectory(prefix="hpctune-group-start-") as folder:
        times = [one_segment(args.ranks, folder, i) for i in range(args.repeats)]
    first, end, exited = (statistics.median(column) for column in zip(*times))
    print(f"{args.ranks} ranks, {args.repeats} segments, medians: first result {first:.2f} s, "
          f"segment end {end:.2f} s, job exited {exited:.2f} s")


if __name__ == "__main__":
    main()
