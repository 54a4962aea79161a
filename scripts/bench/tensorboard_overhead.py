"""What TensorBoard event files cost the coordinator: the overhead benchmark's workload
(scripts/bench/overhead.py: 200 trials x 20 reports of a no-op trainable, 2 spawned worker ranks)
with ``tensorboard: false`` against ``tensorboard: true``, interleaved, each run in a fresh process.

Per run: the wall time of ``hpctune.run`` (call to return, so the writer process's last rows
and its exit count), the coordinator's CPU time per result (``time.process_time`` of the
coordinator's process over the call, divided by the 4000 results), the result->decision round
trip as the trials see it (each report times the ``hpctune.report`` call before it: 19 a trial)
and the machine's CPU seconds over the call (every process: the workers, the trial processes
and TensorBoard's writer process). A TensorBoard run is checked: 200 trial folders under
``tb/``, and one trial's steps 1..20 read back with TensorBoard's own reader.

Usage (repository root, hpctune's virtual environment with tensorboardX and tensorboard)::

    python scripts/bench/tensorboard_overhead.py [--repeats 5] [--wait-idle 60] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hpctune

TRIALS, REPORTS, WORKERS = 200, 20, 2
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))

from overhead import cpu_times, machine, settle  # noqa: E402  (the overhead benchmark's helpers)


def noop(config):
    """The overhead benchmark's trainable, each report carrying the round trip of the one before."""
    previous = None
    for i in range(REPORTS):
        row = {"loss": float(i)}
        if previous is not None:
            row["round_trip_ms"] = previous
        started = time.perf_counter()
        hpctune.report(row)
        previous = (time.perf_counter() - started) * 1e3


def _once(storage: str, name: str, out: str, tensorboard: str) -> None:
    """Child mode: one timed ``hpctune.run``; writes its numbers as JSON to ``out``."""
    cpu0, machine0 = time.process_time(), cpu_times()
    t0 = time.perf_counter()
    analysis = hpctune.run(noop, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=TRIALS,
                           workers=WORKERS, storage=storage, name=name, verbose=0, tensorboard=tensorboard == "true")
    wall = time.perf_counter() - t0
    cpu, machine1 = time.process_time() - cpu0, cpu_times()
    hz = 100.0  # /proc/stat counts jiffies of USER_HZ
    trips = analysis.results["round_trip_ms"].dropna()
    Path(out).write_text(json.dumps({
        "wall_s": wall, "coordinator_cpu_ms_per_result": cpu * 1e3 / (TRIALS * REPORTS),
        "round_trip_ms_median": float(trips.median()), "round_trip_ms_p99": float(trips.quantile(0.99)),
        "machine_cpu_s": (machine1[0] - machine0[0]) / hz, "results": len(analysis.results),
        "folder": str(analysis.path)}))


