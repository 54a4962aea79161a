"""A worker rank's loop: run the segments the coordinator sends until SHUTDOWN.

Ranks are workers 1..N (see :mod:`.coordinator`); each runs one trial process that imports the
trainable once, and a multi-rank trial's processes for the segments it leads. Errors go back as
data (the traceback text); the coordinator's signals are ignored here (it alone acts on them).
"""
from __future__ import annotations

import os
import signal
import socket

from ...enums import SegmentEnd, Tag
from ..gpus import node_of, visible_devices
from .coordinator import HEARTBEAT_S
from .inbox import to_coordinator
from .polling import Backoff, receive
from .trial_group import GroupTrialProcess
from .trial_process import COORDINATOR_SIGNALS, TrialProcess

__all__ = ["serve_worker"]


class _ShutdownWhileRunning(Exception):
    """The coordinator ended the experiment while this worker waited for a decision."""


def serve_worker(comm, worker_id: int, coordinator: int = 0, node: str | None = None,
                 off_node: bool = False) -> None:
    """A worker rank's loop: run the segments the coordinator sends until SHUTDOWN.

    ``node``: the node this rank is on (:func:`~hpctune.backends.gpus.node_of`); by default found
    now, collectively with the other ranks of this process's COMM_WORLD (spawned workers).
    ``off_node``: the coordinator is on another node (:mod:`.inbox`: how its messages travel).
    """
    from mpi4py import MPI

    # Ctrl-C, Slurm's SIGTERM and its warning signal reach every rank; the coordinator alone acts on them
    for signum in COORDINATOR_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    status = MPI.Status()
    backoff = Backoff()
    trial_process = TrialProcess(worker_id)
    trial_process.start()
    devices, devices_from = visible_devices()
    send = to_coordinator(comm, coordinator, off_node)
    send(Tag.READY, {"hostname": socket.gethostname(), "pid": os.getpid(), "node": node or node_of(MPI.COMM_WORLD),
                     "devices": devices, "devices_from": devices_from})
    try:
        while True:
            task = receive(comm, coordinator, MPI.ANY_TAG, status, backoff)
            if status.Get_tag() == Tag.SHUTDOWN:
                return
            if status.Get_tag() == Tag.CONTROL:  # for a segment that has ended meanwhile
                continue
            if status.Get_tag() == Tag.CHECK:  # once, at start-up: can this node import the trainable?
                send(Tag.CHECKED, trial_process.check(*task))
                continue

            def forward(message, trial_id=task.trial_id):
                if message[0] == trial_id:
                    trial_process.send_control(message[1], message[2])

            def on_result(row, checkpoint, trial_id=task.trial_id):
                send(Tag.RESULT, (trial_id, row, checkpoint))
                while True:
                    message = receive(comm, coordinator, MPI.ANY_TAG, status, backoff)
                    if status.Get_tag() == Tag.SHUTDOWN:
                        raise _ShutdownWhileRunning
                    if status.Get_tag() != Tag.CONTROL:
                        return message
                    forward(message)

            def on_quiet():
                send(Tag.HEARTBEAT, None)

            def on_tick():  # the coordinator may speak while the trial trains: it is not waited for
                if comm.Iprobe(source=coordinator, tag=Tag.SHUTDOWN):
                    comm.recv(source=coordinator, tag=Tag.SHUTDOWN)
                    raise _ShutdownWhileRunning
                while comm.Iprobe(source=coordinator, tag=Tag.CONTROL):
                    forward(comm.recv(source=coordinator, tag=Tag.CONTROL))

            # a multi-rank trial: its processes are started for this segment, then end
            process = GroupTrialProcess(worker_id, task.group, task.trial_dir) if task.group else trial_process
            try:
                how, error = process.run(task, on_result, on_quiet, HEARTBEAT_S, on_tick)
            except _ShutdownWhileRunning:
                process.kill()
                return
            finally:
                if process is not trial_process:
                    process.close()
            send(Tag.SEGMENT_END, (task.trial_id, SegmentEnd(how), error))
    finally:
        trial_process.close()
        send(Tag.BYE, None)  # the coordinator reads until it has this
