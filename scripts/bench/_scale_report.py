"""The Markdown report of ``scripts/bench/scale.py``: a table per metric, one column per variant.

With exactly two variants, a last column gives their ratio (second / first) for numeric metrics.
"""
from __future__ import annotations

METRICS = [  # (title, key, format; None: text, no ratio)
    ("wall s (`hpctune.run` call to return)", "wall_s", "{:.2f}"),
    ("results/s, first 10% of results", "rate_first", "{:.0f}"),
    ("results/s, last 10% of results", "rate_last", "{:.0f}"),
    ("results/s, last 10% / first 10%", "rate_ratio", "{:.2f}"),
    ("coordinator RSS just before `hpctune.run`, MiB", "rss_before_mib", "{:.0f}"),
    ("coordinator peak RSS (ru_maxrss), MiB", "rss_peak_mib", "{:.0f}"),
    ("coordinator CPU (user+sys) per result, µs", "cpu_us_per_result", "{:.0f}"),
    ("snapshot writes, count", "snap_count", "{:d}"),
    ("snapshot writes, total s", "snap_total_s", "{:.3f}"),
    ("snapshot writes, longest s", "snap_max_s", "{:.3f}"),
    ("time to first trial running, s (from the child's first statement)", "first_trial_s", "{:.2f}"),
    ("Analysis load in a fresh process, s (import included)", "load_s", "{:.2f}"),
    ("Analysis load, s (import excluded)", "load_noimport_s", "{:.2f}"),
    ("resume: s from `hpctune resume` start to the first new result", "resume_first_s", "{:.2f}"),
    ("resume: s from start to end", "resume_total_s", "{:.2f}"),
    ("machine busy cores during the timed run (all processes)", "busy_cores", "{:.2f}"),
    ("durable results verified (Analysis, fresh process)", "verified", None),
    ("resume verified (Analysis, fresh process)", "resume_verified", None),
    ("snapshot method(s) wrapped", "snap_methods", None),
]


def cell(value, fmt: str | None) -> str:
    if value is None:
        return "–"
    if fmt is None or isinstance(value, str):
        return str(value)
    return fmt.format(value)


def table(title: str, key: str, fmt: str | None, names: list[str], sizes: list[str], results: dict) -> list[str]:
    ratio = len(names) == 2 and fmt is not None
    head = ["trials × reports"] + names + ([f"{names[1]}/{names[0]}"] if ratio else [])
    lines = [f"**{title}**", "", "| " + " | ".join(head) + " |",
             "|---|" + "|".join(("---:" if fmt else "---") for _ in head[1:]) + "|"]
    for size in sizes:
        values = [results[name][size].get(key, results[name][size].get("error")) for name in names]
        cells = [cell(v, fmt) for v in values]
        if ratio:
            a, b = values
            numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            cells.append(f"{b / a:.2f}" if numbers and a else "–")
        lines.append(f"| {size} | " + " | ".join(cells) + " |")
    return lines + [""]


def markdown(m: dict, variants: list, sizes: list[str], results: dict, cli_workload: tuple[int, int],
             cli_repeats: int) -> str:
    """The report: machine, variants, the CLI's time to first trial, then a table per metric of ``results``
    (variant name -> size label -> figures)."""
    names = [v.name for v in variants]
    lines = [f"Machine: {m['nproc']} cores (nproc), {m['cpu']}, {m['ram_gib']} GiB RAM, Python {m['python']}, "
             f"{m['os']}, {m['date']}", "", "| variant | source tree | commit | hpctune imported from |",
             "|---|---|---|---|"]
    lines += [f"| {v.name} | {v.src} | {v.commit} | {v.hpctune_file} |" for v in variants]
    trials, reports = cli_workload
    lines += ["", f"**time to first trial running, `hpctune run SPEC.yaml --workers 2` ({trials} trials × {reports} "
              f"reports), s from Popen (median of {cli_repeats})**", "",
              "| variant | first trial s | runs | whole command s |", "|---|---:|---|---:|"]
    for v in variants:
        c = v.cli
        runs = ", ".join(f"{x:.2f}" for x in c.get("first_trial_runs_s", []))
        lines.append(f"| {v.name} | {cell(c.get('first_trial_s', c.get('error')), '{:.2f}')} | {runs} | "
                     f"{cell(c.get('wall_s'), '{:.2f}')} |")
    lines.append("")
    for title, key, fmt in METRICS:
        lines += table(title, key, fmt, names, sizes, results)
    return "\n".join(lines)
