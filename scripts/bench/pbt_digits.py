"""PBT against the same population with fixed hyperparameters on a real training: the quickstart's
numpy MLP on the digits data (examples/quickstart.py), lr ~ loguniform(1e-3, 1) and momentum ~
uniform(0.5, 0.99) explored, a population of 4 trials of 20 epochs on 4 worker ranks (``--population``,
``--epochs``, ``--hidden`` change them), seeds 0..N-1, each run in a process of its own. Reports per
seed the population's best final validation loss and accuracy (each trial's model at its end) and the
epochs trained in all, then the medians; ``--plot FILE`` draws seed 0: validation loss against epochs
per trial, PBT and fixed, and the learning-rate schedule PBT gave each trial (from the lineage table).

    python scripts/bench/pbt_digits.py --seeds 10
    python scripts/bench/pbt_digits.py --seeds 10 --epochs 60 --hidden 64 --population 8 --plot docs/img/pbt_digits.png
"""
from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _final(storage: Path, name: str, seed: int, how: str, args: argparse.Namespace) -> tuple[float, float, int]:
    import hpctune

    subprocess.run([sys.executable, str(HERE / "_pbt_digits_run.py"), str(storage), name, str(seed), how,
                    str(args.epochs), str(args.hidden), str(args.population)], check=True, capture_output=True)
    results = hpctune.Analysis(storage / name).results.sort_values("timestamp")
    last = results.groupby("trial_id").tail(1)
    return float(last.val_loss.min()), float(last.val_acc.max()), len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32, help="units of the hidden layer")
    parser.add_argument("--population", type=int, default=4, help="trials, one worker rank each")
    parser.add_argument("--synch", action="store_true", help="synchronous pbt (rounds), not asynchronous")
    parser.add_argument("--plot", help="a PNG of seed 0: loss against epochs, and PBT's lr schedules")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            pbt = _final(Path(tmp), f"pbt{seed}", seed, "pbt-synch" if args.synch else "pbt", args)
            fixed = _final(Path(tmp), f"fixed{seed}", seed, "fixed", args)
            rows.append((pbt, fixed))
            print(f"seed {seed}: best final val_loss  pbt {pbt[0]:.4f}  fixed {fixed[0]:.4f}   val_acc  pbt "
                  f"{pbt[1]:.4f}  fixed {fixed[1]:.4f}   epochs  pbt {pbt[2]}  fixed {fixed[2]}", flush=True)
        if args.plot:
            _plot(Path(tmp), Path(args.plot), args)
    median = lambda k, i: statistics.median(r[k][i] for r in rows)  # noqa: E731
    print(f"median over {len(rows)} seeds: val_loss  pbt {median(0, 0):.4f}  fixed {median(1, 0):.4f};  val_acc  "
          f"pbt {median(0, 1):.4f}  fixed {median(1, 1):.4f};  pbt lower loss in "
          f"{sum(r[0][0] < r[1][0] for r in rows)} of {len(rows)};  epochs  pbt {median(0, 2)}  fixed {median(1, 2)}")


def _lr_by_epoch(analysis, trial_id: int, epochs: int) -> list[float]:
    """The lr trial ``trial_id`` trained each epoch 1..epochs with: its first config, changed from
    each exploit's iteration on (the lineage table)."""
    import json

    events = analysis.lineage[analysis.lineage.trial_id == trial_id].sort_values("t", kind="stable")
    lrs = [math.nan] * (epochs + 1)
    for row in events.itertuples():
        if row.config_json:
            lr = json.loads(row.config_json)["lr"]
            lrs[int(row.training_iteration) + 1:] = [lr] * (epochs - int(row.training_iteration))
    return lrs[1:]


def _plot(storage: Path, out: Path, args: argparse.Namespace) -> None:
    from _plotting import pyplot, save  # this script's folder is on sys.path

    plt = pyplot()

    import hpctune

    figure, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    pbt, fixed = hpctune.Analysis(storage / "pbt0"), hpctune.Analysis(storage / "fixed0")
    mode = "synchronous" if args.synch else "asynchronous"
    for axis, analysis, title in ((axes[0], pbt, f"pbt, {mode} (exploit + explore every 4 epochs)"),
                                  (axes[2], fixed, "the same trials, fixed hyperparameters")):
        results = analysis.results.sort_values("timestamp")
        for trial_id, rows in results.groupby("trial_id"):
            axis.plot(rows.training_iteration, rows.val_loss, marker=".", markersize=2, linewidth=1,
                      label=f"trial {trial_id}", color=f"C{trial_id}")
        axis.set_yscale("log")
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("epoch (training_iteration)")
        axis.set_ylabel("validation loss")
    bottom = min(axes[0].get_ylim()[0], axes[2].get_ylim()[0])
    top = min(max(axes[0].get_ylim()[1], axes[2].get_ylim()[1]), 3.0)
    for axis in (axes[0], axes[2]):
        axis.set_ylim(bottom, top)
    for trial_id in sorted(pbt.trials.trial_id):
        axes[1].step(range(1, args.epochs + 1), _lr_by_epoch(pbt, trial_id, args.epochs), where="post",
                     linewidth=1, label=f"trial {trial_id}", color=f"C{trial_id}")
    axes[1].set_yscale("log")
    axes[1].set_title("pbt: the lr each trial trained with", fontsize=10)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("lr")
    axes[2].legend(fontsize=7, loc="upper right", ncol=2)
    figure.suptitle(f"PBT on the digits MLP ({args.hidden} hidden units, {args.epochs} epochs, population "
                    f"{args.population}), seed 0", fontsize=10)
    save(figure, out)


if __name__ == "__main__":
    main()
