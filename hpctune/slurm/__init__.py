"""Slurm: asking it about a job (:mod:`.job`), the allocation an experiment runs in with its end,
requeue and record (:mod:`.allocation`), and ``hpctune submit``'s batch job through submitit (:mod:`.submit`)."""
