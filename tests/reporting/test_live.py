"""The live view: the coordinator's console and ``hpctune status --watch``, in a log (plain lines at the
interval, no escape code) and on a terminal (a pseudo-terminal: the table redrawn in place)."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

import hpctune
from hpctune.reporting.live.state import LiveState, RunningTrial
from hpctune.reporting.live.render import LiveScreen, screen_lines

from conftest import BIN, _env, kill_run, running, wait_for_results

pytestmark = [pytest.mark.mpi]

ESCAPE = "\x1b"


def _asha_spec(tmp_path: Path, name: str, trials: int = 6, epochs: int = 6, sleep: float = 0.5) -> Path:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(f"name: {name}\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\n"
                    f"num_samples: {trials}\nspace: {{x: {{uniform: [0, 1]}}, epochs: {epochs}, sleep: {sleep}}}\n"
                    "scheduler: {type: asha, grace_period: 1, max_t: 6, reduction_factor: 3}\n"
                    f"storage: {tmp_path / 'runs'}\n")
    return spec


def _summary(prefix: str) -> re.Pattern:
    """A plain summary line: time (or status), trials by state, the best, rungs, busy ranks."""
    return re.compile(prefix + r"\s*(?P<when>\d+\.\ds|finished) \| (?P<done>\d+)/6 finished \| (?P<running>\d+) running "
                      r"\| \d+ paused \| \d+ pending \| 0 error(?: \| best loss=(?P<best>\S+) \(trial (?P<trial>\d+)\))?"
                      r" \| rungs 1:\d+ 3:\d+ 6:\d+(?: \| ranks (?P<busy>\d)/2 busy)?$")


def _best_line(analysis: hpctune.Analysis) -> str:
    config = analysis.best_config
    return (f"best so far: loss={analysis.best_value:.5g}, trial {analysis.best_trial_id} at iteration "
            f"{analysis.best_iteration}; config x={config['x']:.5g} epochs=6 sleep={config['sleep']:g}")


def test_the_console_writes_plain_lines_at_its_interval_into_a_log(tmp_path):
    spec = _asha_spec(tmp_path, "log")
    done = subprocess.run([str(BIN / "hpctune"), "run", str(spec), "--workers", "2"], capture_output=True, text=True,
                          env=_env({"HPCTUNE_PROGRESS_INTERVAL": "1"}), timeout=180)
    assert done.returncode == 0, done.stderr
    assert ESCAPE not in done.stderr and ESCAPE not in done.stdout
    lines = done.stderr.splitlines()
    pattern = _summary(r"\[hpctune log\] ")
    summaries = [pattern.match(line) for line in lines if pattern.match(line)]
    assert len(summaries) >= 3, done.stderr
    times = [float(match["when"][:-1]) for match in summaries]
    gaps = [later - earlier for earlier, later in zip(times[:-2], times[1:-1])]  # the last one is forced at the end
    assert all(gap >= 0.95 for gap in gaps), times
    # a line before the ranks joined has no busy count (under load the first interval can come first)
    assert all(int(match["busy"]) <= 2 for match in summaries if match["busy"] is not None)
    last = summaries[-1]
    assert (last["done"], last["running"], last["busy"]) == ("6", "0", "0"), lines[-6:]
    analysis = hpctune.Analysis(tmp_path / "runs" / "log")
    assert (last["best"], last["trial"]) == (f"{analysis.best_value:.5g}", str(analysis.best_trial_id))
    # the best config is written when the best changes, last when it was last reached
    best_lines = [line.split("] ", 1)[1] for line in lines if "] best so far: " in line]
    assert best_lines[-1] == _best_line(analysis)
    running = [line for line in lines if "] running: " in line]
    assert running and all(re.fullmatch(r"\[hpctune log\] running: trial \d+ \(iteration \d+(, loss=[\d.]+)?, "
                                        r"rank [12], \d+s\)(; trial .*)?", line) for line in running), running


def test_status_watch_follows_a_running_experiment_in_plain_lines(tmp_path):
    spec = _asha_spec(tmp_path, "watched", sleep=1.0)  # long enough for several updates on a loaded node
    folder = tmp_path / "runs" / "watched"
    process = subprocess.Popen([str(BIN / "hpctune"), "run", str(spec), "--workers", "2"], env=_env(
        {"HPCTUNE_TEST_RUN": str(spec)}), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    try:
        wait_for_results(folder, trials=1)
        started = time.monotonic()
        watch = subprocess.run([str(BIN / "hpctune"), "status", str(folder), "--watch", "--interval", "1"],
                               capture_output=True, text=True, env=_env(), timeout=180)
        took = time.monotonic() - started
        assert process.wait(timeout=60) == 0, process.stderr.read()
    finally:
        kill_run(spec)
    assert watch.returncode == 0, watch.stderr
    assert ESCAPE not in watch.stdout
    lines = watch.stdout.splitlines()
    assert all(re.match(r"\[\d\d:\d\d:\d\d\] ", line) for line in lines), lines
    pattern = _summary(r"\[\d\d:\d\d:\d\d\] ")
    summaries = [pattern.match(line) for line in lines if pattern.match(line)]
    assert len(summaries) == len([line for line in lines if "finished |" in line])  # every one matches
    assert 2 <= len(summaries) <= took / 1.0 + 2, (took, lines)
    assert summaries[-1]["when"] == "finished" and summaries[-1]["done"] == "6"  # it ends with the experiment
    assert summaries[0]["when"] != "finished" and int(summaries[0]["busy"]) >= 1
    assert any(re.search(r"running: trial \d+ \(iteration \d+.*, rank [12], \d+s\)", line) for line in lines)
    analysis = hpctune.Analysis(folder)  # the best config is written when the best changes
    assert [line for line in lines if "] best so far: " in line][-1].split("] ", 1)[1] == _best_line(analysis)


def _run_on_a_terminal(command: list[str], env: dict, columns: int = 120, rows: int = 30) -> str:
    """What ``command`` writes on a pseudo-terminal of ``columns`` x ``rows`` (stdout and stderr both)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env,
                               start_new_session=True)
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: every process on it has ended
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=30) == 0, output.decode(errors="replace")[-3000:]
    return output.decode().replace("\r\n", "\n")


