"""A live policy against the same trials without it: ``plateau_lr`` (halve lr after 2 epochs
without a better validation loss) on the digits MLP (examples/quickstart.py) with high learning
rates (lr ~ loguniform(0.05, 1), momentum 0.9), 4 trials of 30 epochs on 4 worker ranks, seeds
0..N-1, each run in a process of its own. The same configs, the same epochs: only the policy
differs. Reports per seed the best and the median final validation loss of the 4 trials, and the
changes the policy made, then the medians.

    python scripts/bench/policy_digits.py --seeds 10
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

    subprocess.run([sys.executable, str(HERE / "_policy_digits_run.py"), str(storage), name, str(seed), how],
                   check=True, capture_output=True)
    analysis = hpctune.Analysis(storage / name)
    last = analysis.results.sort_values("timestamp").groupby("trial_id").tail(1)
    changes = int((analysis.lineage.event == "config").sum())
    return float(last.val_loss.min()), float(last.val_loss.median()), changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            with_policy = _final(Path(tmp), f"policy{seed}", seed, "policy")
            without = _final(Path(tmp), f"none{seed}", seed, "none")
            rows.append((with_policy, without))
            print(f"seed {seed}: final val_loss best  policy {with_policy[0]:.4f}  none {without[0]:.4f}   median  "
                  f"policy {with_policy[1]:.4f}  none {without[1]:.4f}   lr changes {with_policy[2]}", flush=True)
    median = lambda k, i: statistics.median(r[k][i] for r in rows)  # noqa: E731
    print(f"median over {len(rows)} seeds: best  policy {median(0, 0):.4f}  none {median(1, 0):.4f};  median trial  "
          f"policy {median(0, 1):.4f}  none {median(1, 1):.4f};  policy better (best) in "
          f"{sum(r[0][0] < r[1][0] for r in rows)} of {len(rows)}, (median trial) in "
          f"{sum(r[0][1] < r[1][1] for r in rows)} of {len(rows)}")


if __name__ == "__main__":
    main()
