"""One run for scripts/bench/result_wait.py:
``python _result_wait_run.py STORAGE SEARCHER TRIALS background|inline`` (from the repository root).
Prints the seconds each report waited for its answer, one a line."""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import hpctune  # noqa: E402
from hpctune.searchers import SEARCHERS  # noqa: E402


def train(config: dict) -> None:
    """Three epochs of 20 ms, each reporting how long the previous report waited (``waited``)."""
    waited = 0.0
    for epoch in range(1, 4):
        time.sleep(0.02)
        started = time.monotonic()
        hpctune.report({"loss": (config["lr"] - 0.01) ** 2 + config["momentum"] / epoch, "waited": waited})
        waited = time.monotonic() - started


if __name__ == "__main__":
    storage, searcher, trials, mode = sys.argv[1:5]
    if mode == "inline":  # the same sampler, asked on the coordinator's thread between messages
        inline = type(f"{searcher}-inline", (SEARCHERS.get(searcher),),
                      {"name": f"{searcher}-inline", "fits_model": False})
        searcher = inline.name
    space = {"lr": hpctune.loguniform(1e-4, 1.0), "momentum": hpctune.uniform(0.5, 0.99),
             "width": hpctune.quniform(16, 256, 16), "act": hpctune.choice(["relu", "tanh", "gelu"])}
    started = time.monotonic()
    analysis = hpctune.run("scripts.bench._result_wait_run:train", space=space, metric="loss", num_samples=int(trials),
                           searcher=searcher, storage=storage, name=f"{searcher}-{mode}", workers=4, verbose=0)
    print(f"wall {time.monotonic() - started:.3f}")
    results = analysis.results
    for waited in results.waited[results.training_iteration > 1]:  # the first report has none before it
        print(f"{waited:.6f}")
