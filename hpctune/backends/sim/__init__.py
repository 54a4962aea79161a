"""The simulator: the same controller on virtual workers and a virtual clock (:mod:`.cluster`),
trials from surrogates (:mod:`.surrogates`), a simulation in memory (:mod:`.simulation`,
:mod:`.memory_store`) or into a folder (:mod:`.simulated_store`), and ``hpctune plan`` (:mod:`.plan`)."""
