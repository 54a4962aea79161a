"""One run for scripts/bench/pbt_digits.py:
``python _pbt_digits_run.py STORAGE NAME SEED pbt|pbt-synch|fixed EPOCHS HIDDEN POPULATION``."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hpctune  # noqa: E402
from examples.quickstart import train  # noqa: E402

if __name__ == "__main__":
    storage, name, seed, how = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    epochs, hidden, population = (int(value) for value in sys.argv[5:8])
    space = {"lr": hpctune.loguniform(1e-3, 1.0), "momentum": hpctune.uniform(0.5, 0.99), "l2": 1e-4,
             "hidden": hidden, "layers": 1, "batch": 32, "epochs": epochs}
    scheduler = "fifo" if how == "fixed" else {"type": "pbt", "perturbation_interval": 4, "synch": how == "pbt-synch"}
    hpctune.run(train, space=space, metric="val_loss", mode="min", num_samples=population, workers=population,
                seed=seed, scheduler=scheduler, storage=storage, name=name, verbose=0)
