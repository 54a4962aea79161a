"""Search quality at equal resource on multi-fidelity problems with known optima (multi-fidelity
Branin and Hartmann-6, scripts/bench/_mf_problems.py; 27 epochs, epoch e evaluates fidelity e/27):
hpctune's random + asha, tpe + asha (learning from every rung with its budget) and tpe told only
each trial's last value under asha's stop variant (a widely used peer's way), each on 4 worker
ranks, against Optuna's own TPE + HyperbandPruner (4 threads), the reference users would pick.

*Resource*: epochs trained in all, counted in the order results arrived. *Regret* at resource R:
the best full-fidelity (epoch 27) loss found within the first R epochs minus the optimum (none
found yet: no value). Medians over seeds, at a third, two thirds and all of the resource.

    python scripts/bench/search_quality.py --seeds 10 --resource 600 --plot docs/img/search_quality.png
"""
from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from scripts.bench._mf_problems import BRANIN_OPTIMUM, HARTMANN6_OPTIMUM, value  # noqa: E402
from scripts.bench._plotting import pyplot, save  # noqa: E402

MAX_T = 27
OPTIMA = {"branin": BRANIN_OPTIMUM, "hartmann6": HARTMANN6_OPTIMUM}
HPCTUNE_METHODS = ["random+asha", "tpe+asha", "tpe-no-budget+asha"]
OPTUNA_METHOD = "optuna tpe+hyperband"
ALL_METHODS = [*HPCTUNE_METHODS, "random+asha-stop", "tpe+asha-stop", OPTUNA_METHOD]


def _regret_curve(events: list[tuple[int, float | None]], optimum: float, resource: int) -> list[float]:
    """``events``: per epoch trained, in order, the full-fidelity loss it gave (None below epoch 27)
    -> regret after each of the first ``resource`` epochs (nan until a full-fidelity value)."""
    best, curve = math.inf, []
    for _, loss in events[:resource]:
        if loss is not None:
            best = min(best, loss)
        curve.append(best - optimum if best < math.inf else math.nan)
    return curve + [curve[-1] if curve else math.nan] * (resource - len(curve))


def _hpctune(storage: Path, problem: str, method: str, seed: int, resource: int) -> list[float]:
    import hpctune

    name = f"{problem}-{method}-{seed}".replace("+", "_")
    subprocess.run([sys.executable, str(REPO / "scripts" / "bench" / "_search_quality_run.py"), str(storage), name,
                    str(seed), problem, method, str(resource)], check=True, capture_output=True, cwd=REPO)
    results = hpctune.Analysis(storage / name).results.sort_values("timestamp")
    events = [(int(it), float(loss) if it == MAX_T else None)
              for it, loss in zip(results.training_iteration, results.loss)]
    return _regret_curve(events, OPTIMA[problem], resource)


def _optuna(problem: str, seed: int, resource: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from scripts.bench._mf_problems import BRANIN_SPACE, HARTMANN6_SPACE

    space = BRANIN_SPACE if problem == "branin" else HARTMANN6_SPACE
    events: list[tuple[int, float | None]] = []
    lock = threading.Lock()

    def objective(trial):
        config = {name: trial.suggest_float(name, domain.low, domain.high) for name, domain in space.items()}
        loss = math.inf
        for epoch in range(1, MAX_T + 1):
            loss = value(problem, config, epoch / MAX_T)
            with lock:
                events.append((epoch, loss if epoch == MAX_T else None))
                if len(events) >= resource:
                    trial.study.stop()
            trial.report(loss, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_T,
                                                                      reduction_factor=3))
    study.optimize(objective, n_trials=resource, n_jobs=4)
    return _regret_curve(events, OPTIMA[problem], resource)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--resource", type=int, default=600, help="epochs trained in all, per run")
    parser.add_argument("--problems", nargs="+", default=["branin", "hartmann6"])
    parser.add_argument("--plot", help="a PNG of the median regret against resource")
    parser.add_argument("--methods", nargs="+", default=[*HPCTUNE_METHODS, OPTUNA_METHOD],
                        help=f"of {', '.join(ALL_METHODS)}")
    args = parser.parse_args()
    methods = [m for m in args.methods if m != OPTUNA_METHOD]
    curves: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for problem in args.problems:
            for seed in range(args.seeds):
                for method in methods:
                    curves.setdefault((problem, method), []).append(
                        _hpctune(Path(tmp), problem, method, seed, args.resource))
                if OPTUNA_METHOD in args.methods:
                    curves.setdefault((problem, OPTUNA_METHOD), []).append(_optuna(problem, seed, args.resource))
                print(f"{problem} seed {seed}: regret at {args.resource} epochs  " + "  ".join(
                    f"{m} {curves[(problem, m)][-1][-1]:.4g}" for m in args.methods), flush=True)
    marks = [args.resource // 3, 2 * args.resource // 3, args.resource]
    print("\n| problem | method | " + " | ".join(f"median regret at {r} epochs" for r in marks) + " |")
    print("| --- | --- | " + " | ".join("---:" for _ in marks) + " |")
    for (problem, method), runs in curves.items():
        medians = [_median([run[r - 1] for run in runs]) for r in marks]
        print(f"| {problem} | {method} | " + " | ".join(f"{m:.4g}" for m in medians) + " |")
    if args.plot:
        _plot(curves, args, Path(args.plot))


def _median(values: list[float]) -> float:
    """The median, a run with no full-fidelity value yet counting as worst (infinite regret)."""
    return statistics.median([v if not math.isnan(v) else math.inf for v in values])


def _plot(curves: dict, args: argparse.Namespace, out: Path) -> None:
    plt = pyplot()

    figure, axes = plt.subplots(1, len(args.problems), figsize=(6 * len(args.problems), 4))
    axes = [axes] if len(args.problems) == 1 else axes
    for axis, problem in zip(axes, args.problems):
        for method in args.methods:
            runs = curves[(problem, method)]
            median = [_median([run[r] for run in runs]) for r in range(args.resource)]
            axis.plot(range(1, args.resource + 1), median, label=method)
        axis.set_yscale("log")
        axis.set_xlabel("epochs trained in all")
        axis.set_ylabel(f"median regret over {args.seeds} seeds")
        axis.set_title(f"multi-fidelity {problem}", fontsize=10)
    axes[0].legend(fontsize=8)
    save(figure, out)


if __name__ == "__main__":
    main()
