"""The controller's state, declared once: each field with how a snapshot keeps it and whether the
next allocation starts it afresh (:mod:`hpctune.controller.state_fields` reads the declarations).

A snapshot's ``controller_state`` is :func:`~hpctune.controller.state_fields.state_dict` of a
:class:`ControllerState`, followed by the scheduler's, the searcher's and the policy's own state
(:meth:`hpctune.controller.core.Controller.state_dict`); its keys and forms are part of the
experiment folder's format (docs/hdf5-layout.md), so a field's name is its key: rename none.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..trial import Trial
from .budget import Spending
from .messages import ControlMessage, Launch
from .state_fields import (AS_TUPLE_OR_NONE, ID_SET, ID_TO_ID, ID_TO_VALUE, ORDERED_IDS, part_of_state,
                           per_allocation, saved)
from .walltime import IterationTimes

__all__ = ["ControllerState"]


@dataclass
class ControllerState:
    """Everything the controller's parts read and change, besides the scheduler, searcher and policy.

    Trial ids in sets and maps are those of :attr:`trials`. An "ordered set" is a dict of None
    values: insertion order, constant-time membership.
    """

    # -- saved in snapshots (their keys: the field names) ------------------------------------------
    next_trial_id: int = field(default=0, metadata=saved(required=True))
    searcher_finished: bool = field(default=False, metadata=saved(required=True))
    metric_seen: bool = field(default=False, metadata=saved(required=True))  # the first result had the metric
    free_ranks: int = field(default=0, metadata=saved(required=True, resets=True))  # ranks that can take work now
    running: dict[int, None] = field(  # ordered set: trials running, in launch order
        default_factory=dict, metadata=saved(ORDERED_IDS, required=True, resets=True))
    requeue: dict[int, None] = field(  # ordered set: retried / interrupted trials, run first
        default_factory=dict, metadata=saved(ORDERED_IDS, required=True))
    best: tuple[float, int] | None = field(  # (score, trial_id), larger score is better
        default=None, metadata=saved(AS_TUPLE_OR_NONE, required=True))
    interrupting: bool = field(default=False, metadata=saved(resets=True))  # the experiment is stopping
    interrupted: set[int] = field(  # paused because the experiment is stopping
        default_factory=set, metadata=saved(ID_SET, resets=True))
    pause_requested: set[int] = field(  # to pause at their next result (pause_now)
        default_factory=set, metadata=saved(ID_SET, resets=True))
    checkpoint_grace: dict[int, int] = field(  # asked to checkpoint before pausing: results it may send without
        default_factory=dict, metadata=saved(ID_TO_ID, resets=True))
    exploiting: dict[int, int] = field(  # trial -> donor: paused to go on from a copy of the donor's checkpoint
        default_factory=dict, metadata=saved(ID_TO_ID, resets=True))  # (lost: it goes on from its newest, the copy)
    tentative: dict[int, dict] = field(  # trial -> its own state, while no result has followed its exploit
        default_factory=dict, metadata=saved(ID_TO_VALUE))
    exploit_waits: set[int] = field(  # of the exploiting, those the scheduler runs again when it chooses
        default_factory=set, metadata=saved(ID_SET, resets=True))
    times: IterationTimes = field(default_factory=IterationTimes, metadata=part_of_state())  # walltime means
    started_at: float = field(default=0.0, metadata=saved())  # the time budget counts from here
    spending: Spending = field(default_factory=Spending, metadata=part_of_state())  # what the budget counts

    # -- this allocation's only (fresh after a restore) ------------------------------------------
    placements: dict[int, tuple[list[int], float]] = field(  # running trial -> (its ranks, since when)
        default_factory=dict, metadata=per_allocation())
    deadline: float | None = field(default=None, metadata=per_allocation())  # set by each allocation (set_deadline)
    window: float | None = field(default=None, metadata=per_allocation())    # usable seconds of an allocation
    stopped_for_deadline: bool = field(default=False, metadata=per_allocation())
    storage_full: str | None = field(default=None, metadata=per_allocation())  # why it stops for want of space
    controls: list[ControlMessage] = field(default_factory=list, metadata=per_allocation())  # to send
    launches: list[Launch] = field(default_factory=list, metadata=per_allocation())          # to place

    # -- this process's own (a snapshot keeps the trials in a table of their own) -----------------
    trials: dict[int, Trial] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)  # TrialState -> how many trials are in it
    notices: list[str] = field(default_factory=list)  # lines for the console, handed out once
    obsolete_checkpoints: list[tuple[int, str]] = field(default_factory=list)  # (trial id, checkpoint) to retire
    now: float = 0.0                # the time of the event being handled
    replaying: bool = False         # restore feeds the journal back: nothing is journaled or sent
    hold_requests: bool = False     # the searcher had nothing: ask again after the next event
