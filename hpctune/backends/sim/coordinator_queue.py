"""The simulated coordinator's own time per message: one server, first come first served.

Every message a worker sends rank 0 (a result, a segment end, a worker joining) occupies the
coordinator for ``s_per_message`` virtual seconds. A message that arrives at ``t`` is handled from
``max(t, the coordinator's next free time)``; what the coordinator decides takes effect at that
start plus ``s_per_message``, and a worker waiting for its answer goes on only from then. With 0
(the default) every answer is instant, as before this model existed.
"""
from __future__ import annotations

import math
import numbers

from ...errors import SpecError

__all__ = ["CoordinatorQueue", "check_s_per_message"]


def check_s_per_message(value, where: str = "coordinator_s_per_message") -> float:
    """``value`` as seconds >= 0.

    Raises:
        SpecError: naming ``where``: no number, negative, infinite or NaN.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
        raise SpecError(where, f"expected seconds >= 0 (the coordinator's time per message), got {value!r}")
    return float(value)


class CoordinatorQueue:
    """Rank 0 as one FIFO server: when each message's answer takes effect, and what it measured.

    Args:
        s_per_message: the coordinator's virtual seconds per message (>= 0).
        start: the virtual time the workers start (the coordinator is free from then).

    Attributes:
        messages: messages handled.
        wait_max_s, wait_total_s: the longest and the summed wait of a message in the queue (from
            its arrival to the start of its handling; the handling itself not included).
    """

    def __init__(self, s_per_message: float = 0.0, start: float = 0.0):
        self.s_per_message = check_s_per_message(s_per_message)
        self.free_at = start
        self.messages = 0
        self.wait_max_s = 0.0
        self.wait_total_s = 0.0

    def serve(self, arrival: float) -> float:
        """Handle a message that arrived at ``arrival`` (messages come in the order they arrived);
        returns when the coordinator's answer to it takes effect (``arrival`` itself with 0 s a message)."""
        start = max(arrival, self.free_at)
        wait = start - arrival
        done = start + self.s_per_message
        self.free_at = done
        self.messages += 1
        self.wait_total_s += wait
        self.wait_max_s = max(self.wait_max_s, wait)
        return done

    @property
    def busy_s(self) -> float:
        """Virtual seconds the coordinator spent handling messages."""
        return self.messages * self.s_per_message

    @property
    def wait_mean_s(self) -> float:
        """The mean wait of a message in the queue (0 before any)."""
        return self.wait_total_s / self.messages if self.messages else 0.0
