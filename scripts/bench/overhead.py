"""Overhead benchmark: 200 trials x 20 reports of a no-op trainable on 2 workers, hpctune vs Ray Tune.

hpctune: ``hpctune.run(noop, ..., num_samples=200, workers=2)`` in a fresh process per
repeat, timed from the call to its return; afterwards the experiment folder is
re-read by ``hpctune.Analysis`` in another fresh process (4000 result rows, 200
TERMINATED trials) and ``experiment.h5`` is opened with plain h5py
(``results/trial_id`` must hold 4000 rows).

Ray Tune: the same workload (``_ray_overhead.py``) run by the python of a separate
virtual environment (``.bench/ray-venv``, created here with ``pip install "ray[tune]"``
when missing; Ray is never a dependency of hpctune). Timed from ``ray.init`` to the
return of ``Tuner.fit``; durable rows are the lines of the trials' ``result.json``.

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/overhead.py [--repeats 3] [--skip-ray] [--json PATH]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import busy_cores, cpu_times, settle  # noqa: E402

import hpctune

TRIALS = 200
REPORTS = 20
WORKERS = 2
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RAY_VENV = ROOT / ".bench" / "ray-venv"
RAY_TIMEOUT_S = 15 * 60


def noop(config):
    """The trainable: 20 reports, no work."""
    for i in range(REPORTS):
        hpctune.report({"loss": float(i)})


def one_report(config):
    """Baseline trainable: a single report (fixed cost of a run, see ``--baseline``)."""
    hpctune.report({"loss": 0.0})


# --------------------------------------------------------------------------- hpctune

def _hpctune_once(storage: str, name: str, out: str, trainable: str = "noop", samples: str = str(TRIALS)) -> None:
    """Child mode: one timed ``hpctune.run``; writes ``{"wall_s": ...}`` to ``out``."""
    fn = {"noop": noop, "one_report": one_report}[trainable]
    cpu0 = cpu_times()
    t0 = time.perf_counter()
    analysis = hpctune.run(fn, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=int(samples),
                           workers=WORKERS, storage=storage, name=name, verbose=0)
    t1 = time.perf_counter()
    Path(out).write_text(json.dumps({"wall_s": t1 - t0, "busy_cores": busy_cores(cpu0, cpu_times()),
                                     "folder": str(analysis.path)}))


def _verify_analysis(folder: str) -> None:
    """Child mode: re-open the experiment with ``hpctune.Analysis``; prints its counts as JSON."""
    analysis = hpctune.Analysis(folder)
    states = analysis.trials.state.value_counts().to_dict() if not analysis.trials.empty else {}
    print(json.dumps({"result_rows": len(analysis.results), "trials": len(analysis.trials),
                      "terminated": int(states.get("TERMINATED", 0)), "status": analysis.status}))


def h5_result_rows(folder: Path) -> int:
    """Rows of ``results/trial_id`` in ``experiment.h5``, read with plain h5py."""
    import h5py

    with h5py.File(folder / "experiment.h5", "r") as f:
        return int(f["results/trial_id"].shape[0])


def run_hpctune(repeats: int, keep: bool, idle_wait_s: float) -> dict:
    runs = []
    for i in range(repeats):
        storage = tempfile.mkdtemp(prefix="hpctune-overhead-")
        name = f"overhead-{i}"
        out = Path(storage) / "timing.json"
        idle = settle(idle_wait_s)
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_hpctune-once", storage, name,
                               str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        process_s = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"hpctune run {i + 1} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        timing = json.loads(out.read_text())
        folder = Path(timing["folder"])
        check = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_verify-analysis", str(folder)],
                               cwd=ROOT, capture_output=True, text=True, timeout=300)
        if check.returncode != 0:
            raise SystemExit(f"re-reading {folder} failed:\n{check.stdout}\n{check.stderr}")
        counts = json.loads(check.stdout.strip().splitlines()[-1])
        h5_rows = h5_result_rows(folder)
        expected = TRIALS * REPORTS
        verified = (counts["result_rows"] == expected and counts["terminated"] == TRIALS
                    and counts["trials"] == TRIALS and h5_rows == expected)
        run = {"wall_s": timing["wall_s"], "process_s": process_s, "busy_cores": timing["busy_cores"],
               "loadavg_1min_before": load, "idle_before": idle, "results_per_s": expected / timing["wall_s"],
               "analysis_result_rows": counts["result_rows"], "analysis_trials": counts["trials"],
               "analysis_terminated": counts["terminated"], "status": counts["status"],
               "h5_result_rows": h5_rows, "verified": verified}
        runs.append(run)
        print(f"hpctune run {i + 1}/{repeats}: {run['wall_s']:.2f} s in hpctune.run "
              f"({run['process_s']:.2f} s whole process), {run['results_per_s']:.0f} results/s, "
              f"{run['busy_cores']:.2f} busy cores (load before {load:.2f}); "
              f"Analysis: {counts['result_rows']} rows, {counts['terminated']}/{counts['trials']} TERMINATED; "
              f"h5py results/trial_id: {h5_rows} rows", file=sys.stderr, flush=True)
        if not verified:
            print(f"  NOT VERIFIED: expected {expected} rows and {TRIALS} TERMINATED trials; kept {storage}",
                  file=sys.stderr)
        elif not keep:
            shutil.rmtree(storage, ignore_errors=True)
    walls = [r["wall_s"] for r in runs]
    median = statistics.median(walls)
    return {"tool": "hpctune", "version": hpctune.__version__, "runs": runs, "median_wall_s": median,
            "median_results_per_s": TRIALS * REPORTS / median, "verified": all(r["verified"] for r in runs)}


def run_baselines(repeats: int, idle_wait_s: float) -> dict:
    """Median wall time of hpctune.run for 2 trials x 1 report (fixed cost) and 200 trials x 1 report."""
    out = {}
    for label, samples in (("2x1", 2), (f"{TRIALS}x1", TRIALS)):
        walls = []
        for i in range(repeats):
            storage = tempfile.mkdtemp(prefix="hpctune-baseline-")
            timing = Path(storage) / "timing.json"
            settle(idle_wait_s)
            proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_hpctune-once", storage,
                                   f"baseline-{label}-{i}", str(timing), "one_report", str(samples)],
                                  cwd=ROOT, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise SystemExit(f"hpctune baseline {label} failed:\n{proc.stdout}\n{proc.stderr}")
            walls.append(json.loads(timing.read_text())["wall_s"])
            shutil.rmtree(storage, ignore_errors=True)
        out[label] = {"trials": samples, "reports": 1, "walls_s": walls, "median_wall_s": statistics.median(walls)}
        print(f"hpctune baseline {samples} trials x 1 report: median {out[label]['median_wall_s']:.2f} s "
              f"of {[round(w, 2) for w in walls]}", file=sys.stderr, flush=True)
    return out


# --------------------------------------------------------------------------- Ray Tune

def ensure_ray_venv(spec: str) -> Path:
    """The Ray venv's python, creating the venv and installing ``spec`` into it if needed."""
    python = RAY_VENV / "bin" / "python"
    if python.exists() and subprocess.run([str(python), "-c", "import ray.tune"],
                                          capture_output=True).returncode == 0:
        return python
    print(f"creating {RAY_VENV} and installing {spec!r} (once; this takes a few minutes)", file=sys.stderr, flush=True)
    RAY_VENV.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(RAY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", spec], check=True)
    return python


def run_ray(spec: str, keep: bool, idle_wait_s: float) -> dict:
    python = ensure_ray_venv(spec)
    storage = tempfile.mkdtemp(prefix="ray-overhead-")
    out = Path(storage) / "timing.json"
    log = Path(storage) / "ray-console.log"
    print(f"Ray Tune run (timeout {RAY_TIMEOUT_S} s; console output -> {log})", file=sys.stderr, flush=True)
    idle = settle(idle_wait_s)
    load = os.getloadavg()[0]
    cpu0 = cpu_times()
    t0 = time.perf_counter()
    try:
        with open(log, "w") as f:
            proc = subprocess.run([str(python), str(HERE / "_ray_overhead.py"), "--storage", str(Path(storage) / "results"),
                                   "--json", str(out), "--samples", str(TRIALS), "--reports", str(REPORTS)],
                                  cwd=storage, stdout=f, stderr=subprocess.STDOUT, timeout=RAY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        version = subprocess.run([str(python), "-c", "import ray; print(ray.__version__)"],
                                 capture_output=True, text=True).stdout.strip()
        subprocess.run([str(RAY_VENV / "bin" / "ray"), "stop", "--force"], capture_output=True)
        print(f"Ray Tune did not finish within {RAY_TIMEOUT_S} s (log kept: {log})", file=sys.stderr)
        return {"tool": "Ray Tune", "version": version, "timed_out": True, "wall_s": None, "results_per_s": None,
                "verified": False, "timeout_s": RAY_TIMEOUT_S}
    process_s = time.perf_counter() - t0
    cpu = busy_cores(cpu0, cpu_times())
    if proc.returncode != 0 or not out.exists():
        print(log.read_text()[-5000:], file=sys.stderr)
        raise SystemExit(f"Ray Tune run failed (exit {proc.returncode}); log kept: {log}")
    result = json.loads(out.read_text())
    result.update(process_s=process_s, busy_cores_whole_process=cpu, loadavg_1min_before=load, idle_before=idle,
                  results_per_s=TRIALS * REPORTS / result["wall_s"],
                  fit_results_per_s=TRIALS * REPORTS / result["fit_s"])
    print(f"Ray Tune {result['version']}: {result['wall_s']:.2f} s (ray.init {result['init_s']:.2f} s + "
          f"Tuner.fit {result['fit_s']:.2f} s; {process_s:.2f} s whole process, {cpu:.2f} busy cores, "
          f"load before {load:.2f}), "
          f"{result['results_per_s']:.0f} results/s; result.json rows on disk: {result['result_rows']} "
          f"in {result['trial_dirs']} trial folders", file=sys.stderr, flush=True)
    if not keep and result["verified"]:
        shutil.rmtree(storage, ignore_errors=True)
    return result


# --------------------------------------------------------------------------- report

def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu, "ram_gib": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "os": platform.platform(),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")}


def markdown(m: dict, hp: dict | None, ray: dict | None, base: dict | None = None) -> str:
    lines = [f"Machine: {m['nproc']} cores (nproc), {m['cpu']}, {m['ram_gib']} GiB RAM, "
             f"Python {m['python']}, {m['os']}, {m['date']}", "",
             "| tool | version | wall s | results/s | durable results verified |",
             "|---|---|---:|---:|---|"]
    expected = TRIALS * REPORTS
    if hp is not None:
        for i, r in enumerate(hp["runs"], 1):
            lines.append(f"| hpctune (run {i}) | {hp['version']} | {r['wall_s']:.2f} | {r['results_per_s']:.0f} | "
                         f"{'yes' if r['verified'] else 'NO'}: Analysis {r['analysis_result_rows']} rows, "
                         f"{r['analysis_terminated']}/{r['analysis_trials']} TERMINATED; "
                         f"h5py {r['h5_result_rows']} rows |")
        lines.append(f"| **hpctune (median of {len(hp['runs'])})** | {hp['version']} | **{hp['median_wall_s']:.2f}** | "
                     f"**{hp['median_results_per_s']:.0f}** | {'yes' if hp['verified'] else 'NO'} |")
    if ray is not None:
        if ray.get("timed_out"):
            lines.append(f"| Ray Tune | {ray['version']} | > {ray['timeout_s']} (timed out) | - | no |")
        else:
            lines.append(f"| Ray Tune | {ray['version']} | {ray['wall_s']:.2f} | {ray['results_per_s']:.0f} | "
                         f"{'yes' if ray['verified'] else 'NO'}: {ray['result_rows']}/{expected} rows in "
                         f"{ray['trial_dirs']} trials' result.json |")
    lines.append("")
    if hp is not None:
        busy = ", ".join(f"{r['busy_cores']:.2f}" for r in hp["runs"])
        lines.append("hpctune: wall s = `hpctune.run(...)` call to return, in a fresh process "
                     "(MPI init and spawning the 2 worker ranks included); average busy cores of the "
                     f"machine during each run: {busy}.")
    if base:
        small, many = base["2x1"], base[f"{TRIALS}x1"]
        lines.append(f"hpctune baselines (median of {len(small['walls_s'])}): {small['trials']} trials × 1 report "
                     f"{small['median_wall_s']:.2f} s (fixed cost); {many['trials']} trials × 1 report "
                     f"{many['median_wall_s']:.2f} s.")
    if ray is not None and not ray.get("timed_out"):
        lines.append(f"Ray Tune: wall s = `ray.init` ({ray['init_s']:.2f} s) + `Tuner.fit` ({ray['fit_s']:.2f} s, "
                     f"{ray['fit_results_per_s']:.0f} results/s on its own); `ray.shutdown` "
                     f"({ray['shutdown_s']:.2f} s) not counted; the trainables themselves ran "
                     f"{ray['trainable_s_sum']:.2f} s in all (sum of last `time_total_s`); "
                     f"busy cores {ray['busy_cores_whole_process']:.2f}.")
    seen = [r.get("idle_before") for r in (hp or {}).get("runs", [])] + ([ray.get("idle_before")] if ray else [])
    if seen and all(seen) and all(x["idle"] for x in seen):
        lines.append("Every timed run started on an idle machine (< 0.3 busy cores for 4 s; `--wait-idle`); "
                     "nothing keeps other processes from starting during a run.")
    elif any(seen):
        busy = sum(1 for x in seen if x and not x["idle"])
        lines.append(f"{busy} of {len(seen)} timed runs started while other processes kept the machine busy.")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--_hpctune-once":
        _hpctune_once(*sys.argv[2:7])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--_verify-analysis":
        _verify_analysis(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="hpctune runs (median reported); default 3")
    parser.add_argument("--skip-ray", action="store_true", help="do not run (or install) Ray Tune")
    parser.add_argument("--json", metavar="PATH", help="save the raw numbers here")
    parser.add_argument("--ray-spec", default="ray[tune]", help='pip requirement for the Ray venv (default "ray[tune]")')
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="skip the hpctune baselines (2 trials x 1 report, 200 trials x 1 report)")
    parser.add_argument("--wait-idle", type=float, default=120, metavar="S",
                        help="before each timed run, wait up to S s for the machine to be idle "
                             "(< 0.3 busy cores for 4 s); 0: don't wait. Default 120")
    parser.add_argument("--keep", action="store_true", help="keep the tmp experiment folders")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    m = machine()
    hp = run_hpctune(args.repeats, args.keep, args.wait_idle)
    base = run_baselines(args.repeats, args.wait_idle) if args.baseline else None
    ray = None if args.skip_ray else run_ray(args.ray_spec, args.keep, args.wait_idle)
    command = "python scripts/bench/overhead.py " + " ".join(sys.argv[1:])
    print(f"## Overhead: {TRIALS} trials × {REPORTS} reports, {WORKERS} workers\n")
    print(f"Command: `{command.strip()}`\n")
    print(markdown(m, hp, ray, base))
    if args.json:
        Path(args.json).write_text(json.dumps({"workload": {"trials": TRIALS, "reports": REPORTS, "workers": WORKERS},
                                               "machine": m, "command": command.strip(), "hpctune": hp,
                                               "hpctune_baselines": base,
                                               "ray": ray}, indent=2))
    if not hp["verified"] or (ray is not None and not ray.get("verified")):
        sys.exit(1)


if __name__ == "__main__":
    main()
