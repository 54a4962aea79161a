"""Large-experiment benchmark: reading and plotting an experiment of 10,000 trials x 100 results.

Builds the experiment once through real hpctune code, then times what a user does with it, each
step in a fresh Python process, ``--repeats`` times, and prints the medians as a Markdown table:

- (a) ``hpctune.Analysis(DIR)`` and ``.trials`` (what ``status`` and the closing summary read);
- (b) ``.results``: every result row (the history: the part files), timed after (a) in the same process;
- (c) ``hpctune plot DIR --out TMP``: every plot (:mod:`hpctune.reporting.plots`), the whole command;
- (d) ``hpctune status DIR``.

Each row gives the time inside the process (``perf_counter`` around the step, imports excluded where
they can be) and the wall time of the whole process (interpreter start, imports, the step). A last
table times each plot on its own, in one process after the load (the median over the repeats).

The experiment: FIFO and random search over ``{"x": uniform(0, 1)}``, ``--trials`` trials that each
report ``--reports`` results (``loss = x + 1/iteration``, no checkpoint) and do nothing else, run by
``hpctune.run`` on the ``local`` backend (trials one after the other in the coordinator's process:
17,000 to 22,000 results/s on a 2-core VM, against about 2,100 on 2 spawned MPI worker ranks with a
no-op trainable, so 10,000 x 100 builds in about a minute instead of eight). It is cached under
``.bench/large/<trials>x<reports>/large`` and reused by later runs while it holds every result
(``--rebuild`` builds it again).

Usage (repository root, hpctune's virtual environment active, matplotlib installed)::

    python scripts/bench/large_analysis.py [--trials 10000] [--reports 100] [--repeats 3] [--rebuild] [--json PATH]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent.parent
CACHE = ROOT / ".bench" / "large"
STEPS = {"load": "(a) `Analysis(DIR)` + `.trials`", "results": "(b) `.results`",
         "plot": "(c) `hpctune plot DIR` (every plot)", "status": "(d) `hpctune status DIR`"}


def train(config: dict) -> None:
    """The no-op trainable: ``config["reports"]`` results of ``loss = x + 1/iteration``."""
    import hpctune

    for i in range(1, int(config["reports"]) + 1):
        hpctune.report({"loss": config["x"] + 1.0 / i})


# --------------------------------------------------------------------------- children (fresh processes)

def child_build(storage: str, trials: str, reports: str) -> dict:
    import hpctune

    started = time.perf_counter()
    hpctune.run(train, space={"x": hpctune.uniform(0, 1), "reports": int(reports)}, metric="loss", mode="min",
                num_samples=int(trials), backend="local", storage=storage, name="large", seed=0, verbose=0)
    return {"build_s": time.perf_counter() - started}


def child_read(folder: str) -> dict:
    """(a) and (b) in one fresh process."""
    import hpctune
    import hpctune.reporting.analysis  # noqa: F401  (pandas and the store imported before the clock starts)

    t0 = time.perf_counter()
    analysis = hpctune.Analysis(folder)
    trials = analysis.trials
    t1 = time.perf_counter()
    results = analysis.results
    t2 = time.perf_counter()
    return {"load": t1 - t0, "results": t2 - t1, "trials": len(trials), "rows": len(results)}


def child_plot_each(folder: str, out: str) -> dict:
    """Each plot on its own, after the load (matplotlib imported before the clock starts)."""
    import importlib

    importlib.import_module("matplotlib.figure")  # imported before the clock starts
    import hpctune
    from hpctune.reporting.plots import PLOTS, write_plots

    analysis = hpctune.Analysis(folder)
    t0 = time.perf_counter()
    analysis.trials, analysis.results, analysis.segments, analysis.lineage  # noqa: B018  (read once)
    timings = {"read": time.perf_counter() - t0}
    for name in PLOTS:
        skipped: list[str] = []
        t0 = time.perf_counter()
        write_plots(analysis, out, skipped=skipped, names=[name])
        timings[name] = None if skipped else time.perf_counter() - t0
    return timings


# --------------------------------------------------------------------------- parent

def hpctune_command() -> list[str]:
    script = Path(sys.executable).with_name("hpctune")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpctune.cli.commands"]


def env() -> dict:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))


def timed(command: list, timeout: float) -> tuple[float, str]:
    """Run ``command``; its wall time and stdout (a failure stops the benchmark)."""
    started = time.perf_counter()
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env(), cwd=ROOT,
                          timeout=timeout)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return wall, done.stdout


def child(mode: str, *args, timeout: float) -> tuple[float, dict]:
    wall, out = timed([sys.executable, HERE, "--child", mode, *args], timeout)
    return wall, json.loads(out.strip().splitlines()[-1])


def complete(folder: Path, trials: int, reports: int) -> bool:
    """Whether ``folder`` holds the finished experiment with every result (read without the history)."""
    if not (folder / "experiment.h5").exists():
        return False
    import hpctune

    analysis = hpctune.Analysis(folder)
    return analysis.status == "finished" and analysis.num_results == trials * reports


def build(trials: int, reports: int, rebuild: bool, timeout: float) -> tuple[Path, float | None]:
    storage = CACHE / f"{trials}x{reports}"
    folder = storage / "large"
    if not rebuild and complete(folder, trials, reports):
        print(f"using the cached experiment {folder}", file=sys.stderr)
        return folder, None
    shutil.rmtree(storage, ignore_errors=True)
    storage.mkdir(parents=True)
    print(f"building {trials} trials x {reports} results in {folder} ...", file=sys.stderr, flush=True)
    wall, data = child("build", storage, trials, reports, timeout=timeout)
    if not complete(folder, trials, reports):
        raise SystemExit(f"the built experiment in {folder} is not complete")
    print(f"built in {wall:.1f} s ({trials * reports / data['build_s']:,.0f} results/s in hpctune.run)",
          file=sys.stderr)
    return folder, data["build_s"]


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
        kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")).split()[1])
        ram = f"{kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        ram = "unknown RAM"
    return (f"{len(os.sched_getaffinity(0))} cores (nproc), {cpu}, {ram}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}, {datetime.date.today().isoformat()}")


def cell(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "skipped"
    runs = " / ".join(f"{v:.2f}" for v in values)
    return f"**{statistics.median(values):.2f}** ({runs})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--reports", type=int, default=100, help="results per trial")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="build the experiment again even if cached")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds any one process may take")
    parser.add_argument("--json", metavar="PATH", help="save every timing here")
    args = parser.parse_args(argv)

    folder, build_s = build(args.trials, args.reports, args.rebuild, args.timeout)
    rows: dict[str, dict[str, list]] = {step: {"inside": [], "wall": []} for step in STEPS}
    each: dict[str, list] = {}
    out = Path(tempfile.mkdtemp(prefix="hpctune-large-plots-"))
    try:
        for repeat in range(args.repeats):
            wall, data = child("read", folder, timeout=args.timeout)
            if data["rows"] != args.trials * args.reports or data["trials"] != args.trials:
                raise SystemExit(f"read {data['rows']} rows of {data['trials']} trials, expected "
                                 f"{args.trials * args.reports} of {args.trials}")
            rows["load"]["inside"].append(data["load"])
            rows["results"]["inside"].append(data["results"])
            rows["load"]["wall"].append(wall)  # the process read both: its wall is the sum
            rows["results"]["wall"].append(None)
            wall, stdout = timed([*hpctune_command(), "plot", folder, "--out", out / f"cli{repeat}"], args.timeout)
            rows["plot"]["wall"].append(wall)
            rows["plot"]["inside"].append(None)
            wall, stdout = timed([*hpctune_command(), "status", folder], args.timeout)
            rows["status"]["wall"].append(wall)
            rows["status"]["inside"].append(None)
            _, data = child("plot-each", folder, out / f"each{repeat}", timeout=args.timeout)
            for name, seconds in data.items():
                each.setdefault(name, []).append(seconds)
            print(f"repeat {repeat + 1}: read {rows['load']['wall'][-1]:.2f} s, plot {rows['plot']['wall'][-1]:.2f} s, "
                  f"status {rows['status']['wall'][-1]:.2f} s", file=sys.stderr, flush=True)
        pngs = sorted(p.name for p in (out / "cli0").glob("*.png"))
    finally:
        shutil.rmtree(out, ignore_errors=True)

    command = "python scripts/bench/large_analysis.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"## Reading and plotting {args.trials:,} trials x {args.reports} results "
          f"({args.trials * args.reports:,} result rows)\n")
    print(f"Command: `{command.strip()}`  \nMachine: {machine()}  \nExperiment: {folder.relative_to(ROOT)} "
          f"({sum(f.stat().st_size for f in folder.rglob('*') if f.is_file()) / 2**20:.0f} MiB)"
          + (f", built in {build_s:.1f} s by `hpctune.run` (local backend)" if build_s else ", cached") + "\n")
    print(f"Seconds, median of {args.repeats} (each run), every run in a fresh Python process.\n")
    print("| step | inside the process | whole process (wall) |\n|---|---:|---:|")
    print(f"| {STEPS['load']} | {cell(rows['load']['inside'])} | {cell(rows['load']['wall'])} (with (b)) |")
    print(f"| {STEPS['results']} | {cell(rows['results']['inside'])} | (in the process of (a)) |")
    print(f"| {STEPS['plot']} | | {cell(rows['plot']['wall'])} |")
    print(f"| {STEPS['status']} | | {cell(rows['status']['wall'])} |")
    print(f"\n`hpctune plot` wrote: {', '.join(pngs)}.\n")
    print("Each plot on its own, after reading the experiment (matplotlib already imported):\n")
    print("| plot | seconds |\n|---|---:|")
    for name, values in each.items():
        print(f"| {'reading trials, results, segments, lineage' if name == 'read' else name} | {cell(values)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command.strip(), "machine": machine(),
                                               "folder": str(folder), "build_s": build_s, "steps": rows,
                                               "each_plot": each}, indent=2))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        mode, *arguments = sys.argv[2:]
        function = {"build": child_build, "read": child_read, "plot-each": child_plot_each}[mode]
        print(json.dumps(function(*arguments)), flush=True)
        sys.exit(0)
    sys.exit(main())
