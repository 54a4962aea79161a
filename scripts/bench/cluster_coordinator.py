"""The coordinator at cluster shape: 48 real MPI ranks of no-op trials, on the 3 nodes of the virtual
cluster (``scripts/virtual-cluster.sh up``) and, side by side, on this one host.

Both runs start the same ``_cluster_child.py`` on every rank: ``hpctune.run`` of ``--trials`` no-op
trials of ``--reports`` reports each (``_scale_trainable.py``), rank 0 the coordinator, 47 worker
ranks. On the cluster: a batch script ``sbatch``-ed to it (``-N 3 -n 48 --overcommit``, as its nodes
have 8 CPUs each; ``srun --mpi=pmi2``; MPICH over libfabric's tcp provider, as the cluster tests use
it), ``cluster``: 16 ranks a node (the coordinator beside 15 workers on node1), ``cluster-apart``:
the coordinator alone on node1, 24 workers on node2 and 23 on node3 (``--distribution=arbitrary``).
On one host:
``mpiexec -n 48`` (the ``mpich`` wheel's Hydra), no Slurm. Each prints and saves (``--json``):

- *results/s*: results / the coordinator's wall time in ``hpctune.run``; and over the busy middle,
  from the first result to the last (the results' ``timestamp``);
- *coordinator CPU µs per result*: rank 0's own CPU time (``RUSAGE_SELF``, its polling included)
  in ``hpctune.run`` / results;
- *worker busy %*: ``Analysis.utilization()`` (busy rank-seconds / rank-seconds from the first
  segment's start to the last one's end; a segment is busy from its launch to the coordinator's
  receipt of its end) and the same between the moment the last rank started its first trial and
  the moment the first rank ran out of work (*steady*);
- *every rank running*: seconds from the launcher's start (``srun`` / ``mpiexec``) until the last
  worker rank started its first trial (the trial's ``started``), and until the first did;
- the coordinator's peak RSS, and the hostnames the results came from.

Usage (repository root, hpctune's virtual environment; the virtual cluster up for ``cluster``)::

    python scripts/bench/cluster_coordinator.py [--where cluster,cluster-apart,host] [--ranks 48] [--trials 4700]
        [--reports 20] [--repeats 1] [--json PATH]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT)]

import hpctune  # noqa: E402
from hpctune.slurm.job import FINAL_STATES, job_state  # noqa: E402

CLUSTER_CONF = "/var/lib/hpctune-cluster/slurm.conf"
NODES = 3
MPI_ENV = {"MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp"}  # as tests/conftest.py's cluster fixture


def _env(reports: int) -> dict:
    env = dict(os.environ, SCALE_BENCH_REPORTS=str(reports), OMP_NUM_THREADS="1", **MPI_ENV)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                                  else []))
    return env


def _child(folder: Path, trials: int) -> list[str]:
    return [sys.executable, str(HERE / "_cluster_child.py"), str(folder / "runs"), "bench", str(trials),
            str(folder / "coordinator.json")]


def run_on_cluster(folder: Path, ranks: int, trials: int, reports: int, timeout: float, apart: bool = False) -> float:
    """sbatch the ranks onto the virtual cluster's nodes; returns srun's start (Unix time).

    ``apart``: rank 0 (the coordinator) alone on the first node, the workers spread over the
    others (``srun --distribution=arbitrary``); else ``ranks / 3`` ranks on each node, the
    coordinator beside ``ranks / 3 - 1`` workers.
    """
    if ranks % NODES:
        raise SystemExit(f"--ranks {ranks}: not a multiple of the cluster's {NODES} nodes")
    if apart:
        rest = [f"node{2 + i % (NODES - 1)}" for i in range(ranks - 1)]
        (folder / "hostfile").write_text("\n".join(["node1", *sorted(rest)]) + "\n")
        layout = f"SLURM_HOSTFILE={folder / 'hostfile'} srun --distribution=arbitrary"
    else:
        layout = f"srun --ntasks-per-node={ranks // NODES}"
    script = folder / "job.sh"
    script.write_text("\n".join([
        "#!/bin/bash",
        f"#SBATCH --nodes={NODES} --ntasks={ranks} --overcommit --time=20 --output={folder}/job.out",
        f"date +%s.%N > {folder}/launcher_started",
        f"{layout} --mpi=pmi2 --kill-on-bad-exit=1 " + shlex.join(_child(folder, trials)), ""]))
    os.environ["SLURM_CONF"] = CLUSTER_CONF  # job_state asks this cluster's slurmctld
    job = subprocess.run(["sbatch", "--parsable", str(script)], env=_env(reports), capture_output=True, text=True,
                         check=True)
    job_id = job.stdout.strip().split(";")[0]
    deadline = time.monotonic() + timeout
    while job_state(job_id) not in FINAL_STATES:  # None (Slurm did not answer) is no end either
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job_id])
            raise SystemExit(f"job {job_id} still in the queue after {timeout:.0f} s: {folder}/job.out")
        time.sleep(1)
    if not (folder / "coordinator.json").exists():
        raise SystemExit(f"job {job_id} wrote no figures; its log:\n{(folder / 'job.out').read_text()[-3000:]}")
    return float((folder / "launcher_started").read_text())


def run_on_host(folder: Path, ranks: int, trials: int, reports: int, timeout: float) -> float:
    """``mpiexec -n RANKS`` on this host; returns its start (Unix time)."""
    started = time.time()
    with open(folder / "job.out", "w") as log:
        done = subprocess.run([str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), *_child(folder, trials)],
                              env=_env(reports), stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"mpiexec exited {done.returncode}:\n{(folder / 'job.out').read_text()[-3000:]}")
    return started


def _steady_busy(segments, first_starts, last_ends) -> float:
    """Busy share of the worker ranks between the last rank's first start and the first rank's last end."""
    lo, hi = max(first_starts.values()), min(last_ends.values())
    if hi <= lo:
        return float("nan")
    busy = (segments.end.clip(lo, hi) - segments.start.clip(lo, hi)).clip(lower=0).sum()
    return float(busy / ((hi - lo) * len(first_starts)))


def figures(folder: Path, launcher_started: float, ranks: int, trials: int, reports: int) -> dict:
    coordinator = json.loads((folder / "coordinator.json").read_text())
    analysis = hpctune.Analysis(folder / "runs" / "bench")
    results, segments = analysis.results, analysis.segments.dropna(subset=["end"])
    expected = trials * reports
    if len(results) != expected or analysis.status != "finished":
        raise SystemExit(f"{folder}: {len(results)} results (expected {expected}), status {analysis.status}")
    first_started = results.groupby("rank").started.min()
    first_starts = segments.groupby("rank").start.min().to_dict()
    last_ends = segments.groupby("rank").end.max().to_dict()
    stamps = results.timestamp.sort_values()
    return {
        "results": expected, "worker_ranks": int(results["rank"].nunique()),
        "hosts": sorted(results.hostname.unique()),
        "results_per_s": expected / coordinator["wall_s"],
        "results_per_s_busy": (expected - 1) / (stamps.iloc[-1] - stamps.iloc[0]),
        "coordinator_cpu_us_per_result": coordinator["cpu_s"] / expected * 1e6,
        "coordinator_peak_rss_mib": coordinator["peak_rss_mib"],
        "worker_busy": analysis.utilization(),
        "worker_busy_steady": _steady_busy(segments, first_starts, last_ends),
        "first_rank_running_s": float(first_started.min() - launcher_started),
        "every_rank_running_s": float(first_started.max() - launcher_started),
        "coordinator_entered_run_s": coordinator["entered_run"] - launcher_started,
        "coordinator_wall_s": coordinator["wall_s"],
        "coordinator_host": coordinator["host"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--where", default="cluster,cluster-apart,host",
                        help="cluster, cluster-apart and/or host (comma-separated, in order)")
    parser.add_argument("--ranks", type=int, default=48)
    parser.add_argument("--trials", type=int, default=4700)
    parser.add_argument("--reports", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each placement, interleaved")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--json", help="save every run's figures here")
    args = parser.parse_args()
    runners = {"cluster": run_on_cluster, "cluster-apart": functools.partial(run_on_cluster, apart=True),
               "host": run_on_host}
    places = args.where.split(",")
    if unknown := [p for p in places if p not in runners]:
        raise SystemExit(f"--where: unknown placement(s) {unknown}; choose from {sorted(runners)}")
    runs: dict[str, list[dict]] = {place: [] for place in places}
    for repeat in range(args.repeats):
        for place in places:
            folder = Path(tempfile.mkdtemp(prefix=f"hpctune-cluster-bench-{place}-", dir="/tmp"))
            launcher_started = runners[place](folder, args.ranks, args.trials, args.reports, args.timeout)
            run = figures(folder, launcher_started, args.ranks, args.trials, args.reports)
            runs[place].append(run)
            print(place, repeat, json.dumps(run), flush=True)
    keys = [k for k, v in runs[places[0]][0].items() if isinstance(v, float)]
    print(f"\nmedians of {args.repeats} run(s), {args.ranks} ranks, {args.trials} trials x {args.reports} reports")
    print(f"{'figure':34}" + "".join(f"{place:>14}" for place in places))
    for key in keys:
        print(f"{key:34}" + "".join(f"{statistics.median(r[key] for r in runs[place]):14.3f}" for place in places))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