def test_on_a_terminal_the_run_redraws_a_table_in_place(tmp_path):
    spec = _asha_spec(tmp_path, "tty")
    screen = _run_on_a_terminal([str(BIN / "hpctune"), "run", str(spec), "--workers", "2"],
                                _env({"TERM": "xterm", "HPCTUNE_TEST_RUN": str(spec)}))
    redraws = re.findall(r"\x1b\[(\d+)F\x1b\[J", screen)
    assert len(redraws) >= 2, screen
    final = screen.rsplit("\x1b[J", 1)[1]  # what is left on screen after the last redraw
    analysis = hpctune.Analysis(tmp_path / "runs" / "tty")
    header, best = final.splitlines()[:2]
    assert re.fullmatch(r"hpctune tty · finished \d+s · 6/6 finished · 0 running · 0 paused · 0 pending · 0 error · "
                        rf"{analysis.num_results} results", header), final
    assert best == (f"best loss={analysis.best_value:.5g} (trial {analysis.best_trial_id}, iteration "
                    f"{analysis.best_iteration}): x={analysis.best_config['x']:.5g} epochs=6 sleep=0.5")
    assert "Experiment tty: finished, 6 trials (6 TERMINATED)" in final  # the closing table comes below it
    drawn = screen.split("\x1b[J")
    assert any(re.search(r"^ +trial +iter +loss +ranks +gpus +time$", part, re.M) for part in drawn)  # the table
    blocks = [part.split(ESCAPE)[0] for part in drawn[1:-1]] + ["\n".join(final.splitlines()[:3])]
    assert all(len(line) < 120 for block in blocks for line in block.splitlines()
               if not line.startswith("[hpctune tty]"))  # cut to the terminal's width (messages are not)


def test_status_watch_on_a_terminal_draws_the_table(tmp_path, run_cli):
    spec = _asha_spec(tmp_path, "done", sleep=0.0)
    assert run_cli("run", spec, "--backend", "local").returncode == 0
    screen = _run_on_a_terminal([str(BIN / "hpctune"), "status", str(tmp_path / "runs" / "done"), "--watch"],
                                _env({"TERM": "xterm"}), columns=60)
    lines = screen.splitlines()
    assert lines[0] == "hpctune done · finished · 6/6 finished · 0 running · 0 paus"  # cut at 59 columns
    assert lines[1].startswith("best loss=") and lines[2].startswith("rungs 1:6 3:")
    plain = subprocess.run([str(BIN / "hpctune"), "status", str(tmp_path / "runs" / "done"), "--watch"],
                           capture_output=True, text=True, env=_env({"HPCTUNE_CONSOLE": "plain"}))
    assert ESCAPE not in plain.stdout and re.match(r"\[\d\d:\d\d:\d\d\] finished \| 6/6 finished", plain.stdout)


def _state(running: int) -> LiveState:
    rows = [RunningTrial(trial_id=i, iteration=i % 7, value=1.0 / (i + 1), ranks=str(1 + i % 4), gpus=str(i % 4),
                         seconds=3.5 * i) for i in range(running)]
    return LiveState(name="big", status="running", metric="val_loss", mode="min", elapsed_s=125.0,
                     counts={"RUNNING": running, "PENDING": 3, "TERMINATED": 10}, total=200, num_results=5000,
                     best=(0.0123, 7, 81), best_config={"lr": 0.001, "model": {"depth": 4}}, running=rows,
                     rungs="rungs 1:100 3:33 9:11", busy_ranks=running, worker_ranks=64, time_left_s=1500)


