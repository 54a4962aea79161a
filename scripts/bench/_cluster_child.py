"""Each MPI rank of ``scripts/bench/cluster_coordinator.py``: ``hpctune.run`` under ``srun`` or
``mpiexec`` (rank 0 coordinates, the others run trials), the no-op trainable of
``_scale_trainable.py`` (``SCALE_BENCH_REPORTS`` reports each).

Usage: ``python _cluster_child.py STORAGE NAME TRIALS OUT_JSON``. Rank 0 writes OUT_JSON: its wall
seconds in ``hpctune.run``, its own CPU seconds there (``RUSAGE_SELF``: the worker ranks are other
processes), its peak RSS, and the Unix time it entered ``hpctune.run``.
"""
from __future__ import annotations

import time

T_START = time.time()

import json  # noqa: E402
import resource  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import hpctune  # noqa: E402
from _scale_trainable import train  # noqa: E402


def main() -> None:
    storage, name, trials, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    entered = time.time()
    before = resource.getrusage(resource.RUSAGE_SELF)
    analysis = hpctune.run(train, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=trials,
                           storage=storage, name=name, verbose=0)
    after = resource.getrusage(resource.RUSAGE_SELF)
    if analysis is None:  # a worker rank
        return
    figures = {"host": socket.gethostname(), "process_start": T_START, "entered_run": entered,
               "wall_s": time.time() - entered,
               "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
               "peak_rss_mib": after.ru_maxrss / 1024}
    with open(out, "w") as f:
        json.dump(figures, f)


if __name__ == "__main__":
    main()
