"""``python -m hpctune.cli ARGS``: the ``hpctune`` command."""
import sys

from .commands import main

sys.exit(main())