def test_screen_lines_fit_the_terminal_and_count_the_rows_left_out():
    lines = screen_lines(_state(running=40), width=200, height=12)
    assert lines[:3] == [
        "hpctune big · running 2m05s · 10/200 finished · 40 running · 0 paused · 3 pending · 0 error · 5000 results",
        "best val_loss=0.0123 (trial 7, iteration 81): lr=0.001 model/depth=4",
        "rungs 1:100 3:33 9:11 · ranks 40/64 busy · 25 min left in the allocation"]
    assert lines[3].split() == ["trial", "iter", "val_loss", "ranks", "gpus", "time"]
    assert lines[4].split() == ["0", "0", "1", "1", "0", "0s"] and lines[5].split()[-1] == "3s"
    assert len(lines) == 10 and lines[-1] == "... and 35 more running"  # 12 rows, 2 kept free
    assert all(len(line) <= 40 for line in screen_lines(_state(running=3), width=40, height=30))


def test_the_screen_redraws_over_its_last_block_and_keeps_messages_above():
    stream = io.StringIO()
    screen = LiveScreen(stream)
    screen.draw(_state(running=2))
    first = stream.getvalue()
    assert ESCAPE not in first and len(first.splitlines()) == 6
    screen.message("[hpctune big] trial 3 failed")
    screen.draw(_state(running=1))
    rest = stream.getvalue()[len(first):]
    # the message erases the 6 lines, prints itself and the block again; the draw erases that block
    assert rest.startswith("\x1b[6F\x1b[J[hpctune big] trial 3 failed\n" + first)
    assert rest[len("\x1b[6F\x1b[J[hpctune big] trial 3 failed\n" + first):].startswith("\x1b[6F\x1b[J")
    screen.leave()
    stream.write("after\n")
    assert stream.getvalue().endswith("0s\nafter\n")  # left on screen: nothing erased


@pytest.mark.parametrize("args, env, line", [
    (["status", "{folder}", "--interval", "2"], {}, "hpctune: error: --interval: goes with --watch"),
    (["status", "{folder}", "--watch", "--interval", "0"], {},
     "hpctune: error: command line: argument --interval: expected seconds > 0, got '0'"),
    (["run", "{spec}", "--workers", "2"], {"HPCTUNE_PROGRESS_INTERVAL": "soon"},
     "hpctune: error: HPCTUNE_PROGRESS_INTERVAL: expected seconds, got 'soon'"),
    (["run", "{spec}", "--workers", "2"], {"HPCTUNE_PROGRESS_INTERVAL": "0"},
     "hpctune: error: HPCTUNE_PROGRESS_INTERVAL: must be > 0, got '0'"),
])
def test_bad_live_view_options_are_refused_in_one_line(tmp_path, args, env, line):
    spec = _asha_spec(tmp_path, "bad")
    folder = tmp_path / "runs" / "bad"
    if args[0] == "status":
        assert subprocess.run([str(BIN / "hpctune"), "run", str(spec), "--backend", "local"], env=_env(),
                              capture_output=True).returncode == 0
    before = sorted(p.name for p in folder.iterdir()) if folder.exists() else None
    done = subprocess.run([str(BIN / "hpctune"), *(a.format(folder=folder, spec=spec) for a in args)],
                          capture_output=True, text=True, env=_env(env))
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (2, line), done.stderr
    assert (sorted(p.name for p in folder.iterdir()) if folder.exists() else None) == before  # nothing written


def test_status_watch_of_a_run_that_is_killed_exits_1_saying_so(tmp_path):
    """It exited 0, as for a finished experiment."""
    with running(tmp_path, "spawn", "killed", num_samples=4, epochs=40, sleep=0.2) as (_, folder, spec):
        watch = subprocess.Popen([str(BIN / "hpctune"), "status", str(folder), "--watch", "--interval", "0.5"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
        first = watch.stdout.readline()  # the watch shows the running experiment
        kill_run(spec)  # SIGKILL: the coordinator writes nothing more
        out, err = watch.communicate(timeout=60)
    assert watch.returncode == 1, err
    assert err.splitlines() == [f"hpctune: {folder}: the experiment stopped before its end (interrupted); continue it "
                                f"with 'hpctune resume {folder}'"]
    assert re.match(r"\[\d\d:\d\d:\d\d\] +\d+\.\ds \| ", first), first
    assert re.match(r"\[\d\d:\d\d:\d\d\] interrupted \| ", [line for line in out.splitlines() if " | " in line][-1]), out
