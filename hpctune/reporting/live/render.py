"""Drawing a :class:`~hpctune.reporting.live.state.LiveState`: plain lines for logs, a table redrawn in place for a terminal.

A terminal (``isatty``, ``TERM`` not ``dumb``) gets :class:`LiveScreen`: a block of lines redrawn
in place with two ANSI sequences (cursor up, erase below), cut to the terminal's width and height.
Anything else (a file, a pipe, a Slurm log) gets :func:`plain_lines`: whole lines, no escape code,
written at the console's interval. ``HPCTUNE_CONSOLE=plain`` or ``live`` overrides the choice
(``live`` under ``mpiexec``, whose ranks write to a pipe even when the launcher has a terminal).
"""
from __future__ import annotations

import os
import shutil
from typing import TextIO

from .state import LiveState, RunningTrial
from ...space import flatten

__all__ = ["LiveScreen", "plain_lines", "screen_lines", "wants_live_screen"]

PLAIN_RUNNING_SHOWN = 8   # running trials named on a plain line; the rest are counted
_UP_AND_ERASE = "\x1b[{n}F\x1b[J"  # cursor to the start of the line n up, erase from there down


def wants_live_screen(stream: TextIO) -> bool:
    """Whether ``stream`` gets the table redrawn in place (see the module's docstring)."""
    forced = os.environ.get("HPCTUNE_CONSOLE", "").strip().lower()
    if forced in ("live", "plain"):
        return forced == "live"
    try:
        return stream.isatty() and os.environ.get("TERM", "") not in ("", "dumb")
    except (AttributeError, ValueError):  # replaced or closed
        return False


def _number(value: float) -> str:
    return f"{value:.5g}"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _config_text(config: dict, limit: int = 6) -> str:
    items = [f"{name}={_number(v) if isinstance(v, float) else v}" for name, v in flatten(config or {}).items()]
    return " ".join(items[:limit]) + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def _counts_parts(state: LiveState) -> list[str]:
    total = f"/{state.total}" if state.total else ""
    counts = state.counts
    return [f"{state.finished}{total} finished", f"{counts.get('RUNNING', 0)} running",
            f"{counts.get('PAUSED', 0)} paused", f"{counts.get('PENDING', 0)} pending",
            f"{counts.get('ERROR', 0)} error"]


def _resource_parts(state: LiveState) -> list[str]:
    parts = [state.rungs] if state.rungs else []
    if state.worker_ranks:
        parts.append(f"ranks {state.busy_ranks}/{state.worker_ranks} busy")
    if state.time_left_s is not None:
        parts.append(f"{state.time_left_s / 60:.0f} min left in the allocation")
    return parts


def _running_text(row: RunningTrial, metric: str) -> str:
    parts = [f"iteration {row.iteration}"]
    if row.value is not None:
        parts.append(f"{metric}={_number(row.value)}")
    if row.ranks:
        parts.append(f"rank{'s' if ',' in row.ranks else ''} {row.ranks}")
    if row.gpus:
        parts.append(f"gpu {row.gpus}")
    if row.seconds is not None:
        parts.append(_duration(row.seconds))
    return f"trial {row.trial_id} ({', '.join(parts)})"


def plain_lines(state: LiveState, with_best_config: bool = True) -> list[str]:
    """The state as whole lines, no escape codes: a summary line, the best config (if
    ``with_best_config``, e.g. when it changed) and the running trials (the first few, then a count)."""
    summary = [f"{state.elapsed_s:6.1f}s"] if state.elapsed_s is not None else [state.status]
    summary += _counts_parts(state)
    if state.best is not None:
        value, trial_id, _ = state.best
        summary.append(f"best {state.metric}={_number(value)} (trial {trial_id})")
    lines = [" | ".join(summary + _resource_parts(state))]
    if state.best is not None and with_best_config:
        value, trial_id, iteration = state.best
        lines.append(f"best so far: {state.metric}={_number(value)}, trial {trial_id} at iteration {iteration}; "
                     f"config {_config_text(state.best_config, limit=12)}")
    if state.running:
        shown = [_running_text(row, state.metric) for row in state.running[:PLAIN_RUNNING_SHOWN]]
        more = len(state.running) - len(shown)
        lines.append("running: " + "; ".join(shown) + (f"; and {more} more" if more else ""))
    return lines


def screen_lines(state: LiveState, width: int, height: int) -> list[str]:
    """The state as a block for a terminal of ``width`` x ``height``: a header, the best so far, resources,
    then a table of the running trials (as many rows as fit, then a count of the others)."""
    elapsed = f" · {state.status} {_duration(state.elapsed_s)}" if state.elapsed_s is not None else f" · {state.status}"
    lines = [f"hpctune {state.name}{elapsed} · " + " · ".join(_counts_parts(state)) + f" · {state.num_results} results"]
    if state.best is not None:
        value, trial_id, iteration = state.best
        lines.append(f"best {state.metric}={_number(value)} (trial {trial_id}, iteration {iteration}): "
                     f"{_config_text(state.best_config)}")
    else:
        lines.append(f"best {state.metric}: none reported yet")
    resources = _resource_parts(state)
    if resources:
        lines.append(" · ".join(resources))
    if state.running:
        metric = state.metric[:12]
        lines.append(f"{'trial':>6} {'iter':>6} {metric:>12} {'ranks':>7} {'gpus':>7} {'time':>8}")
        room = max(height - len(lines) - 2, 1)
        rows = state.running if len(state.running) <= room else state.running[:room - 1]
        for row in rows:
            value = _number(row.value) if row.value is not None else "-"
            time_text = _duration(row.seconds) if row.seconds is not None else "-"
            lines.append(f"{row.trial_id:>6} {row.iteration:>6} {value:>12} {row.ranks or '-':>7} "
                         f"{row.gpus or '-':>7} {time_text:>8}")
        if len(rows) < len(state.running):
            lines.append(f"... and {len(state.running) - len(rows)} more running")
    return [line[:width] for line in lines]


class LiveScreen:
    """A block of lines on a terminal, redrawn in place; messages go above it.

    Args:
        stream: the terminal's stream.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._drawn = 0          # lines of the block now on screen
        self._block: list[str] = []

    def draw(self, state: LiveState) -> None:
        """Replace the block on screen with ``state``."""
        size = shutil.get_terminal_size()
        self._block = screen_lines(state, size.columns - 1, size.lines)
        self._write(self._block)

    def message(self, text: str) -> None:
        """Print ``text`` above the block, which is drawn again below it."""
        self._write([], tail=text + "\n")
        self._write(self._block)

    def leave(self) -> None:
        """Keep the block on screen as it is; what is printed next goes below it."""
        self._drawn = 0

    def _write(self, lines: list[str], tail: str = "") -> None:
        erase = _UP_AND_ERASE.format(n=self._drawn) if self._drawn else ""
        self.stream.write(erase + tail + "".join(line + "\n" for line in lines))
        self.stream.flush()
        self._drawn = len(lines)
