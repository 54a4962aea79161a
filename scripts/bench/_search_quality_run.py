"""One hpctune run for scripts/bench/search_quality.py:
``python _search_quality_run.py STORAGE NAME SEED PROBLEM METHOD RESOURCE`` (run from the repository root)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hpctune  # noqa: E402
from scripts.bench._mf_problems import BRANIN_SPACE, HARTMANN6_SPACE, train  # noqa: E402

MAX_T = 27
ASHA = {"type": "asha", "grace_period": 1, "max_t": MAX_T, "reduction_factor": 3}
METHODS = {
    "random+asha": ("random", ASHA),
    "tpe+asha": ({"type": "tpe"}, ASHA),
    "tpe-no-budget+asha": ({"type": "tpe", "multi_fidelity": False}, {**ASHA, "stop_variant": True}),
    "random+asha-stop": ("random", {**ASHA, "stop_variant": True}),
    "tpe+asha-stop": ({"type": "tpe"}, {**ASHA, "stop_variant": True}),
}

if __name__ == "__main__":
    storage, name, seed, problem, method, resource = sys.argv[1:7]
    space = {**(BRANIN_SPACE if problem == "branin" else HARTMANN6_SPACE), "problem": problem, "max_t": MAX_T}
    searcher, scheduler = METHODS[method]
    hpctune.run(train, space=space, metric="loss", mode="min", num_samples=int(resource) // 2, workers=4,
                seed=int(seed), searcher=searcher, scheduler=scheduler, storage=storage, name=name, verbose=0)
