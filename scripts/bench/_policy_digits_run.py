"""One run for scripts/bench/policy_digits.py: ``python _policy_digits_run.py STORAGE NAME SEED policy|none``."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hpctune  # noqa: E402
from examples.quickstart import train  # noqa: E402

SPACE = {"lr": hpctune.loguniform(0.05, 1.0), "momentum": 0.9, "l2": 1e-4, "hidden": 32, "layers": 1,
         "batch": 32, "epochs": 30}

if __name__ == "__main__":
    storage, name, seed, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    policy = {"type": "plateau_lr", "patience": 2, "factor": 0.5} if how == "policy" else None
    hpctune.run(train, space=SPACE, metric="val_loss", mode="min", num_samples=4, workers=4, seed=seed,
                policy=policy, storage=storage, name=name, verbose=0)
