"""The experiment's scheduler, searcher and live policy, built from its spec (checked before anything is written)."""
from __future__ import annotations

from ..errors import SpecError
from ..policies import Policy, build_policy
from ..schedulers import Scheduler, build_scheduler
from ..searchers import Searcher, build_searcher
from ..spec import ExperimentSpec

__all__ = ["build_algorithms", "build_policy_of"]


def build_algorithms(spec: ExperimentSpec) -> tuple[Scheduler, Searcher]:
    """The scheduler and the searcher ``spec`` describes, new (not set up).

    The spec checks their shape only; ``hpctune.run`` and the CLI call this before anything
    is written to storage, so that an unknown type or option is refused there.

    Raises:
        SpecError: an unknown type or option, or a bad option value, naming it (``scheduler.max_t: ...``).
    """
    scheduler = build_scheduler(spec.scheduler)
    scheduler.set_space(spec.space)
    searcher = build_searcher(spec.searcher)
    searcher.set_space(spec.space)
    build_policy_of(spec)  # checked here too, before anything is written
    return scheduler, searcher


def build_policy_of(spec: ExperimentSpec) -> Policy | None:
    """The live policy ``spec`` describes (new, not set up), or None.

    Raises:
        SpecError: an unknown type or option, or a hyperparameter the space does not have (``policy.key: ...``).
    """
    if spec.policy is None:
        return None
    policy = build_policy(spec.policy)
    try:
        policy.set_space(spec.space)
    except SpecError as exc:
        raise SpecError(f"policy.{exc.where}", exc.what) from None
    return policy
