"""PBT against the same population with fixed hyperparameters on a real training: the quickstart's
numpy MLP on the digits data (examples/quickstart.py), lr ~ loguniform(1e-3, 1) and momentum ~
uniform(0.5, 0.99) explored, 4 trials of 20 epochs on 4 worker ranks, seeds 0..N-1, each run in a
process of its own. Reports per seed the population's best final validation loss and accuracy (each
trial's model at its end) and the epochs trained in all, then the medians.

    python scripts/bench/pbt_digits.py --seeds 10
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _final(storage: Path, name: str, seed: int, how: str) -> tuple[float, float, int]:
    import hpctune

    subprocess.run([sys.executable, str(HERE / "_pbt_digits_run.py"), str(storage), name, str(seed), how],
                   check=True, capture_output=True)
    results = hpctune.Analysis(storage / name).results.sort_values("timestamp")
    last = results.groupby("trial_id").tail(1)
    return float(last.val_loss.min()), float(last.val_acc.max()), len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            pbt = _final(Path(tmp), f"pbt{seed}", seed, "pbt")
            fixed = _final(Path(tmp), f"fixed{seed}", seed, "fixed")
            rows.append((pbt, fixed))
            print(f"seed {seed}: best final val_loss  pbt {pbt[0]:.4f}  fixed {fixed[0]:.4f}   val_acc  pbt "
                  f"{pbt[1]:.4f}  fixed {fixed[1]:.4f}   epochs  pbt {pbt[2]}  fixed {fixed[2]}", flush=True)
    median = lambda k, i: statistics.median(r[k][i] for r in rows)  # noqa: E731
    print(f"median over {len(rows)} seeds: val_loss  pbt {median(0, 0):.4f}  fixed {median(1, 0):.4f};  val_acc  "
          f"pbt {median(0, 1):.4f}  fixed {median(1, 1):.4f};  pbt lower loss in "
          f"{sum(r[0][0] < r[1][0] for r in rows)} of {len(rows)};  epochs  pbt {median(0, 2)}  fixed {median(1, 2)}")


if __name__ == "__main__":
    main()
