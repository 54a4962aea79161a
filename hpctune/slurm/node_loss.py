"""A node of the allocation lost: the experiment goes on, on the nodes left, in the same allocation.

``hpctune submit`` asks ``sbatch --no-kill``: Slurm keeps the allocation when one of its nodes
fails (once the node's slurmd stops answering, ``SlurmdTimeout``), and takes the node out of it.
The ranks' job step cannot go on without the ranks it lost, so Slurm ends it. Two cases:

- **A worker's node** (not the first one, where the batch script runs). The batch script runs,
  after the ranks' step, ``python -m hpctune.slurm.node_loss relaunch STATUS -- srun ...``: while
  the step failed (not 0 finished, 2 bad input or 3 requeued) and some of its nodes no longer run
  a task (:func:`nodes_answering`), the ranks' step starts again on the nodes that do, as many
  ranks a node as before. Rank 0 coordinates on the first node again, ``hpctune run --resume``
  goes on from the journal (every accepted result kept), the trials from their last checkpoints.
- **A failed start**: the step ended before its coordinator started the experiment (rank 0
  records each allocation in the experiment's ``slurm.json``, ``HPCTUNE_RANKS_RECORD``; it was not
  written since the step's start, ``HPCTUNE_RANKS_STARTED``), every node answering: on the test
  cluster a rank sometimes fails in ``MPI_Init``, PMI2's exchange garbled. The same line starts it
  again, up to :data:`START_RETRIES` times; if that was on the nodes left after a node loss, the
  job is then requeued, and a new allocation starts (with MPICH over UCX, a step restarted beside
  a cut-off node's still-running ranks failed in ``MPI_Init`` every time). (The step is started
  with ``srun --kill-on-bad-exit=1``: the ranks left do not wait on a failed one until the time
  limit.) A failure once the coordinator started is the experiment's own, and ends the job as before.
- **The first node** (the batch script's and the coordinator's). Nothing there is left to start
  the step again, and Slurm 22.05 keeps the job RUNNING on the other nodes, idle, until its time
  limit. So each other node runs a guard (``python -m hpctune.slurm.node_loss guard``, a one-task
  step of its own, which outlives the batch script's node): once Slurm has taken the first node out
  of the job, the guard on the first node left requeues the job (:func:`requeue_job`), as Slurm
  does without ``--no-kill``, and the next allocation resumes the experiment. (Starting the ranks'
  step from the guard instead, in the same allocation, was tried: its ranks failed in ``MPI_Init``,
  PMI2's exchange garbled, on Slurm 22.05 with MPICH over UCX: the failed start above; not tried
  since with libfabric.)
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from .job import hostnames, parse_show_job

__all__ = ["nodes_answering", "relaunch_command", "guard_step", "relaunch", "requeue_job", "ENDED_BY_HPCTUNE",
           "PROBE_TIMEOUT_S", "GUARD_POLL_S", "START_RETRIES"]

ENDED_BY_HPCTUNE = (0, 2, 3)
"""Exit statuses of the ranks' step that are hpctune's own end: finished, bad input, requeued."""

PROBE_TIMEOUT_S = 30.0
"""How long a node has to run one task before it counts as lost."""

GUARD_POLL_S = 3.0
"""How often a guard asks Slurm whether the job still has its first node."""

START_RETRIES = 2
"""How many times a step that failed to start is started again (then the job ends with its status,
or, after a node loss, is requeued)."""

_STEP_VARIABLES = ("SLURM_STEP", "SLURM_NTASKS", "SLURM_NPROCS", "SLURM_NNODES", "SLURM_NODELIST",
                   "SLURM_TASKS_PER_NODE", "SLURM_SRUN_COMM", "SLURM_OVERLAP", "SLURM_MPI_TYPE", "SLURM_DISTRIBUTION",
                   "SLURM_LAUNCH_NODE", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURM_TASK_PID",
                   "SLURM_CPU_BIND", "SLURM_UMASK", "SLURM_PRIO_PROCESS", "SLURM_GTIDS", "SLURM_STEPID",
                   "PMI_", "PMIX_")
"""What Slurm sets for one job step (a guard's), left out of the steps a guard starts."""


def nodes_answering(nodes: list[str], timeout: float = PROBE_TIMEOUT_S) -> list[str]:
    """Those of ``nodes`` (in their order) that run a one-task step (``srun -w NODE true``) within ``timeout`` s."""
    def answers(node: str) -> bool:
        try:
            done = subprocess.run(["srun", f"--nodelist={node}", "--nodes=1", "--ntasks=1", "--mpi=none",
                                   "--overlap", "true"], stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=timeout, env=_job_environment())
        except (OSError, subprocess.TimeoutExpired):
            return False
        return done.returncode == 0

    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        alive = list(pool.map(answers, nodes))
    return [node for node, ok in zip(nodes, alive) if ok]


def relaunch_command(step: list[str], nodes: list[str], tasks_per_node: int) -> list[str]:
    """``step`` (``srun OPTIONS... COMMAND``) on exactly ``nodes``, ``tasks_per_node`` ranks on each."""
    return [step[0], f"--nodelist={','.join(nodes)}", f"--nodes={len(nodes)}",
            f"--ntasks={len(nodes) * tasks_per_node}", f"--ntasks-per-node={tasks_per_node}", *step[1:]]


def guard_step(node: str, log: str) -> list[str]:
    """The ``srun`` of the guard on ``node``: one task sharing the node's CPUs, writing to ``log``
    itself (``srun`` runs on the batch script's node, and may be lost with it)."""
    return ["srun", f"--nodelist={node}", "--nodes=1", "--ntasks=1", "--overlap", "--mpi=none", "--output=/dev/null",
            sys.executable, "-m", "hpctune.slurm.node_loss", "guard", log]


def _job_environment() -> dict[str, str]:
    """This environment without what Slurm set for one step: a step started from here is sized by
    its own options only."""
    return {key: value for key, value in os.environ.items() if not key.startswith(_STEP_VARIABLES)}


def _show_job(job_id: str) -> dict[str, str]:
    try:
        shown = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True,
                               timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_show_job(shown.stdout) if shown.returncode == 0 else {}


def _tasks_per_node() -> int:
    return int(os.environ.get("SLURM_NTASKS_PER_NODE", "1").split("(")[0] or 1)


def _say(text: str) -> None:
    print(f"hpctune: {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def _run_step(step: list[str], nodes: list[str], tasks_per_node: int) -> int:
    """The ranks' step on ``nodes``, after removing the shared memory killed ranks left there
    (:func:`hpctune.slurm.job.stale_mpich_segments`); its exit status."""
    env = _job_environment()
    subprocess.run(["srun", f"--nodelist={','.join(nodes)}", f"--nodes={len(nodes)}", f"--ntasks={len(nodes)}",
                    "--ntasks-per-node=1", "--mpi=none", sys.executable, "-m", "hpctune.slurm.job",
                    "clear-mpich-shm"], stdin=subprocess.DEVNULL, timeout=120, check=False, env=env)
    return subprocess.run(relaunch_command(step, nodes, tasks_per_node), stdin=subprocess.DEVNULL, env=env).returncode


def relaunch(status: int, step: list[str], nodes: list[str] | None = None, started: float | None = None,
             record: str | None = None) -> int:
    """Run ``step`` again while it failed and either a node of it (of ``nodes``, default the job's) was
    lost (on the nodes left), or it ended before its coordinator started, every node answering (a
    failed start: up to :data:`START_RETRIES` times); returns its last exit status. ``record``: the
    experiment's ``slurm.json``, written by the coordinator when it starts; ``started``: the
    step's start (``time.time()``). Without them no failure counts as a failed start."""
    if status in ENDED_BY_HPCTUNE:
        return status
    nodes = nodes if nodes is not None else hostnames(os.environ.get("SLURM_JOB_NODELIST", ""))
    tasks_per_node = _tasks_per_node()
    retries, node_lost = 0, False
    while status not in ENDED_BY_HPCTUNE and nodes:
        failed_start = not _coordinator_started(record, started)
        probed = time.monotonic()
        left = nodes_answering(nodes) if len(nodes) > 1 else nodes
        lost = [node for node in nodes if node not in left]
        if not left or left[0] != nodes[0]:
            break  # the first node is gone: its guards requeue the job
        if lost:
            node_lost = True
            _say(f"{', '.join(lost)} lost (the ranks' step ended with {status}); starting {len(left) * tasks_per_node} "
                 f"ranks again on {', '.join(left)} (nodes checked in {time.monotonic() - probed:.1f} s)")
        elif failed_start and retries < START_RETRIES:
            retries += 1
            _say(f"the ranks' step ended with {status} before its coordinator started, every node answering; "
                 f"starting it again (retry {retries} of {START_RETRIES})")
        elif failed_start and node_lost:
            requeue_job(os.environ.get("SLURM_JOB_ID", ""), f"the ranks' step did not start again on {', '.join(nodes)} "
                                                             f"after a node was lost ({1 + START_RETRIES} tries)")
            return 3
        else:
            break  # every node answers: the failure is the experiment's own
        started = time.time()
        status = _run_step(step, left, tasks_per_node)
        nodes = left
    return status


def _coordinator_started(record: str | None, since: float | None) -> bool:
    """Whether the coordinator wrote ``record`` (the experiment's ``slurm.json``) at ``since`` or later;
    True when either is unknown (nothing then counts as a failed start)."""
    if record is None or since is None:
        return True
    try:
        return os.stat(record).st_mtime >= since
    except OSError:
        return False


def start_guards(log_pattern: str) -> int:
    """Start a guard on each node of the job but the first (the batch script's), in the background;
    each writes to ``log_pattern`` with ``%j`` replaced by the job id, ``%N`` by its node."""
    job_id = os.environ.get("SLURM_JOB_ID", "")
    for node in hostnames(os.environ.get("SLURM_JOB_NODELIST", ""))[1:]:
        log = log_pattern.replace("%j", job_id).replace("%N", node)
        subprocess.Popen(guard_step(node, log), stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return 0


def requeue_job(job_id: str, why: str) -> int:
    """Put the job back in the queue (as Slurm does on a node failure without ``--no-kill``), saying
    ``why``; the next allocation resumes the experiment."""
    _say(f"{why}; requeueing the job")
    done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        _say(f"could not requeue job {job_id}: {done.stderr.strip() or done.returncode}; cancelling it")
        subprocess.run(["scancel", job_id], capture_output=True, timeout=60)
    return done.returncode


def guard(log: str, poll: float = GUARD_POLL_S) -> int:
    """Watch the job until it ends; once Slurm has taken its first node out, requeue the job
    (:func:`requeue_job`): the guard of the first node left at once, the others one after another,
    two polls apart, if it is still running (their own step may have been lost). Writes what it
    does to ``log``."""
    with open(log, "a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
    job_id = os.environ["SLURM_JOB_ID"]
    here = os.environ.get("SLURMD_NODENAME") or socket.gethostname()
    first = hostnames(os.environ.get("SLURM_JOB_NODELIST", ""))[:1]
    lost_since = None
    while first:
        time.sleep(poll)
        shown = _show_job(job_id)
        if shown and shown.get("JobState") != "RUNNING":
            return 0
        nodes = hostnames(shown.get("NodeList", ""))
        if not nodes or first[0] in nodes or here not in nodes:
            continue
        lost_since = lost_since if lost_since is not None else time.monotonic()
        if time.monotonic() - lost_since >= nodes.index(here) * 2 * poll:
            return requeue_job(job_id, f"{first[0]}, the first node of job {job_id} (its batch script and "
                                       "coordinator), lost")
    return 0


_USAGE = ("usage: python -m hpctune.slurm.node_loss relaunch STATUS -- srun OPTIONS... COMMAND\n"
          "       python -m hpctune.slurm.node_loss start-guards LOG_PATTERN\n"
          "       python -m hpctune.slurm.node_loss guard LOG")


def main(argv: list[str]) -> int:
    if len(argv) >= 4 and argv[0] == "relaunch" and argv[2] == "--" and argv[1].lstrip("-").isdigit():
        started = os.environ.get("HPCTUNE_RANKS_STARTED", "")
        return relaunch(int(argv[1]), argv[3:], started=float(started) if started.isdigit() else None,
                        record=os.environ.get("HPCTUNE_RANKS_RECORD"))
    if len(argv) == 2 and argv[0] == "start-guards":
        return start_guards(argv[1])
    if len(argv) == 2 and argv[0] == "guard" and os.environ.get("SLURM_JOB_ID"):
        return guard(argv[1])
    print(_USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
