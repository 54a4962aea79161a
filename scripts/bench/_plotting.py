"""The plotting the benchmark scripts share: matplotlib without a display, and saving a figure."""
from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(figure, out: Path) -> None:
    """Lay ``figure`` out, write it to ``out`` (a PNG, folders made) and say so."""
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    print(f"wrote {out}")
