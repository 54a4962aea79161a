"""The Searcher interface: decides *what* config the next trial gets."""
from __future__ import annotations

from ..errors import SpecError
from ..registry import Configurable, Registry

__all__ = ["Searcher", "FINISHED", "SEARCHERS", "check_seed"]

SEARCHERS = Registry("searcher")


class _Finished:
    def __repr__(self) -> str:
        return "FINISHED"


FINISHED = _Finished()
"""Returned by :meth:`Searcher.suggest` when the search has no more configs."""


def check_seed(seed) -> None:
    """Refuse a searcher's ``seed`` option that is neither null nor an integer >= 0 (what numpy's
    generators take), naming ``seed``."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise SpecError("seed", f"expected an integer >= 0 or null, got {seed!r}")


class Searcher(Configurable):
    """Base class. A searcher sees configs and results, never MPI, files or Trial objects.

    :meth:`suggest` returns a nested config dict, ``None`` (nothing now, ask
    again later) or :data:`FINISHED`. :meth:`state_dict` must capture the whole
    state (random generator included) so that a resumed search continues
    exactly as an uninterrupted one.
    """

    kind = "searcher"
    name = "base"
    fits_model = False
    """True for a searcher whose suggestions take long (a model fit): the MPI backend computes them
    on a thread of their own, off the path of results (:mod:`hpctune.controller.suggestions`)."""

    def set_space(self, space: dict) -> None:
        """The experiment's search space, before anything is written (an option that names
        hyperparameters is checked against it here); :meth:`setup` gets it again.

        Raises:
            SpecError: an option that does not fit the space, naming ``searcher.<option>``.
        """

    def setup(self, space: dict, metric: str, mode: str, num_samples: int, seed: int) -> None:
        self.space = space
        self.metric = metric
        self.mode = mode
        self.num_samples = num_samples
        self.seed = seed

    def set_fidelity(self, attr: str, levels: list) -> None:
        """Called once after :meth:`setup` when the scheduler has rungs (``asha``, ``sha``,
        ``hyperband``): a result whose ``attr`` equals one of ``levels`` is a trial's value at that
        budget, and most trials stop at a low one. A searcher that fits a model can learn from
        those (BOHB-style); the default ignores it."""

    def total_trials(self) -> int | None:
        """How many trials the search makes in all, if known."""
        return None

    def suggest(self, trial_id: int):
        raise NotImplementedError

    def replay_suggestion(self, trial_id: int, config: dict) -> None:
        """On resume, replaying the journal: trial ``trial_id`` was given ``config`` before the
        stop (as recorded). Bring the searcher to the state suggesting it left it in, without a
        new suggestion; the trial keeps ``config`` whatever this does.

        The default suggests again and drops the answer: right for a searcher whose suggestion
        follows from its state (random and grid do). A searcher whose suggestions depend on
        anything else (a model fitted on results, threads, time) overrides this to take
        ``config`` as its own.
        """
        self.suggest(trial_id)

    def on_trial_result(self, trial_id: int, result: dict) -> None:
        pass

    def on_trial_complete(self, trial_id: int, result: dict | None, error: bool = False) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
