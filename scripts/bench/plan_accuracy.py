"""How close ``hpctune plan``'s predicted wall time comes to the real run it predicts.

1. A pilot: ``examples/asha.yaml`` with ``--pilot-samples`` trials on 2 worker ranks (real MPI ranks,
   real PyTorch training).
2. ``hpctune plan`` for the experiment as a user runs it (``examples/asha.yaml``: 64 trials) on each
   ``--workers`` size, from the pilot.
3. That experiment, run for real on each size; its wall time (the whole ``hpctune run`` process)
   against the plan's median prediction.

Run from the repository root: ``python scripts/bench/plan_accuracy.py [--workers 2] [--repeats 1]``.
Prints a markdown table; ``--out FILE`` writes the numbers as JSON.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
HPCTUNE = str(Path(sys.executable).parent / "hpctune")


def _spec(folder: Path, name: str, num_samples: int) -> Path:
    raw = yaml.safe_load((REPO / "examples" / "asha.yaml").read_text())
    raw.update(name=name, num_samples=num_samples, storage=str(folder / "runs"))
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, text=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="2", help="comma list of worker-rank counts to predict and run")
    parser.add_argument("--pilot-samples", type=int, default=16)
    parser.add_argument("--samples", type=int, default=64, help="trials of the run predicted")
    parser.add_argument("--repeats", type=int, default=1, help="real runs per size")
    parser.add_argument("--out", help="write the numbers here as JSON")
    args = parser.parse_args()
    sizes = [int(w) for w in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="plan-accuracy-") as tmp:
        folder = Path(tmp)
        pilot_spec = _spec(folder, "pilot", args.pilot_samples)
        pilot_wall = _timed([HPCTUNE, "run", str(pilot_spec), "--workers", "2"])
        target = _spec(folder, "target", args.samples)
        planned = subprocess.run([HPCTUNE, "plan", str(target), "--pilot", str(folder / "runs" / "pilot"),
                                  "--workers", args.workers, "--json"], cwd=REPO, check=True,
                                 capture_output=True, text=True)
        plan = {row["workers"]: row for row in json.loads(planned.stdout)["allocations"]}
        rows = []
        for size in sizes:
            for repeat in range(args.repeats):
                name = f"real{size}_{repeat}"
                spec = _spec(folder, name, args.samples)
                wall = _timed([HPCTUNE, "run", str(spec), "--workers", str(size)])
                predicted = plan[size]["wall_s_median"]
                rows.append({"workers": size, "predicted_s": predicted, "predicted_min_s": plan[size]["wall_s_min"],
                             "predicted_max_s": plan[size]["wall_s_max"], "real_s": wall,
                             "error": (predicted - wall) / wall})
    print(f"pilot: {args.pilot_samples} trials on 2 worker ranks, {pilot_wall:.1f} s\n")
    print("| workers | predicted wall (median, min-max over seeds) | real wall | error |")
    print("| ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['workers']} | {row['predicted_s']:.1f} s ({row['predicted_min_s']:.1f}-{row['predicted_max_s']:.1f}) "
              f"| {row['real_s']:.1f} s | {row['error']:+.1%} |")
    if args.out:
        Path(args.out).write_text(json.dumps({"pilot_wall_s": pilot_wall, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
