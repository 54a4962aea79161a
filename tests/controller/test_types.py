"""A type checker follows the controller: ``mypy hpctune/controller`` passes with the repository's
configuration (setup.cfg's ``[mypy]``). Its state is one declared dataclass and its parts are
classes given what they use, so a misspelt field or a wrong argument between the parts fails here.
Skipped without mypy (the test extra has it), except in CI (HPCTUNE_CI=1), where that fails."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None and not os.environ.get("HPCTUNE_CI"),
                    reason="needs mypy (the test extra); CI has it")
def test_mypy_follows_the_controller():
    # about 20 s with an empty cache (.mypy_cache in the repository), under a second after
    done = subprocess.run([sys.executable, "-m", "mypy", "hpctune/controller"], cwd=REPO, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
