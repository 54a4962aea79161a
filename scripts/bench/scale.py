"""Scaling benchmark: hpctune's coordinator and store as the number of results grows, for one or more source trees.

Each workload (``--sizes``, trials x reports) runs a no-op trainable
(``_scale_trainable.py``: ``{"loss": i, "started": t}`` per report) with FIFO
and random search over ``{"x": uniform(0, 1)}`` on 2 spawned worker ranks. Every
source tree (a *variant*: ``--src NAME=PATH``, or ``--main-ref REV`` for a git
worktree of REV under ``.bench/src-<REV>``) runs the same workloads, size by size
with the variants interleaved, in fresh child processes (``_scale_child.py``)
started by this Python with ``PYTHONPATH=<tree>`` first; each child reports the
``hpctune.__file__`` it imported, and a child that imported another tree stops
the benchmark. Only public surfaces are used: ``hpctune.run``,
``hpctune.Analysis``, ``hpctune run`` / ``hpctune resume``, and the experiment's
``journal/*.jsonl`` lines (one record per line, ``"k":"result"`` for a result),
plus the store's snapshot method if ``hpctune.store.experiment.ExperimentStore``
has one. For each size and variant:

- the timed run (wall, rates from the results' ``timestamp``, coordinator RSS and
  CPU, snapshot writes, time to the first trial running), checked afterwards by
  ``hpctune.Analysis`` in a fresh process, whose load is timed too;
- a second run SIGKILLed (its whole session) once the journal holds about half
  of the results, then ``hpctune resume DIR --workers 2``, timed to the first new
  result record in the journal and to its end, then checked by ``Analysis``
  (every trial has ``training_iteration`` 1..N exactly once, all TERMINATED).

Once per variant: ``hpctune run SPEC.yaml --workers 2`` (10 trials x 10 reports,
``--cli-repeats`` times), time from ``subprocess.Popen`` to the first ``started``.

Usage (repository root, hpctune's virtual environment active)::

    python scripts/bench/scale.py --main-ref main --src work=. [--quick] [--sizes 200x20,...] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CHILD = HERE / "_scale_child.py"
TRAINABLE = HERE / "_scale_trainable.py"
DEFAULT_SIZES = "200x20,2000x20,10000x20,50000x20,1000x1000"
QUICK_SIZES = "200x20,2000x20"
CLI_WORKLOAD = (10, 10)  # trials, reports
POLL_S = 0.01
RESULT_RECORD = re.compile(rb'"k"\s*:\s*"result"')

sys.path.insert(0, str(HERE))
from _scale_report import cell, markdown  # noqa: E402
from overhead import busy_cores, cpu_times, machine, settle  # noqa: E402


class ChildFailed(Exception):
    """A child process failed or timed out: its cell of the tables says so; the benchmark goes on."""


@dataclass
class Variant:
    """A source tree under test."""

    name: str
    src: Path
    commit: str = ""
    hpctune_file: str | None = None
    cli: dict = field(default_factory=dict)

    def env(self, reports: int) -> dict:
        """The tree first on PYTHONPATH, then this folder (``hpctune resume`` imports the trainable from there)."""
        env = dict(os.environ, SCALE_BENCH_REPORTS=str(reports))
        paths = [str(self.src), str(HERE)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        return env

    def check_import(self, hpctune_file: str) -> None:
        """Stop everything if a child imported hpctune from anywhere but this tree."""
        if not Path(hpctune_file).resolve().is_relative_to(self.src):
            raise SystemExit(f"variant {self.name}: the child imported {hpctune_file}, not hpctune from {self.src}")
        self.hpctune_file = hpctune_file


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def main_ref_tree(rev: str) -> Path:
    """A git worktree of ``rev`` under ``.bench/src-<rev>`` (made, or moved to ``rev``, as needed)."""
    commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = ROOT / ".bench" / f"src-{re.sub(r'[^A-Za-z0-9._-]', '-', rev)}"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        git("worktree", "add", "--detach", str(path), commit)
    elif git("rev-parse", "HEAD", cwd=path) != commit:
        git("checkout", "--detach", commit, cwd=path)
    return path


def make_variant(name: str, src: str | Path) -> Variant:
    path = Path(src).resolve()
    if not (path / "hpctune" / "__init__.py").is_file():
        raise SystemExit(f"--src {name}={src}: no hpctune package in {path}")
    try:
        commit = git("describe", "--always", "--dirty", cwd=path)
    except (subprocess.CalledProcessError, OSError):
        commit = "not a git tree"
    return Variant(name, path, commit)


def hpctune_command() -> list[str]:
    """The ``hpctune`` console script of this Python's environment (it imports ``hpctune.cli.commands`` via PYTHONPATH)."""
    script = Path(sys.executable).with_name("hpctune")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hpctune.cli"]


