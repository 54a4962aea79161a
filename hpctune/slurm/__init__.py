"""Slurm: asking it about a job (:mod:`.job`), the allocation an experiment runs in with its end,
requeue and record (:mod:`.allocation`), ``hpctune submit``'s batch job through submitit (:mod:`.submit`),
and what that job does when a node of its allocation is lost (:mod:`.node_loss`)."""
