"""Any name a user gives a metric or a hyperparameter is stored, read back, and resumable."""
from __future__ import annotations

import h5py
import numpy as np

import hpctune
from hpctune.store.tables import escape_name, read_table, unescape_name, write_table

from trainable_fixtures import odd_names

HOSTILE = ["a", "a/b", "a%2Fb", "", ".", "..", ".hidden", "%", "%25", "/", "//", "x/", "é/ü"]


def test_escaped_names_are_distinct_valid_and_round_trip(tmp_path):
    links = [escape_name(name) for name in HOSTILE]
    assert len(set(links)) == len(HOSTILE)
    assert all("/" not in link and link not in ("", ".") for link in links)
    assert [unescape_name(link) for link in links] == HOSTILE
    with h5py.File(tmp_path / "t.h5", "w") as f:
        write_table(f, "t", rows=[{name: i for i, name in enumerate(HOSTILE)}, {"a": "text"}])
    with h5py.File(tmp_path / "t.h5", "r") as f:
        columns, length = read_table(f["t"])
        assert {d.attrs["name"] for d in f["t"].values()} == set(HOSTILE)  # plain h5py sees the real names
    assert length == 2 and list(columns) == HOSTILE
    assert list(columns["a"]) == ["0", "text"]  # a number and a string in one column: strings
    assert columns["a/b"][0] == 1 and np.isnan(columns["a/b"][1])


def test_conditional_space_and_hostile_metric_names_run_resume_and_analyse(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_SNAPSHOT_INTERVAL", "0")  # a part and a snapshot at every chance
    space = {"opt": hpctune.grid(["sgd", {"name": "adam", "beta": 0.9}]), ".": 1, "epochs": 3}
    analysis = hpctune.run(odd_names, space=space, metric="loss", num_samples=2, storage=str(tmp_path),
                           name="names", backend="local", verbose=0)
    assert analysis.status == "finished" and len(analysis.results) == 12
    trials = analysis.trials.set_index("trial_id")
    assert list(trials["config/opt"].fillna("-")) == ["sgd", "-", "sgd", "-"]  # a column per leaf, missing
    assert list(trials["config/opt/name"].fillna("-")) == ["-", "adam", "-", "adam"]  # where it does not apply
    assert list(trials["config/opt/beta"].isna()) == [True, False, True, False]
    assert set(trials["config/."]) == {1}
    assert list(trials["a/b"]) == [6.0] * 4 and list(trials[""]) == ["empty"] * 4  # last value per metric
    assert set(analysis.results[["a", "a/b", ".", "%2F", "bad\\udcff"]].iloc[-1]) == {3, 6.0, "percent", 1}
    assert analysis.best_config in ({"opt": "sgd", ".": 1, "epochs": 3},
                                    {"opt": {"name": "adam", "beta": 0.9}, ".": 1, "epochs": 3})
    folder = tmp_path / "names"
    with h5py.File(folder / "experiment.h5", "r") as f:  # plain h5py, through the virtual datasets
        by_name = {d.attrs["name"]: d for d in f["results"].values()}
        assert list(by_name["a"][()]) == [1, 2, 3] * 4
        assert list(by_name["a/b"][()]) == [2.0, 4.0, 6.0] * 4
        assert set(by_name[""].asstr()[()]) == {"empty"}
        assert f["trials/config%2Fopt%2Fname"].attrs["name"] == "config/opt/name"
    again = hpctune.run(odd_names, space=space, metric="loss", num_samples=2, storage=str(tmp_path),
                        name="names", backend="local", verbose=0, resume=True)
    assert len(again.results) == 12


def test_a_snapshot_that_fails_never_stops_the_run_or_its_resume(tmp_path, monkeypatch, capsys):
    import hpctune.store.experiment as experiment

    original = experiment.write_head

    def broken(folder, **kwargs):  # creating the experiment works; every later snapshot fails
        if kwargs["seq"] > 0:
            raise RuntimeError("snapshot writer broke")
        original(folder, **kwargs)

    monkeypatch.setenv("HPCTUNE_SNAPSHOT_INTERVAL", "0")
    monkeypatch.setattr(experiment, "write_head", broken)
    analysis = hpctune.run(odd_names, space={"epochs": 4}, metric="loss", num_samples=3, storage=str(tmp_path),
                           name="broken", backend="local", verbose=1)
    assert "warning: the snapshot could not be written (the journal keeps every result; retrying)" in \
        capsys.readouterr().err
    assert analysis.status == "finished" and len(analysis.results) == 12  # the journal has everything
    monkeypatch.undo()
    again = hpctune.run(odd_names, space={"epochs": 4}, metric="loss", num_samples=3, storage=str(tmp_path),
                        name="broken", backend="local", verbose=0, resume=True)
    assert len(again.results) == 12 and set(again.trials.state) == {"TERMINATED"}
