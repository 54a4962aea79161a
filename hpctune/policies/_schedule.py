"""``schedule``: replay a recorded schedule of configs (``hpctune replay``)."""
from __future__ import annotations

from ..errors import SpecError
from ..space import flatten
from ._base import POLICIES, Policy

__all__ = ['Schedule']


@POLICIES.register
class Schedule(Policy):
    """Replay a schedule of configs: ``stretches`` is ``[[from_iteration, config], ...]``, the first
    from 0; the iterations after ``from_iteration`` (up to the next stretch's) train with ``config``
    (all of it). ``hpctune replay DIR TRIAL`` builds one from a trial's lineage
    (:meth:`hpctune.Analysis.schedule`), to train a PBT trial's model again from scratch.
    """

    name = "schedule"

    def __init__(self, *, stretches: list):
        if (not isinstance(stretches, (list, tuple)) or not stretches
                or not all(isinstance(s, (list, tuple)) and len(s) == 2 and isinstance(s[1], dict)
                           and isinstance(s[0], int) and not isinstance(s[0], bool) for s in stretches)):
            raise SpecError("stretches", "expected a list of [from_iteration, config] pairs")
        starts = [s[0] for s in stretches]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:])):
            raise SpecError("stretches", f"from_iteration must start at 0 and increase, got {starts}")
        self.stretches = [[int(start), dict(config)] for start, config in stretches]
        flats = [flatten(config) for _, config in self.stretches]
        names = dict.fromkeys(name for flat in flats for name in flat)
        self.keys = tuple(name for name in names if len({repr(flat.get(name)) for flat in flats}) > 1)

    def config_after(self, iteration: int) -> dict:
        """The config of the iteration after ``iteration``."""
        chosen = self.stretches[0][1]
        for start, config in self.stretches:
            if start <= iteration:
                chosen = config
        return chosen

    def on_result(self, trial_id, result, config):
        wanted = self.config_after(int(result["training_iteration"]))
        return None if wanted == config else wanted
