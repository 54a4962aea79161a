"""TensorBoard event files: a folder per trial under <experiment>/tb/, read back with TensorBoard's own
reader; every step once, also across a Ctrl-C, a SIGKILL and resumes; off, and missing tensorboardX."""
from __future__ import annotations

import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import hpctune

from conftest import (BIN, REPO, _env, kill_run, resume_to_the_end, run_pids, slow_counter_spec, start_run,
                      wait_until)

NEEDS_TENSORBOARD = pytest.mark.skipif(
    (importlib.util.find_spec("tensorboardX") is None or importlib.util.find_spec("tensorboard") is None)
    and not os.environ.get("HPCTUNE_CI"), reason="needs tensorboardX and tensorboard (the test extra); CI has them")
TIME_TAGS = {"hpctune/time_total_s", "hpctune/time_this_iter_s"}
MISSING = "hpctune: error: tensorboard: needs tensorboardX, an optional extra: pip install 'hpctune[tensorboard]'"


def _event_files(trial_folder) -> list:
    return [path for path in trial_folder.iterdir() if "tfevents" in path.name]


def read_tensorboard(folder) -> dict:
    """trial folder name -> {"scalars": {tag: [(step, value), ...]}, "hparams": {name: value}}, with
    TensorBoard's own reader (every event kept)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata

    runs = {}
    for path in sorted(p for p in (folder / "tb").iterdir() if p.is_dir()):
        accumulator = EventAccumulator(str(path), size_guidance={"scalars": 0})
        accumulator.Reload()
        scalars = {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
                   for tag in accumulator.Tags()["scalars"]}
        content = accumulator.PluginTagToContent("hparams").get(metadata.SESSION_START_INFO_TAG)
        hparams = {} if content is None else {
            name: getattr(value, value.WhichOneof("kind"))
            for name, value in metadata.parse_session_start_info_plugin_data(content).hparams.items()}
        runs[path.name] = {"scalars": scalars, "hparams": hparams}
    return runs


def assert_tensorboard_matches(folder, metrics: set) -> dict:
    """A folder per trial, named as its folder in trials/; scalars ``metrics`` and hpctune's times, steps
    exactly 1..N (N: the trial's results), values those of Analysis.results; hparams its config."""
    analysis = hpctune.Analysis(folder)
    runs = read_tensorboard(folder)
    assert set(runs) == {f"{trial_id:06d}" for trial_id in analysis.trials.trial_id}  # as trials/<id>/
    for trial_id, rows in analysis.results.groupby("trial_id"):
        run = runs[f"{trial_id:06d}"]
        assert set(run["scalars"]) == metrics | TIME_TAGS, trial_id
        rows = rows.sort_values("training_iteration")
        for tag, events in run["scalars"].items():
            assert [step for step, _ in events] == list(range(1, len(rows) + 1)), (trial_id, tag)  # once each
            column = rows[tag.removeprefix("hpctune/")]
            assert [value for _, value in events] == pytest.approx(list(column), rel=1e-6), (trial_id, tag)
        config = analysis.trials.set_index("trial_id").loc[trial_id]
        expected = {name[len("config/"):]: value for name, value in config.items() if name.startswith("config/")
                    and not (isinstance(value, float) and math.isnan(value))}
        assert run["hparams"] == pytest.approx(expected), trial_id
    return runs


def trainable(config):
    for i in range(1, 5):
        hpctune.report({"loss": config["x"] + 1.0 / i, "epoch_items": 10 * i, "note": "text", "flag": True,
                        "sizes": [1, 2]})


@NEEDS_TENSORBOARD
def test_local_run_writes_a_folder_per_trial_with_its_scalars_and_config(tmp_path):
    space = {"x": hpctune.uniform(0, 1), "opt": hpctune.choice(["sgd", {"name": "adam", "beta": 0.9}]), "width": 8}
    hpctune.run(trainable, space=space, metric="loss", num_samples=4, backend="local", storage=str(tmp_path),
                name="local", tensorboard=True, verbose=0)
    assert_tensorboard_matches(tmp_path / "local", {"loss", "epoch_items"})  # no text, bool or list


@NEEDS_TENSORBOARD
@pytest.mark.mpi
def test_mpi_ranks_with_one_open_file_reopen_trials_in_their_folders(run_cli, tmp_path):
    spec = tmp_path / "spec.yaml"
    # 0.3 s an iteration: two trials run side by side, their rows interleaved over several batches
    spec.write_text(f"name: lru\ntrainable: trainable_fixtures:slow_counter\nmetric: loss\nnum_samples: 4\n"
                    f"space: {{x: {{uniform: [0, 1]}}, epochs: 6, sleep: 0.3}}\nstorage: {tmp_path}\n"
                    "tensorboard: true\n")
    done = run_cli("run", str(spec), mpi_ranks=3, env={"HPCTUNE_TENSORBOARD_WRITERS": "1"})
    assert done.returncode == 0, done.stderr
    assert "TensorBoard" not in done.stderr
    folder = tmp_path / "lru"
    assert_tensorboard_matches(folder, {"loss", "started_from"})
    # two trials report at once and one file is open: a trial's folder gets a new file when it reports again
    assert max(len(_event_files(path)) for path in (folder / "tb").iterdir() if path.is_dir()) > 1


@NEEDS_TENSORBOARD
@pytest.mark.mpi
@pytest.mark.slow
def test_ctrl_c_sigkill_and_resumes_write_every_step_once(tmp_path):
    spec = slow_counter_spec(tmp_path, "cut", num_samples=4, epochs=12, sleep=0.15)
    spec.write_text(spec.read_text() + "tensorboard: true\n")
    folder = tmp_path / "runs" / "cut"

    def wait_for_rows_in_new_files(old: set) -> None:  # each file starts with a record of 40 bytes or so
        wait_until(folder, lambda _: any(path.stat().st_size > 100 for path in folder.glob("tb/*/*tfevents*")
                                         if path not in old), "no event file of this run with results")

    process = start_run(spec, "spawn")
    try:  # Ctrl-C: the writer process writes what it was given and ends with the run
        wait_for_rows_in_new_files(set())
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 1, process.stderr.read()
    finally:
        kill_run(spec)
    assert hpctune.Analysis(folder).status == "interrupted"
    resumed = subprocess.Popen([str(BIN / "hpctune"), "resume", str(folder), "--workers", "2"],
                               env=_env({"HPCTUNE_TEST_RUN": str(spec)}), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # the writer process killed, more results, then SIGKILL of the whole run: resume writes what it lacks
        wait_for_rows_in_new_files(set(folder.glob("tb/*/*tfevents*")))
        accepted = len(hpctune.Analysis(folder).results)
        writers = [pid for pid in run_pids(spec) if b"hpctune.reporting.tensorboard" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(writers) == 1
        os.kill(writers[0], signal.SIGKILL)
        wait_until(folder, lambda analysis: len(analysis.results) >= accepted + 4, "4 more results")
        kill_run(spec)
        resumed.wait(timeout=30)
    finally:
        kill_run(spec)
    resume_to_the_end(folder, trials=4, epochs=12)
    assert_tensorboard_matches(folder, {"loss", "started_from"})


@NEEDS_TENSORBOARD
def test_false_writes_no_tensorboard_folder(tmp_path):
    hpctune.run(trainable, space={"x": 0.5}, metric="loss", backend="local", storage=str(tmp_path), name="off",
                tensorboard=False, verbose=0)
    assert (tmp_path / "off" / "experiment.h5").exists() and not (tmp_path / "off" / "tb").exists()


def _without_tensorboardx(*args: str, cwd) -> subprocess.CompletedProcess:
    """``hpctune ARGS`` in a process where ``import tensorboardX`` fails, as where it is not installed."""
    code = "import sys; sys.modules['tensorboardX'] = None; from hpctune.cli.commands import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("value", ["true", "auto"])
def test_without_tensorboardx_true_is_one_line_and_auto_is_off(tmp_path, value):
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"name: notb\ntrainable: trainable_fixtures:quick\nmetric: loss\nspace: {{x: 0.5, epochs: 2}}\n"
                    f"storage: {tmp_path / 'runs'}\ntensorboard: {value}\n")
    done = _without_tensorboardx("run", str(spec), "--backend", "local", cwd=REPO)
    if value == "true":  # refused before anything is written
        assert (done.returncode, done.stderr.strip()) == (2, MISSING)
        assert not (tmp_path / "runs").exists()
    else:
        assert done.returncode == 0, done.stderr
        assert "TensorBoard" not in done.stderr and not (tmp_path / "runs" / "notb" / "tb").exists()


@NEEDS_TENSORBOARD
def test_a_writer_that_fails_is_one_warning_and_the_experiment_goes_on(tmp_path, capfd):
    def run(samples):
        return hpctune.run(trainable, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=samples,
                           backend="local", storage=str(tmp_path), name="broken", resume=True, tensorboard=True)

    run(1)
    tb = tmp_path / "broken" / "tb"
    shutil.rmtree(tb)
    tb.write_text("a file where the folder should be")  # its writer process cannot make the trials' folders
    capfd.readouterr()
    analysis = run(3)
    warnings = [line for line in capfd.readouterr().err.splitlines() if "TensorBoard" in line]
    assert len(warnings) == 1 and warnings[0].startswith("[hpctune broken] warning: TensorBoard: cannot write ")
    assert warnings[0].endswith("; no more event files are written in this run (the experiment goes on)")
    assert len(analysis.trials) == 3 and set(analysis.trials.state) == {"TERMINATED"}
