"""Reading an experiment, never deciding: :mod:`.analysis` (``hpctune.Analysis``), :mod:`.tensorboard`
(event files), :mod:`.plots` (``hpctune plot``) and :mod:`.live` (the live view)."""
