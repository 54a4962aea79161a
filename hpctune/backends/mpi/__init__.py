"""The MPI backend: a coordinator loop on rank 0 (:mod:`.coordinator`), the worker ranks' loop
(:mod:`.workers`), spawning ranks without a launcher (:mod:`.launch`), where a trial's ranks go
(:mod:`.placement`), and the processes a trial runs in (:mod:`.trial_process`, :mod:`.trial_group`,
:mod:`.group_main`)."""