def _check_tensorboard(folder: Path) -> str:
    """'' if tb/ holds a folder per trial and trial 0's loss has steps 1..REPORTS; else what is wrong."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folders = [p for p in (folder / "tb").iterdir() if p.is_dir()] if (folder / "tb").is_dir() else []
    if len(folders) != TRIALS:
        return f"{len(folders)} trial folders under tb/"
    accumulator = EventAccumulator(str(folder / "tb" / "000000"))
    accumulator.Reload()
    steps = [event.step for event in accumulator.Scalars("loss")]
    return "" if steps == list(range(1, REPORTS + 1)) else f"trial 0's steps are {steps}"


def run_one(tensorboard: bool, index: int, idle_wait_s: float) -> dict:
    storage = tempfile.mkdtemp(prefix="hpctune-tb-overhead-")
    out = Path(storage) / "timing.json"
    settle(idle_wait_s)
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_once", storage, f"tb{index}",
                           str(out), "true" if tensorboard else "false"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"run failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    run = json.loads(out.read_text())
    folder = Path(run["folder"])
    problem = _check_tensorboard(folder) if tensorboard else ("tb/ written" if (folder / "tb").exists() else "")
    if problem or run["results"] != TRIALS * REPORTS:
        raise SystemExit(f"{folder}: {problem or str(run['results']) + ' results'} (kept)")
    shutil.rmtree(storage, ignore_errors=True)
    run["tensorboard"] = tensorboard
    print(f"tensorboard {'true ' if tensorboard else 'false'} run {index + 1}: {run['wall_s']:.2f} s, "
          f"{run['coordinator_cpu_ms_per_result']:.3f} ms coordinator CPU/result, round trip "
          f"{run['round_trip_ms_median']:.3f} ms (p99 {run['round_trip_ms_p99']:.2f}), "
          f"machine CPU {run['machine_cpu_s']:.2f} s", file=sys.stderr, flush=True)
    return run


def markdown(runs: list[dict], repeats: int) -> str:
    columns = [("wall_s", "wall s", "{:.2f}"), ("coordinator_cpu_ms_per_result", "coordinator CPU ms/result", "{:.3f}"),
               ("round_trip_ms_median", "round trip ms (median)", "{:.3f}"),
               ("round_trip_ms_p99", "round trip ms (p99)", "{:.2f}"), ("machine_cpu_s", "machine CPU s", "{:.2f}")]
    medians = {tb: {key: statistics.median(r[key] for r in runs if r["tensorboard"] is tb) for key, _, _ in columns}
               for tb in (False, True)}
    lines = ["| tensorboard | " + " | ".join(title for _, title, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for tb in (False, True):
        lines.append(f"| {'true' if tb else 'false'} (median of {repeats}) | "
                     + " | ".join(form.format(medians[tb][key]) for key, _, form in columns) + " |")
    lines.append("| ratio true / false | " + " | ".join(f"{medians[True][key] / medians[False][key]:.3f}"
                                                        for key, _, _ in columns) + " |")
    pairs = [(a, b) for a, b in zip([r for r in runs if r["tensorboard"]], [r for r in runs if not r["tensorboard"]])]
    cells = []
    for key, _, form in columns:
        diffs = [t[key] - f[key] for t, f in pairs]
        cells.append(f"{form.format(statistics.median(diffs))} ({form.format(min(diffs))} .. {form.format(max(diffs))})")
    lines.append("| true − false, pair by pair: median (min .. max) | " + " | ".join(cells) + " |")
    spread = {key: (min(r[key] for r in runs if not r["tensorboard"]), max(r[key] for r in runs if not r["tensorboard"]))
              for key, _, _ in columns}
    lines.append("| false alone: min .. max | " + " | ".join(f"{form.format(spread[key][0])} .. {form.format(spread[key][1])}"
                                                         for key, _, form in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_once":
        _once(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each setting (median reported); default 5")
    parser.add_argument("--wait-idle", type=float, default=60, metavar="S",
                        help="before each run, wait up to S s for the machine to be idle; 0: don't. Default 60")
    parser.add_argument("--json", metavar="PATH", help="save the raw numbers here")
    args = parser.parse_args()
    m = machine()
    runs = []
    for i in range(args.repeats):  # interleaved, the order alternating: a drift of the machine hits both
        for tensorboard in ((False, True) if i % 2 == 0 else (True, False)):
            runs.append(run_one(tensorboard, i, args.wait_idle))
    command = "python scripts/bench/tensorboard_overhead.py " + " ".join(sys.argv[1:])
    print(f"## TensorBoard's cost: {TRIALS} trials × {REPORTS} reports, {WORKERS} spawned workers\n")
    print(f"Command: `{command.strip()}`\n")
    print(f"Machine: {m['nproc']} cores (nproc), {m['cpu']}, {m['ram_gib']} GiB RAM, Python {m['python']}, "
          f"{m['date']}\n")
    print(markdown(runs, args.repeats))
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": m, "command": command.strip(), "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
