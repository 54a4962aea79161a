"""PBT against the same population with fixed hyperparameters, on the PBT paper's toy problem
(examples/pbt_toy.py): 4 trials of 40 steps, 4 worker ranks, seeds 0..N-1, each run in a process
of its own. Reports per seed the population's best final Q (each trial's Q at its last step; the
optimum is 1.2) and the steps trained (a recipient goes on from its donor's checkpoint: the steps
between its own iteration and the donor's are skipped, or repeated where the donor is behind), then
the medians; --plot FILE draws seed 0 in the form of the paper's figure 2: Q against steps, and
theta's paths over the contours of Q.

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


def _run(storage: Path, seed: int, fixed: bool, synch: bool = False) -> Path:
    name = f"{'fixed' if fixed else 'pbt'}{seed}"
    how = ["--fixed"] if fixed else ["--synch"] if synch else []
    subprocess.run([sys.executable, str(REPO / "examples" / "pbt_toy.py"), "--storage", str(storage), "--name", name,
                    "--seed", str(seed), *how], check=True, capture_output=True)
    return storage / name


def _final(folder: Path) -> tuple[float, int]:
    import hpctune

    results = hpctune.Analysis(folder).results.sort_values("timestamp")
    last = results.groupby("trial_id").tail(1)  # each trial's model at its end
    return float(last.Q.max()), len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--synch", action="store_true", help="synchronous pbt (rounds), not asynchronous")
    parser.add_argument("--plot", help="a PNG of seed 0, PBT and fixed: Q against steps, and theta's paths")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        storage = Path(tmp)
        for seed in range(args.seeds):
            pbt, pbt_steps = _final(_run(storage, seed, fixed=False, synch=args.synch))
            fixed, fixed_steps = _final(_run(storage, seed, fixed=True))
            rows.append((seed, pbt, fixed, pbt_steps, fixed_steps))
            print(f"seed {seed}: best final Q  pbt {pbt:.4f}  fixed {fixed:.4f}   steps trained  pbt {pbt_steps}  "
                  f"fixed {fixed_steps}", flush=True)
        print(f"median over {len(rows)} seeds: best final Q  pbt {statistics.median(r[1] for r in rows):.4f}  "
              f"fixed {statistics.median(r[2] for r in rows):.4f};  pbt better in "
              f"{sum(r[1] > r[2] for r in rows)} of {len(rows)};  steps  pbt {statistics.median(r[3] for r in rows)}  "
              f"fixed {statistics.median(r[4] for r in rows)}")
        if args.plot:
            _plot(storage, Path(args.plot), "synchronous" if args.synch else "asynchronous")


def _plot(storage: Path, out: Path, mode: str) -> None:
    from _plotting import pyplot, save  # this script's folder is on sys.path

    plt = pyplot()

    import hpctune

    import numpy as np

    figure, axes = plt.subplots(2, 2, figsize=(10, 8.4))
    grid = np.linspace(-0.05, 0.95, 101)
    t0, t1 = np.meshgrid(grid, grid)
    for column, (name, title) in enumerate((("pbt0", f"pbt, {mode} (exploit + explore every 4 steps)"),
                                            ("fixed0", "the same 4 trials, h fixed"))):
        results = hpctune.Analysis(storage / name).results.sort_values("timestamp")
        over_time, plane = axes[0][column], axes[1][column]
        plane.contour(t0, t1, 1.2 - t0 ** 2 - t1 ** 2, levels=12, colors="lightgrey", linewidths=0.8)
        for trial_id, rows in results.groupby("trial_id"):
            style = dict(marker=".", markersize=3, linewidth=1, color=f"C{trial_id}", label=f"trial {trial_id}")
            over_time.plot(rows.training_iteration, rows.Q, **style)
            plane.plot(np.r_[0.9, rows.theta0], np.r_[0.9, rows.theta1], **style)
        over_time.axhline(1.2, color="grey", linestyle=":", linewidth=1)
        over_time.set_ylim(-0.5, 1.25)
        over_time.set_title(title, fontsize=10)
        over_time.set_xlabel("step (training_iteration)")
        over_time.set_ylabel("Q(theta)")
        plane.set_xlim(-0.05, 0.95)
        plane.set_ylim(-0.05, 0.95)
        plane.set_aspect("equal")
        plane.set_xlabel("theta0")
        plane.set_ylabel("theta1")
        plane.set_title("theta's path from (0.9, 0.9); contours of Q", fontsize=10)
    axes[0][1].legend(fontsize=8, loc="lower right")
    figure.suptitle("PBT paper's toy problem (its figure 2's form), seed 0: a line jumps where a trial copied "
                    "another's theta", fontsize=10)
    save(figure, out)


if __name__ == "__main__":
    main()
