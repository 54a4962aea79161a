"""The simulator: the same controller on virtual workers and a virtual clock (:mod:`.cluster`, the
coordinator's time per message in :mod:`.coordinator_queue`), trials from surrogates (:mod:`.surrogates`),
a simulation in memory (:mod:`.simulation`, :mod:`.memory_store`) or into a folder (the ``sim``
backend, :mod:`.backend`, :mod:`.simulated_store`), and ``hpctune plan`` (:mod:`.plan`)."""
