"""Live hyperparameter policies: change a running trial's hyperparameters from its metrics.

After "Taming Hyper-parameters in Deep Learning Systems" (Mai et al., 2019, KungFu): a policy
watches every result of a running trial and may answer with a new config, which the trial sees at
its next step without being restarted (the function API through ``hpctune.get_config()``, the
class API through ``Trainable.reset_config``). A policy composes with any scheduler (``policy:`` in
the spec): the scheduler decides whether the trial goes on, the policy how. Every change is a
``config`` row of the experiment's lineage table, and each result row carries the values in force
for it (``config/<name>`` columns for the hyperparameters the policy controls).

Built in:

- ``plateau_lr``: lower a hyperparameter (the learning rate) by ``factor`` when the metric has not
  improved by ``min_delta`` for ``patience`` results (Keras/PyTorch's ReduceLROnPlateau, per trial).
- ``schedule``: replay a recorded schedule of configs (``hpctune replay``).
- ``grow_batch``: double the batch size while the gradient noise scale the trainable reports is
  above it (McCandlish et al., 2018, "An Empirical Model of Large-Batch Training": a batch below
  the noise scale wastes steps, one above it wastes examples).

Writing one: subclass :class:`Policy` with a ``name`` of its own, keyword options, and
:meth:`Policy.on_result`; keep its state in :meth:`Policy.state_dict` (a resumed experiment replays
the results through it and must get the same answers).
"""
from __future__ import annotations

from ._base import POLICIES, Policy, build_policy
from ._grow_batch import GrowBatch
from ._plateau import PlateauLR
from ._schedule import Schedule

__all__ = ["Policy", "PlateauLR", "GrowBatch", "Schedule", "POLICIES", "build_policy"]
