"""``hpctune plot DIR [--out FOLDER]``: PNGs of real experiments (asha and pbt on spawned MPI ranks, one
whose trials never report, one still running), read only through the experiment's files."""
from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

import hpctune
from hpctune.cli.commands import main

from conftest import REPO, running

pytest.importorskip("matplotlib")

SIZES = {"best_so_far": (1000, 600), "learning_curves": (1000, 600), "rank_timelines": (1000, 600),
         "pbt_schedules": (1000, 800), "configs": (1200, 600)}
EVERY = ["best_so_far", "learning_curves", "rank_timelines", "pbt_schedules", "configs"]
NOT_PBT = "skipped pbt_schedules.png: not a PBT experiment (scheduler asha, no exploit in the lineage)"


def no_result(config):
    """Fails before its first report."""
    raise ValueError("no result from this trial")


@pytest.fixture(scope="module")
def asha(tmp_path_factory) -> Path:
    """12 trials of ``quick`` under asha (rungs 1, 3, 9) on 2 spawned worker ranks; a log-uniform
    and a categorical hyperparameter."""
    from trainable_fixtures import quick

    storage = tmp_path_factory.mktemp("asha")
    hpctune.run(quick, space={"x": hpctune.uniform(0, 1), "lr": hpctune.loguniform(1e-4, 1.0),
                              "opt": hpctune.choice(["sgd", "adam"]), "epochs": 9},
                metric="loss", num_samples=12, scheduler={"type": "asha", "grace_period": 1, "max_t": 9,
                                                          "reduction_factor": 3},
                storage=str(storage), name="asha", backend="mpi", workers=2, verbose=0)
    return storage / "asha"


@pytest.fixture(scope="module")
def pbt(tmp_path_factory) -> Path:
    """examples/pbt_toy.py's population of 6, 12 steps each, on 2 spawned worker ranks."""
    sys.path.insert(0, str(REPO))
    from examples.pbt_toy import SPACE, train

    storage = tmp_path_factory.mktemp("pbt")
    hpctune.run(train, space={**SPACE, "steps": 12, "sleep": 0.02}, metric="Q", mode="max", num_samples=6,
                scheduler={"type": "pbt", "perturbation_interval": 3, "quantile_fraction": 0.25},
                storage=str(storage), name="pbt", backend="mpi", workers=2, verbose=0)
    return storage / "pbt"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def pixels(path: Path) -> np.ndarray:
    import matplotlib.image

    return matplotlib.image.imread(path)


def check_pngs(out: Path, names: list[str]) -> None:
    """Exactly these PNGs in ``out``, each of its fixed pixel size and far from a single colour."""
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{name}.png" for name in names)
    for name in names:
        path = out / f"{name}.png"
        assert png_size(path) == SIZES[name], name
        image = np.ascontiguousarray((pixels(path)[..., :3] * 255).round().astype(np.uint32))
        assert image.shape[:2] == SIZES[name][::-1]
        colours = len(np.unique(image[..., 0] << 16 | image[..., 1] << 8 | image[..., 2]))
        assert colours > 50, f"{name}: only {colours} distinct colours"
        assert (image[..., :3] < 100).mean() > 0.002, f"{name}: almost nothing dark drawn"


