"""Spec validation: each bad field gives its one-line message (the scheduler's and searcher's
options when they are built, as ``hpctune.run`` and the CLI do before anything is written)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpctune.controller.core import build_algorithms
from hpctune.errors import SpecError
from hpctune.schedulers import AsyncSuccessiveHalving
from hpctune.searchers import RandomSearcher
from hpctune.spec import load_spec, spec_from_dict

GOOD = {"name": "t", "trainable": "trainable_fixtures:quick", "metric": "loss", "mode": "min",
        "num_samples": 2, "space": {"x": {"uniform": [0, 1]}}}


def _error(**changes) -> str:
    raw = {**GOOD, **changes}
    for key, value in list(raw.items()):
        if value is ...:
            del raw[key]
    with pytest.raises(SpecError) as info:
        build_algorithms(spec_from_dict(raw))
    return str(info.value)


@pytest.mark.parametrize("changes, message", [
    ({"trainable": ...}, "trainable: missing required field"),
    ({"metric": ...}, "metric: missing required field"),
    ({"space": ...}, "space: missing required field"),
    ({"mode": "maximum"}, "mode: must be 'min' or 'max', got 'maximum'"),
    ({"num_samples": -1}, "num_samples: must be >= 1, got -1"),
    ({"num_samples": "ten"}, "num_samples: expected an integer, got 'ten'"),
    ({"seed": 1.5}, "seed: expected an integer, got 1.5"),
    ({"max_failures": -2}, "max_failures: must be >= 0, got -2"),
    ({"name": "a/b"}, "name: must be letters, digits, '.', '_' or '-' (no '/' or '..'), got 'a/b'"),
    ({"name": ".."}, "name: must be letters, digits, '.', '_' or '-' (no '/' or '..'), got '..'"),
    ({"name": "x..y"}, "name: must be letters, digits, '.', '_' or '-' (no '/' or '..'), got 'x..y'"),
    ({"scheduler": "nope"}, "scheduler.type: unknown scheduler 'nope' (known: "),
    ({"scheduler": {"type": "fifo", "grace": 1}}, "scheduler.grace: unknown option of scheduler 'fifo' (known: none)"),
    ({"scheduler": {"grace_period": 1}}, "scheduler.type: missing required field"),
    ({"searcher": "bayes"}, "searcher.type: unknown searcher 'bayes' (known: cmaes, gp, grid, optuna, qmc, random, tpe)"),
    ({"searcher": {"type": "random", "sed": 1}}, "searcher.sed: unknown option of searcher 'random' (known: seed)"),
    ({"scheduler": 3}, "scheduler: expected a name or a mapping with 'type', got 3"),
    ({"scheduler": RandomSearcher()}, "scheduler: expected a name or a mapping with 'type', got <"),
    ({"stop": {"training_iteration": "x"}}, "stop.training_iteration: expected a number, got 'x'"),
    ({"stop": [1]}, "stop: expected a mapping of reported name to threshold, got [1]"),
    ({"resources": {"gpus_per_rank": -1}}, "resources.gpus_per_rank: must be >= 0, got -1"),
    ({"resources": {"cpus": 2}}, "resources.cpus: unknown field (known: gpus_per_rank, ranks_per_trial)"),
    ({"trainable": "no_such_module_xyz:train"}, "trainable: cannot import 'no_such_module_xyz': ModuleNotFoundError"),
    ({"trainable": "trainable_fixtures:missing"}, "trainable: 'trainable_fixtures' has no attribute 'missing'"),
    ({"trainable": "trainable_fixtures:NOT_CALLABLE"}, "trainable: 'trainable_fixtures:NOT_CALLABLE' is not callable"),
    ({"trainable": "just_a_name"}, "trainable: expected 'module:function' or 'path/file.py:function', got 'just_a_name'"),
    ({"trainable": "nowhere/file.py:train"}, "trainable: file 'nowhere/file.py' not found"),
    ({"space": {"lr": {"loguniform": [0, 1]}}}, "space.lr.loguniform: low must be > 0"),
    ({"colour": "blue"}, "colour: unknown field (known: "),
    ({"metric": ""}, "metric: expected a reported metric name, got ''"),
    ({"time_budget_s": 0}, "time_budget_s: expected seconds > 0, got 0"),
    ({"checkpoint_keep": 0}, "checkpoint_keep: must be >= 1, got 0"),
])
def test_bad_field_message(changes, message):
    assert _error(**changes).startswith(message)


def test_storage_not_writable():
    # /proc refuses new files even to root, which os.access would let through
    assert _error(storage="/proc/self/runs") == "storage: /proc/self is not writable"


def test_storage_is_a_file(tmp_path):
    (tmp_path / "f").write_text("")
    assert _error(storage=str(tmp_path / "f" / "runs")) == f"storage: {tmp_path / 'f'} is not a folder"


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nspace: {lr: [1, 2\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:")
    assert "not valid YAML" in str(info.value)


# The line names the second occurrence; the first is given in brackets. Lines count from 1.
@pytest.mark.parametrize("text, line", [
    ("name: a\nmetric: loss\nname: b\n", "3: duplicate key 'name' (first at line 1)"),
    ("space:\n  lr: {uniform: [0, 1]}\n  x: 1\n  lr: {uniform: [0, 2]}\n", "4: duplicate key 'lr' (first at line 2)"),
    ("space:\n  net:\n    width: 8\n    width: 16\n", "4: duplicate key 'width' (first at line 3)"),
    ("space: {x: {uniform: [0, 1], uniform: [0, 2]}}\n", "1: duplicate key 'uniform' (first at line 1)"),
    ("scheduler:\n  type: asha\n  max_t: 9\n  max_t: 27\n", "4: duplicate key 'max_t' (first at line 3)"),
    ("stop: [{a: 1}, {b: 1, b: 2}]\n", "1: duplicate key 'b' (first at line 1)"),
], ids=["top-level", "space", "nested", "flow", "scheduler", "in-a-list"])
def test_duplicate_key_names_key_and_line(tmp_path, text, line):
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"{path}:{line}"


def test_merge_keys_may_be_overridden(tmp_path):
    # YAML's merge (<<) is meant to be overridden: not a duplicate
    path = tmp_path / "merge.yaml"
    path.write_text("trainable: trainable_fixtures:quick\nmetric: loss\n"
                    "space:\n  base: &b {x: 1, y: 2}\n  other:\n    <<: *b\n    x: 5\n")
    spec = load_spec(path, {"storage": str(tmp_path)})
    assert spec.space["other"] == {"x": 5, "y": 2}


def test_spec_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\nmetric: café\n".encode("latin-1"))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    # the line counts from 1, the position is the byte offset in the file from 0
    assert str(info.value) == f"{path}:2: not UTF-8 text (byte 0xe9 at position 19)"


def test_yaml_that_is_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(SpecError, match="expected a YAML mapping of spec fields"):
        load_spec(path)


def test_good_spec_defaults_name_from_file(tmp_path):
    path = tmp_path / "myexp.yaml"
    path.write_text("trainable: trainable_fixtures:quick\nmetric: loss\nspace: {x: {uniform: [0, 1]}}\n")
    spec = load_spec(path, {"storage": str(tmp_path)})
    assert (spec.name, spec.mode, spec.num_samples, spec.storage) == ("myexp", "min", 1, str(tmp_path))
    assert spec.scheduler == {"type": "fifo"} and spec.searcher == {"type": "random"}


def test_scheduler_and_searcher_are_held_as_descriptions():
    # an instance is held as the description it is rebuilt from, the type first, as the experiment file stores it
    spec = spec_from_dict({**GOOD, "scheduler": AsyncSuccessiveHalving(max_t=9, grace_period=1),
                           "searcher": {"seed": 3, "type": "random"}})
    assert spec.scheduler == {"type": "asha", "max_t": 9, "grace_period": 1}
    assert list(spec.to_json()["searcher"]) == ["type", "seed"]
    scheduler, searcher = build_algorithms(spec)
    assert isinstance(scheduler, AsyncSuccessiveHalving) and scheduler.options == {"max_t": 9, "grace_period": 1}
    assert isinstance(searcher, RandomSearcher) and searcher.options == {"seed": 3}


def test_the_spec_imports_no_algorithm(tmp_path):
    # imports point downward: the spec knows descriptions, the controller builds them
    raw = {**GOOD, "scheduler": {"type": "asha", "max_t": 9}, "storage": str(tmp_path)}
    code = (f"import sys, hpctune.spec; hpctune.spec.spec_from_dict({raw!r}, check_trainable=False); "
            "print(*sorted(m for m in sys.modules "
            "if m.startswith(('hpctune.schedulers', 'hpctune.searchers', 'hpctune.controller.core'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.stdout.split() == []


def test_a_scheduler_class_of_a_user_is_registered_under_its_own_name():
    from hpctune.schedulers import SCHEDULERS, FIFOScheduler

    class EveryOther(FIFOScheduler):
        name = "every-other-test"

    class Unnamed(FIFOScheduler):
        pass

    assert SCHEDULERS.get("every-other-test") is EveryOther
    assert spec_from_dict({**GOOD, "scheduler": EveryOther()}).scheduler == \
        {"type": "every-other-test"}
    with pytest.raises(SpecError) as refused:
        spec_from_dict({**GOOD, "scheduler": Unnamed()})
    assert str(refused.value) == ("scheduler: Unnamed needs a name of its own (a class attribute 'name', "
                                  "not 'fifo') to be built again on resume")