# --------------------------------------------------------------------------- processes

def kill_session(sid: int) -> None:
    """SIGKILL the processes started as session ``sid``: its process group at once, then every other
    process of the session and every descendant (MPI's ``hydra_pmi_proxy`` makes a session of its own)."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    parents: dict[int, tuple[int, int]] = {}  # pid -> (parent pid, session)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state ppid pgrp session ...
            parents[int(stat.parent.name)] = (int(fields[1]), int(fields[3]))
        except (OSError, ValueError, IndexError):
            continue
    doomed = {pid for pid, (_, session) in parents.items() if session == sid}
    while more := {pid for pid, (ppid, _) in parents.items() if ppid in doomed} - doomed:
        doomed |= more
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def start(cmd: list, variant: Variant, cwd: Path, reports: int, label: str) -> subprocess.Popen:
    """Start ``cmd`` in a session of its own, its output in ``cwd/label.out`` and ``.err``."""
    with open(cwd / f"{label}.out", "w") as out, open(cwd / f"{label}.err", "w") as err:
        return subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=variant.env(reports), stdout=out, stderr=err,
                                start_new_session=True)


def finish(proc: subprocess.Popen, cwd: Path, label: str, timeout: float) -> str:
    """Wait for ``proc``; its stdout, or :class:`ChildFailed` (the whole session killed on a timeout)."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_session(proc.pid)
        proc.wait()
        raise ChildFailed(f"{label} timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        kill_session(proc.pid)  # whatever it left behind (MPI's proxies and worker ranks)
        tail = (cwd / f"{label}.err").read_text()[-2000:]
        raise ChildFailed(f"{label} exited {proc.returncode}: {tail.strip().splitlines()[-1:]}")
    return (cwd / f"{label}.out").read_text()


def child(variant: Variant, argv: list, cwd: Path, reports: int, timeout: float) -> dict:
    """Run ``_scale_child.py argv`` for ``variant``; its JSON line."""
    label = f"child-{argv[0]}"
    out = finish(start([sys.executable, CHILD, *argv], variant, cwd, reports, label), cwd, label, timeout)
    data = json.loads(out.strip().splitlines()[-1])
    variant.check_import(data["hpctune_file"])
    return data


class JournalWatch:
    """Counts result records appended to ``journal/*.jsonl``, reading only what is new at each poll.

    Segments deleted after a snapshot keep their count (records appended just before
    such a deletion can be missed: the count is a lower bound).
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self.offsets: dict[Path, int] = {}
        self.count = 0

    def poll(self) -> int:
        for path in self.folder.glob("*.jsonl"):
            offset = self.offsets.get(path, 0)
            try:
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size < offset:
                        offset = 0  # rewritten: everything in it is new
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                continue
            complete = data.rfind(b"\n") + 1
            self.count += len(RESULT_RECORD.findall(data, 0, complete))
            self.offsets[path] = offset + complete
        return self.count

    def restart(self) -> None:
        """Count from zero, and only records appended from now on."""
        self.poll()
        self.count = 0


# --------------------------------------------------------------------------- measurements

def measure_run(variant: Variant, trials: int, reports: int, cwd: Path, args) -> dict:
    """The timed run, then Analysis in a fresh process (load time, checks, rates)."""
    settle(args.wait_idle)
    cpu0 = cpu_times()
    run = child(variant, ["run", cwd, "exp", trials, reports], cwd, reports, args.timeout)
    busy = busy_cores(cpu0, cpu_times())
    check = child(variant, ["analyze", cwd / "exp", trials, reports], cwd, reports, args.timeout)
    snaps = run["snapshots"]
    found = bool(snaps["methods"])
    return {**{k: check[k] for k in ("load_s", "load_noimport_s", "rate_first", "rate_last", "rate_ratio")},
            **{k: run[k] for k in ("wall_s", "cpu_us_per_result", "rss_before_mib", "rss_peak_mib")},
            "busy_cores": busy, "first_trial_s": check["min_started"] - run["t_start"],
            "snap_methods": ", ".join(snaps["methods"]) or "n/a",
            "snap_count": snaps["count"] if found else "n/a", "snap_total_s": snaps["total_s"] if found else "n/a",
            "snap_max_s": snaps["max_s"] if found else "n/a",
            "verified": verdict(check, trials, reports), "ok": check["verified"], "run": run, "analysis": check}


def verdict(check: dict, trials: int, reports: int) -> str:
    return (f"{'yes' if check['verified'] else 'NO'}: {check['rows']}/{trials * reports} rows, "
            f"{check['terminated']}/{trials} TERMINATED, iterations 1..{reports} once: "
            f"{'yes' if check['iterations_exact'] else 'NO'}")


def measure_resume(variant: Variant, trials: int, reports: int, cwd: Path, args) -> dict:
    """SIGKILL a second run at about half its results, then time ``hpctune resume``."""
    exp = cwd / "resume"
    watch = JournalWatch(exp / "journal")
    settle(args.wait_idle)
    proc = start([sys.executable, CHILD, "run", cwd, "resume", trials, reports], variant, cwd, reports, "killed")
    half, deadline = trials * reports // 2, time.monotonic() + args.timeout
    while proc.poll() is None and watch.poll() < half and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if proc.poll() is not None:
        finish(proc, cwd, "killed", args.timeout)  # a crash is a failure, not a fast run
        return {"resume_first_s": "n/a", "resume_total_s": "n/a", "resume_verified": "n/a: finished before the kill"}
    kill_session(proc.pid)
    proc.wait()
    if watch.count < half:
        raise ChildFailed(f"killed run: {watch.count} of {half} results after {args.timeout:.0f} s")
    durable = watch.poll()
    watch.restart()
    t0 = time.perf_counter()
    proc = start(hpctune_command() + ["resume", exp, "--workers", "2"], variant, cwd, reports, "resume")
    first = None
    while first is None and proc.poll() is None and time.perf_counter() - t0 < args.timeout:
        if watch.poll():
            first = time.perf_counter() - t0
        time.sleep(POLL_S)
    finish(proc, cwd, "resume", max(0.0, args.timeout - (time.perf_counter() - t0)))
    total = time.perf_counter() - t0
    if first is None:  # ended between two polls
        first = total if watch.poll() else None
    check = child(variant, ["analyze", exp, trials, reports], cwd, reports, args.timeout)
    return {"resume_first_s": first, "resume_total_s": total, "resume_durable_at_kill": durable,
            "resume_verified": f"{verdict(check, trials, reports)} (killed at {durable} results)",
            "resume_ok": check["verified"], "resume_analysis": check}


def measure_cli(variant: Variant, repeats: int, root: Path, args) -> dict:
    """``hpctune run SPEC.yaml --workers 2``: seconds from Popen to the first trial's ``started``."""
    trials, reports = CLI_WORKLOAD
    firsts, walls = [], []
    for i in range(repeats):
        folder = root / f"cli-{variant.name}-{i}"
        folder.mkdir()
        shutil.copy(TRAINABLE, folder / "scale_trainable.py")
        spec = {"name": "cli", "trainable": "scale_trainable:train", "metric": "loss", "mode": "min",
                "num_samples": trials, "space": {"x": {"uniform": [0, 1]}}, "storage": str(folder)}
        (folder / "spec.yaml").write_text(yaml.safe_dump(spec))
        settle(args.wait_idle)
        t0 = time.time()
        proc = start(hpctune_command() + ["run", "spec.yaml", "--workers", "2"], variant, folder, reports, "cli")
        finish(proc, folder, "cli", args.timeout)
        walls.append(time.time() - t0)
        check = child(variant, ["analyze", folder / "cli", trials, reports], folder, reports, args.timeout)
        if not check["verified"]:
            raise ChildFailed(f"CLI run {i}: {verdict(check, trials, reports)}")
        firsts.append(check["min_started"] - t0)
    return {"first_trial_s": statistics.median(firsts), "first_trial_runs_s": firsts,
            "wall_s": statistics.median(walls), "wall_runs_s": walls}


# --------------------------------------------------------------------------- main

def parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [tuple(int(n) for n in item.lower().split("x")) for item in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(len(s) != 2 or min(s) < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"expected TRIALSxREPORTS[,...], got {text!r}")
    return sizes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--src", action="append", default=[], metavar="NAME=PATH", help="a source tree (repeatable)")
    parser.add_argument("--main-ref", metavar="REV", help="add a variant REV: a git worktree of REV in .bench/src-REV")
    parser.add_argument("--sizes", type=parse_sizes, help=f"TRIALSxREPORTS,... (default {DEFAULT_SIZES})")
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_SIZES}, 2 CLI repeats, no idle wait: checks the script")
    parser.add_argument("--cli-repeats", type=int, help="repeats of the CLI time to first trial (default 5; quick 2)")
    parser.add_argument("--no-resume", dest="resume", action="store_false", help="skip the kill-and-resume runs")
    parser.add_argument("--wait-idle", type=float, metavar="S",
                        help="before each timed run wait up to S s for an idle machine (0: don't); "
                             "default 30, quick 0")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds any one process may take (default 3600)")
    parser.add_argument("--json", metavar="PATH", help="save every figure here")
    parser.add_argument("--keep", action="store_true", help="keep the experiment folders (in a tmp folder)")
    args = parser.parse_args(argv)
    args.sizes = args.sizes or parse_sizes(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    args.cli_repeats = args.cli_repeats or (2 if args.quick else 5)
    if args.wait_idle is None:
        args.wait_idle = 0 if args.quick else 30
    sources = [(args.main_ref, main_ref_tree(args.main_ref))] if args.main_ref else []
    for item in args.src:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            parser.error(f"--src expects NAME=PATH, got {item!r}")
        sources.append((name, path))
    if not sources:
        parser.error("give at least one --src NAME=PATH or --main-ref REV")
    if len({name for name, _ in sources}) != len(sources):
        parser.error("variant names must differ")
    args.variants = [make_variant(name, path) for name, path in sources]
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    variants, m = args.variants, machine()
    labels = [f"{t}x{r}" for t, r in args.sizes]
    results: dict = {v.name: {} for v in variants}
    root = Path(tempfile.mkdtemp(prefix="hpctune-scale-"))
    started = time.monotonic()
    for v in variants:
        try:
            v.cli = measure_cli(v, args.cli_repeats, root, args)
        except ChildFailed as exc:
            v.cli = {"error": f"failed: {exc}"}
        print(f"{v.name}: CLI first trial {v.cli}", file=sys.stderr, flush=True)
    for (trials, reports), label in zip(args.sizes, labels):
        for v in variants:
            for attempt in (1, 2):  # once more after a failure (MPI start-up on a shared machine can fail)
                cwd = root / v.name / f"{label}-{attempt}"
                cwd.mkdir(parents=True)
                try:
                    row = measure_run(v, trials, reports, cwd, args)
                    if args.resume:
                        row.update(measure_resume(v, trials, reports, cwd, args))
                    break
                except ChildFailed as exc:
                    row = {"error": f"failed: {exc}"}
                    print(f"{v.name} {label}, attempt {attempt}: {row['error']}", file=sys.stderr, flush=True)
            results[v.name][label] = row = {**row, "attempts": attempt}
            print(f"{v.name} {label}: wall {cell(row.get('wall_s'), '{:.2f}')} s, "
                  f"{row.get('verified', row.get('error'))}; resume {cell(row.get('resume_total_s'), '{:.2f}')} s, "
                  f"{row.get('resume_verified', '-')} [{time.monotonic() - started:.0f} s so far]",
                  file=sys.stderr, flush=True)
            if not args.keep and row.get("ok") and row.get("resume_ok", True):
                shutil.rmtree(cwd, ignore_errors=True)
    command = "python scripts/bench/scale.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(f"## Scaling: {', '.join(labels)} (trials × reports), 2 workers\n\nCommand: `{command.strip()}`\n")
    print(markdown(m, variants, labels, results, CLI_WORKLOAD, args.cli_repeats))
    ok = (all(r.get("ok") and r.get("resume_ok", True) for rows in results.values() for r in rows.values())
          and not any("error" in v.cli for v in variants))
    print(f"Total time of the benchmark: {time.monotonic() - started:.0f} s.", file=sys.stderr)
    if args.keep or not ok:
        print(f"experiment folders kept in {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "command": command.strip(), "machine": m, "workers": 2, "sizes": labels,
            "cli_workload": CLI_WORKLOAD, "total_s": time.monotonic() - started,
            "variants": [{"name": v.name, "src": str(v.src), "commit": v.commit, "hpctune_file": v.hpctune_file,
                          "cli_first_trial": v.cli} for v in variants], "results": results}, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