def plot(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["plot", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_an_asha_experiment_plots_all_but_the_pbt_schedules(asha, tmp_path, capsys):
    out = tmp_path / "pngs"
    code, stdout, stderr = plot(capsys, asha, "--out", out)
    assert code == 0, stderr
    written = ["best_so_far", "learning_curves", "rank_timelines", "configs"]
    assert stdout.splitlines() == [f"wrote {out / name}.png" for name in written]
    assert stderr.splitlines() == [NOT_PBT]
    check_pngs(out, written)


def test_a_pbt_experiment_plots_everything(pbt, tmp_path, capsys):
    assert (hpctune.Analysis(pbt).lineage.event == "add").sum() == 6
    out = tmp_path / "pngs"
    code, stdout, stderr = plot(capsys, pbt, "--out", out)
    assert code == 0, stderr
    assert stderr == ""
    assert stdout.splitlines() == [f"wrote {out / name}.png" for name in EVERY]
    check_pngs(out, EVERY)


def test_a_copy_of_the_folder_plots_the_same_into_its_plots_folder(pbt, tmp_path, capsys):
    plot(capsys, pbt, "--out", tmp_path / "original")
    copy = tmp_path / "elsewhere" / "pbt"
    shutil.copytree(pbt, copy)
    code, stdout, _ = plot(capsys, copy)  # default: DIR/plots
    assert code == 0
    assert stdout.splitlines() == [f"wrote {copy / 'plots' / name}.png" for name in EVERY]
    for name in EVERY:  # the same pixels
        assert np.array_equal(pixels(copy / "plots" / f"{name}.png"), pixels(tmp_path / "original" / f"{name}.png"))


def test_plotting_writes_nothing_into_the_experiment_folder(asha, tmp_path, capsys):
    def files():
        return {str(p.relative_to(asha)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(asha.rglob("*"))}

    before = files()
    code, _, _ = plot(capsys, asha, "--out", tmp_path / "out")
    assert code == 0
    assert files() == before


def test_the_command_as_a_subprocess(asha, tmp_path, run_cli):
    out = tmp_path / "cli"
    done = run_cli("plot", str(asha), "--out", str(out), timeout=120)
    assert done.returncode == 0, done.stderr
    written = ["best_so_far", "learning_curves", "rank_timelines", "configs"]
    assert done.stdout.splitlines() == [f"wrote {out / name}.png" for name in written]
    assert done.stderr.splitlines() == [NOT_PBT]
    check_pngs(out, written)


def test_a_folder_without_an_experiment_is_one_line_and_exit_2(tmp_path, capsys):
    folder = tmp_path / "nothing"
    folder.mkdir()
    code, stdout, stderr = plot(capsys, folder, "--out", tmp_path / "out")
    assert (code, stdout) == (2, "")
    assert stderr == f"hpctune: error: {folder}: is not an hpctune experiment (no experiment.h5)\n"
    assert not (tmp_path / "out").exists() and list(folder.iterdir()) == []


def test_without_matplotlib_it_says_how_to_install_it(asha, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails as if not installed
    code, stdout, stderr = plot(capsys, asha, "--out", tmp_path / "out")
    assert (code, stdout) == (2, "")
    assert stderr == ("hpctune: error: hpctune plot needs matplotlib, an optional extra: "
                      "pip install 'hpctune[plot]'\n")
    assert not (tmp_path / "out").exists()


def test_trials_without_results_skip_the_metric_plots(tmp_path, capsys):
    hpctune.run(no_result, space={"x": hpctune.uniform(0, 1)}, metric="loss", num_samples=3, storage=str(tmp_path),
                name="silent", backend="local", verbose=0)
    out = tmp_path / "out"
    code, stdout, stderr = plot(capsys, tmp_path / "silent", "--out", out)
    assert code == 0
    assert stdout.splitlines() == [f"wrote {out / 'rank_timelines.png'}", f"wrote {out / 'configs.png'}"]
    assert stderr.splitlines() == [
        "skipped best_so_far.png: no result with a value of 'loss' yet",
        "skipped learning_curves.png: no result with a value of 'loss' yet",
        "skipped pbt_schedules.png: not a PBT experiment (scheduler fifo, no exploit in the lineage)"]
    check_pngs(out, ["rank_timelines", "configs"])


def test_write_plots_returns_the_files_and_reports_what_it_skipped(asha, tmp_path, capsys):
    from hpctune.reporting.plots import write_plots

    skipped: list[str] = []
    assert write_plots(asha, tmp_path, skipped=skipped, names=["configs", "pbt_schedules"]) == [tmp_path / "configs.png"]
    assert skipped == [NOT_PBT.removeprefix("skipped ")]
    assert write_plots(hpctune.Analysis(asha), tmp_path, names=["pbt_schedules"]) == []
    assert capsys.readouterr().err == f"hpctune: {NOT_PBT}\n"  # no list given: said on stderr
    with pytest.raises(ValueError, match="no plot named histogram"):
        write_plots(asha, tmp_path, names=["histogram"])


def test_an_experiment_still_running_can_be_plotted(tmp_path, capsys):
    with running(tmp_path, "spawn", "live", num_samples=4, epochs=40, sleep=0.05) as (process, folder, _):
        code, stdout, stderr = plot(capsys, folder, "--out", tmp_path / "out")
        assert process.poll() is None  # it was still running while it was plotted
    process.communicate(timeout=30)  # killed at the end of running(); its stderr pipe closed
    assert code == 0, stderr
    assert f"wrote {tmp_path / 'out' / 'rank_timelines.png'}" in stdout.splitlines()
    assert f"wrote {tmp_path / 'out' / 'learning_curves.png'}" in stdout.splitlines()
    assert png_size(tmp_path / "out" / "rank_timelines.png") == SIZES["rank_timelines"]
