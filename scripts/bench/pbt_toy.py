"""PBT against the same population with fixed hyperparameters, on the PBT paper's toy problem
(examples/pbt_toy.py): 4 trials of 40 steps, 4 worker ranks, seeds 0..N-1, each run in a process
of its own. Reports per seed the population's best final Q (each trial's Q at its last step; the
optimum is 1.2) and the steps trained (PBT trains a few more: a recipient goes on from its donor's
checkpoint, which may be older than its own last step), then the medians; draws Q against steps
for seed 0 (--plot FILE).

    python scripts/bench/pbt_toy.py --seeds 10 --plot docs/img/pbt_toy.png
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(storage: Path, seed: int, fixed: bool) -> Path:
    name = f"{'fixed' if fixed else 'pbt'}{seed}"
    subprocess.run([sys.executable, str(REPO / "examples" / "pbt_toy.py"), "--storage", str(storage), "--name", name,
                    "--seed", str(seed), *(["--fixed"] if fixed else [])], check=True, capture_output=True)
    return storage / name


def _final(folder: Path) -> tuple[float, int]:
    import hpctune

    results = hpctune.Analysis(folder).results.sort_values("timestamp")
    last = results.groupby("trial_id").tail(1)  # each trial's model at its end
    return float(last.Q.max()), len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--plot", help="a PNG of Q against steps for seed 0, PBT and fixed")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        for seed in range(args.seeds):
            pbt, pbt_steps = _final(_run(storage, seed, fixed=False))
            fixed, fixed_steps = _final(_run(storage, seed, fixed=True))
            rows.append((seed, pbt, fixed, pbt_steps, fixed_steps))
            print(f"seed {seed}: best final Q  pbt {pbt:.4f}  fixed {fixed:.4f}   steps trained  pbt {pbt_steps}  "
                  f"fixed {fixed_steps}", flush=True)
        print(f"median over {len(rows)} seeds: best final Q  pbt {statistics.median(r[1] for r in rows):.4f}  "
              f"fixed {statistics.median(r[2] for r in rows):.4f};  pbt better in "
              f"{sum(r[1] > r[2] for r in rows)} of {len(rows)};  steps  pbt {statistics.median(r[3] for r in rows)}  "
              f"fixed {statistics.median(r[4] for r in rows)}")
        if args.plot:
            _plot(storage, Path(args.plot))


def _plot(storage: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import hpctune

    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for axis, name, title in ((axes[0], "pbt0", "pbt (exploit + explore every 4 steps)"),
                              (axes[1], "fixed0", "the same 4 trials, h fixed")):
        results = hpctune.Analysis(storage / name).results.sort_values("timestamp")
        for trial_id, rows in results.groupby("trial_id"):
            axis.plot(rows.training_iteration, rows.Q, marker=".", markersize=3, linewidth=1, label=f"trial {trial_id}")
        axis.axhline(1.2, color="grey", linestyle=":", linewidth=1)
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("step (training_iteration)")
    axes[0].set_ylabel("Q(theta)")
    axes[1].legend(fontsize=8, loc="lower right")
    figure.suptitle("PBT paper's toy problem, seed 0 (a line jumps where a trial copied another's theta)", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
