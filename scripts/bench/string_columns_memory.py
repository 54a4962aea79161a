"""What one part file's string columns cost the coordinator's memory while it writes the file.

A part of ``--rows`` results (7 number columns and the 2 string columns every result has,
``hostname`` and ``gpus``) is built in memory as the store builds it (:func:`hpctune.store.files.write_hdf5`'s
``BytesIO`` image), once per way of storing the strings, each in a fresh process; printed: the
image's size and the process's peak RSS above its RSS before the write (``ru_maxrss``).

- ``vlen``: variable-length UTF-8, as the store writes strings today;
- ``fixed``: fixed-length UTF-8 of the longest value's bytes;
- ``none``: the number columns only.

Usage (repository root, hpctune's virtual environment)::

    python scripts/bench/string_columns_memory.py [--rows 92000]
"""
from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys

import h5py
import numpy as np


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))


def one(rows: int, strings: str) -> str:
    numbers = np.arange(rows, dtype=np.float64)
    text = np.empty(rows, dtype=object)
    text[:] = ["node1"] * rows
    before = _rss_mib()
    image = io.BytesIO()
    with h5py.File(image, "w") as f:
        group = f.create_group("results")
        for i in range(7):
            group.create_dataset(f"n{i}", data=numbers)
        for name in ("hostname", "gpus"):
            if strings == "vlen":
                group.create_dataset(name, data=text, dtype=h5py.string_dtype())
            elif strings == "fixed":
                fixed = h5py.string_dtype("utf-8", 5)
                group.create_dataset(name, data=np.array([v.encode() for v in text], dtype=fixed))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    return f"{strings:6} image {len(image.getvalue()) / 2**20:6.1f} MiB, peak RSS +{peak:5.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=92_000)
    parser.add_argument("--one", choices=("vlen", "fixed", "none"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(one(args.rows, args.one))
        return
    print(f"{args.rows} rows, h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}")
    for strings in ("vlen", "fixed", "none"):
        done = subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--one", strings],
                              capture_output=True, text=True, check=True)
        print(done.stdout.strip())


if __name__ == "__main__":
    main()
