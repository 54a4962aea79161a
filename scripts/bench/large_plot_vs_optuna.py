"""The same plots of a large experiment drawn by hpctune and by Optuna's matplotlib visualisation.

Reads the experiment ``large_analysis.py`` builds (10,000 trials x 100 results by default) and, in
a fresh process per plot and library (``--repeats`` times), times drawing and saving one PNG:

| hpctune (:func:`hpctune.reporting.plots.write_plots`) | Optuna (``optuna.visualization.matplotlib``) |
| --- | --- |
| ``best_so_far`` | ``plot_optimization_history`` |
| ``learning_curves`` | ``plot_intermediate_values`` |
| ``configs`` | ``plot_parallel_coordinate`` |

Optuna gets the experiment as an in-memory study (the most favourable storage for it: no
database to read), one ``FrozenTrial`` per trial with its config as params, its 100 results as
intermediate values and its last one as the value; building that study is timed apart and not
counted. hpctune reads the experiment folder (``Analysis``), also timed apart. A plot that runs
past ``--timeout`` seconds is reported as such.

Usage (repository root, hpctune's virtual environment active, matplotlib and optuna installed)::

    python scripts/bench/large_plot_vs_optuna.py [--dir .bench/large/10000x100/large] [--repeats 3] [--timeout 600]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PAIRS = {"best_so_far": "plot_optimization_history", "learning_curves": "plot_intermediate_values",
         "configs": "plot_parallel_coordinate"}


def _child(library: str, plot: str, folder: str, out: str) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import hpctune

    started = time.perf_counter()
    analysis = hpctune.Analysis(folder)
    results, trials = analysis.results, analysis.trials
    read = time.perf_counter() - started
    if library == "hpctune":
        from hpctune.reporting.plots import write_plots

        started = time.perf_counter()
        write_plots(analysis, out, names=[plot], skipped=[])
        return {"read": read, "plot": time.perf_counter() - started}
    import optuna
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    started = time.perf_counter()
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    xs = dict(zip(trials.trial_id.tolist(), trials["config/x"].astype(float).tolist()))
    frozen = []
    for trial_id, rows in results.groupby("trial_id"):
        values = dict(zip(rows.training_iteration.astype(int).tolist(), rows.loss.astype(float).tolist()))
        x = xs[trial_id]
        frozen.append(optuna.trial.create_trial(params={"x": x}, distributions={"x": distribution},
                                                value=values[max(values)], intermediate_values=values))
    study = optuna.create_study(direction="minimize")
    study.add_trials(frozen)
    build = time.perf_counter() - started
    started = time.perf_counter()
    axes = getattr(optuna_plots, PAIRS[plot])(study)
    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).get_figure()
    figure.savefig(Path(out) / f"optuna_{plot}.png", dpi=100)
    plt.close(figure)
    return {"read": read, "build": build, "plot": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(ROOT / ".bench" / "large" / "10000x100" / "large"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    times: dict[tuple[str, str], list] = {}
    for repeat in range(args.repeats):
        for plot in PAIRS:
            for library in ("hpctune", "optuna"):
                with tempfile.TemporaryDirectory() as out:
                    command = [sys.executable, __file__, "--child", library, plot, args.dir, out]
                    try:
                        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=True)
                        figures = json.loads(done.stdout.strip().splitlines()[-1])
                    except subprocess.TimeoutExpired:
                        figures = {"plot": None}
                times.setdefault((plot, library), []).append(figures)
                print(f"repeat {repeat + 1}: {library} {plot}: {figures}", file=sys.stderr, flush=True)
    print(f"Command: `python scripts/bench/large_plot_vs_optuna.py --repeats {args.repeats}` on {args.dir}\n")
    print("| plot (hpctune / Optuna) | hpctune s | Optuna s | Optuna / hpctune | Optuna's study built in s |")
    print("|---|---:|---:|---:|---:|")
    for plot, optuna_name in PAIRS.items():
        ours = [f["plot"] for f in times[(plot, "hpctune")]]
        theirs = [f["plot"] for f in times[(plot, "optuna")]]
        build = statistics.median(f["build"] for f in times[(plot, "optuna")] if "build" in f) \
            if any("build" in f for f in times[(plot, "optuna")]) else float("nan")
        mine = statistics.median(ours)
        other = None if None in theirs else statistics.median(theirs)
        other_text = f">{args.timeout:.0f}" if other is None else f"{other:.2f}"
        ratio = "" if other is None else f"{other / mine:.1f}x"
        print(f"| {plot} / {optuna_name} | {mine:.2f} | {other_text} | {ratio} | {build:.1f} |")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(_child(*sys.argv[2:6])))
    else:
        main()
