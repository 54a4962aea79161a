"""The floor under the coordinator's CPU per result: a bare MPI ping-pong with hpctune's backoff.

Rank 0 does what hpctune's coordinator does for a result and nothing else: it polls with
``Iprobe`` (sleeping with :class:`hpctune.backends.mpi.polling.Backoff` while nothing waits), receives
a result-sized pickled tuple, and answers with a small object. Ranks 1..N send a result, then
wait for the answer with the same backoff, ``--messages`` times each. No controller, journal or
store: whatever hpctune's coordinator spends per result above this figure is its own work.

Modes: ``backoff`` (as hpctune) and ``spin`` (Iprobe in a busy loop, no sleeps: the fastest
round trip, at the price of a core). Also reported: the CPU time of one ``time.sleep(2e-5)``
on this machine (the backoff's first sleep), a cost that no amount of work in hpctune removes.

Usage (repository root, hpctune's virtual environment)::

    python scripts/bench/mpi_floor.py [--workers 2] [--messages 10000]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def sleep_cpu_us(repeats: int = 20000, seconds: float = 2e-5) -> float:
    """CPU µs that one ``time.sleep(seconds)`` costs the calling process."""
    started = _cpu()
    for _ in range(repeats):
        time.sleep(seconds)
    return (_cpu() - started) / repeats * 1e6


def _rank_main(mode: str, messages: int) -> None:
    from mpi4py import MPI

    from hpctune.backends.mpi.polling import Backoff

    comm = MPI.COMM_WORLD
    status = MPI.Status()
    backoff = Backoff()
    row = {"loss": 1.0, "started": time.time(), "trial_id": 1, "training_iteration": 2, "time_this_iter_s": 0.001,
           "time_total_s": 0.02, "timestamp": time.time(), "hostname": "node0001"}
    if comm.rank == 0:
        total = messages * (comm.size - 1)
        sleeps = 0
        cpu0, wall0 = _cpu(), time.perf_counter()
        for _ in range(total):
            backoff.reset()
            while not comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
                if mode == "backoff":
                    backoff.wait()
                    sleeps += 1
            comm.recv(source=status.Get_source(), tag=status.Get_tag())
            comm.send(("continue", None), dest=status.Get_source(), tag=4)
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
        print(f"{mode}\t{total / wall:.0f}\t{cpu / total * 1e6:.1f}\t{sleeps / total:.2f}", flush=True)
    else:
        for _ in range(messages):
            comm.send((1, row, None), dest=0, tag=3)
            backoff.reset()
            while not comm.Iprobe(source=0, tag=MPI.ANY_TAG, status=status):
                backoff.wait()
            comm.recv(source=0, tag=status.Get_tag())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="sending ranks (default 2)")
    parser.add_argument("--messages", type=int, default=10000, help="round trips per sending rank (default 10000)")
    parser.add_argument("--rank-main", choices=["backoff", "spin"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rank_main:
        _rank_main(args.rank_main, args.messages)
        return 0
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
    print(f"one time.sleep(2e-5) costs {sleep_cpu_us():.1f} CPU µs here")
    print("| mode | round trips/s | rank 0 CPU µs per result | sleeps per result |")
    print("|---|---:|---:|---:|")
    for mode in ("backoff", "spin"):
        done = subprocess.run([mpiexec, "-n", str(args.workers + 1), sys.executable, __file__, "--rank-main", mode,
                               "--messages", str(args.messages)], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            print(f"{mode}: mpiexec failed ({done.returncode}): {done.stderr.strip()[-500:]}", file=sys.stderr)
            return 1
        name, rate, cpu, sleeps = done.stdout.split()
        print(f"| {name} | {rate} | {cpu} | {sleeps} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
