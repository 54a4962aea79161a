"""Bad input through the command line: exit 2, one line naming the field, nothing written."""
from __future__ import annotations

import os

import pytest

BASE = {"name": "bad", "trainable": "trainable_fixtures:quick", "metric": "loss", "mode": "min",
        "num_samples": 2, "space": "{x: {uniform: [0, 1]}}"}

# (changes to the spec, or raw YAML text, expected stderr line after "hpctune: error: ")
SPECS = [
    ({"trainable": None}, "trainable: missing required field"),
    ({"metric": None}, "metric: missing required field"),
    ({"space": None}, "space: missing required field"),
    ({"space": "[1, 2]"}, "space: expected a mapping of hyperparameter names, got list"),
    ({"space": "{lr: {uniform: [2, 1]}}"}, "space.lr.uniform: low must be < high (got 2 >= 1)"),
    ({"space": "{lr: {loguniform: [0, 1]}}"}, "space.lr.loguniform: low must be > 0"),
    ({"space": "{lr: {loguniform: [-1, 1]}}"}, "space.lr.loguniform: low must be > 0"),
    ({"space": "{lr: {uniform: [a, 1]}}"}, "space.lr.uniform: expected a number, got 'a'"),
    ({"space": "{n: {randint: [3, 3]}}"}, "space.n.randint: low must be < high (got 3 >= 3; high is excluded)"),
    ({"space": "{b: {quniform: [1, 9, -2]}}"}, "space.b.quniform: q must be > 0"),
    ({"space": "{c: {choice: []}}"}, "space.c.choice: expected a non-empty list of values"),
    ({"space": "{lr: {loguniforn: [1.0e-4, 1]}}"}, "space.lr: 'loguniforn' is not a domain (did you mean "
                                                  "'loguniform'?); to mean a constant mapping, write "
                                                  "{constant: {loguniforn: ...}}"),
    ({"mode": "maximize"}, "mode: must be 'min' or 'max', got 'maximize'"),
    ({"num_samples": -3}, "num_samples: must be >= 1, got -3"),
    ({"num_samples": "many"}, "num_samples: expected an integer, got 'many'"),
    ({"max_failures": -1}, "max_failures: must be >= 0, got -1"),
    ({"seed": "abc"}, "seed: expected an integer, got 'abc'"),
    ({"scheduler": "turbo"}, "scheduler.type: unknown scheduler 'turbo' (known: asha, fifo, hyperband, median, pbt, sha)"),
    ({"scheduler": "{type: asha, grace: 2}"}, "scheduler.grace: unknown option of scheduler 'asha' (known: "
                                              "grace_period, max_t, reduction_factor, brackets, time_attr, stop_variant)"),
    ({"scheduler": "{type: asha, reduction_factor: 1}"}, "scheduler.reduction_factor: must be >= 2, got 1"),
    ({"scheduler": "{type: sha, grace_period: 0}"}, "scheduler.grace_period: must be >= 1, got 0"),
    ({"searcher": "bayesopt"}, "searcher.type: unknown searcher 'bayesopt' (known: cmaes, gp, grid, optuna, qmc, random, tpe)"),
    ({"trainable": "nosuchmodule_abc:train"}, "trainable: cannot import 'nosuchmodule_abc': ModuleNotFoundError: "
                                              "No module named 'nosuchmodule_abc'"),
    ({"trainable": "trainable_fixtures:NOT_CALLABLE"}, "trainable: 'trainable_fixtures:NOT_CALLABLE' is not callable"),
    ({"trainable": "trainable_fixtures:absent"}, "trainable: 'trainable_fixtures' has no attribute 'absent'"),
    ({"name": "a/b"}, "name: must be letters, digits, '.', '_' or '-' (no '/' or '..'), got 'a/b'"),
    ({"name": "'..'"}, "name: must be letters, digits, '.', '_' or '-' (no '/' or '..'), got '..'"),
    ({"storage": "/proc/self/runs"}, "storage: /proc/self is not writable"),
    ({"stop": "{training_iteration: soon}"}, "stop.training_iteration: expected a number, got 'soon'"),
    ({"resources": "{gpus_per_rank: -1}"}, "resources.gpus_per_rank: must be >= 0, got -1"),
    ({"time_budget_s": -5}, "time_budget_s: expected seconds > 0, got -5"),
    ({"budget": "two hours"}, "budget: expected hours > 0, got 'two hours'"),
    ({"space": "{opt: {choice: [sgd, {name: adam, beta: {uniform: [0.8, 0.99]}}]}}"},
     "space.opt.choice[1]: holds a domain (beta: uniform); a choice's values are constants, a domain inside one "
     "would never be sampled"),
    ({"colour": "red"}, "colour: unknown field (known: budget, checkpoint_keep, max_failures, metric, mode, name, "
                        "num_samples, policy, resources, scheduler, searcher, seed, space, stop, storage, tensorboard, "
                        "time_budget_s, trainable)"),
]


def _write(tmp_path, changes: dict) -> str:
    fields = {**BASE, "storage": str(tmp_path / "runs"), **changes}
    path = tmp_path / "spec.yaml"
    path.write_text("".join(f"{k}: {v}\n" for k, v in fields.items() if v is not None))
    return str(path)


@pytest.mark.parametrize("changes, line", SPECS, ids=[line.split(":")[0] for _, line in SPECS])
def test_bad_spec(run_cli, tmp_path, changes, line):
    done = run_cli("run", _write(tmp_path, changes))
    assert (done.returncode, done.stderr.strip()) == (2, f"hpctune: error: {line}")
    assert not (tmp_path / "runs").exists()  # nothing written for a spec error


def test_broken_yaml(run_cli, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nspace: {lr: [1, 2\n")
    done = run_cli("run", str(path))
    assert done.returncode == 2
    assert done.stderr.strip().startswith(f"hpctune: error: {path}:3: not valid YAML")
    assert len(done.stderr.strip().splitlines()) == 1


def test_duplicate_key(run_cli, tmp_path):
    path = _write(tmp_path, {"space": "\n  lr: {uniform: [0, 1]}\n  lr: {loguniform: [0.1, 1]}"})
    done = run_cli("run", path)
    # <file>:<line of the second occurrence>: duplicate key '<key>' (first at line <line of the first>)
    assert (done.returncode, done.stderr) == (2, f"hpctune: error: {path}:8: duplicate key 'lr' (first at line 7)\n")
    assert not (tmp_path / "runs").exists()


def test_spec_that_is_not_utf8(run_cli, tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: x\nmetric: \xff\n")
    done = run_cli("run", str(path))
    # <file>:<line>: not UTF-8 text (byte 0x<byte> at position <byte offset in the file, from 0>)
    assert (done.returncode, done.stderr) == (2, f"hpctune: error: {path}:2: not UTF-8 text (byte 0xff at position 16)\n")


@pytest.mark.parametrize("args, line", [
    (["run", "spec.yaml", "--workers", "-2"], "command line: argument --workers: expected a positive integer, got '-2'"),
    (["run", "spec.yaml", "--backend", "gpu"], "command line: argument --backend: invalid choice: 'gpu'"),
    (["analyze", "nowhere", "--top", "0"], "command line: argument --top: expected a positive integer, got '0'"),
    (["resume", "nowhere"], "nowhere: is not an hpctune experiment (no experiment.h5)"),
])
def test_bad_command_line(run_cli, tmp_path, args, line):
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.strip().startswith(f"hpctune: error: {line}")


# every registered searcher, options of the wrong type or out of range: (searcher, line after "hpctune: error: ")
SEARCHER_OPTIONS = [
    ("{type: random, seed: abc}", "searcher.seed: expected an integer >= 0 or null, got 'abc'"),
    ("{type: grid, seed: 1.5}", "searcher.seed: expected an integer >= 0 or null, got 1.5"),
    ("{type: tpe, n_startup_trials: many}", "searcher.n_startup_trials: expected an integer >= 0, got 'many'"),
    ("{type: tpe, seed: abc}", "searcher.seed: expected an integer >= 0 or null, got 'abc'"),
    ("{type: tpe, multivariate: sometimes}", "searcher.multivariate: expected true, false or null, got 'sometimes'"),
    ("{type: tpe, n_ei_candidates: 0}", "searcher.n_ei_candidates: expected an integer >= 1, got 0"),
    ("{type: tpe, gamma: 5}", "searcher.gamma: TPESampler takes a Python object here (Callable[[int], int] | None), "
                              "which a spec cannot hold: leave it out"),
    ("{type: cmaes, sigma0: [1, 2]}", "searcher.sigma0: expected a number > 0 or null, got [1, 2]"),
    ("{type: cmaes, popsize: 1}", "searcher.popsize: expected an integer >= 2 or null, got 1"),
    ("{type: cmaes, x0: {y: 0.5}}", "searcher.x0.y: not a numeric hyperparameter of the space (numeric: x)"),
    ("{type: cmaes, x0: {x: 2}}", "searcher.x0.x: expected a number in [0.0, 1.0], got 2"),
    ("{type: gp, n_startup_trials: -1}", "searcher.n_startup_trials: expected an integer >= 0, got -1"),
    ("{type: gp, deterministic_objective: 1}", "searcher.deterministic_objective: expected true or false, got 1"),
    ("{type: qmc, qmc_type: lattice}", "searcher.qmc_type: expected one of 'sobol' or 'halton', got 'lattice'"),
    ("{type: qmc, scramble: maybe}", "searcher.scramble: expected true or false, got 'maybe'"),
    ("{type: optuna, sampler: NSGAIISampler, crossover_prob: 2}",
     "searcher.crossover_prob: expected a number in [0, 1], got 2"),
    ("{type: optuna, multi_fidelity: 0}", "searcher.multi_fidelity: expected true or false, got 0"),
]


@pytest.mark.parametrize("searcher, line", SEARCHER_OPTIONS, ids=[line.split(":")[0] + "/" + searcher.split(",")[0][7:]
                                                                  for searcher, line in SEARCHER_OPTIONS])
def test_bad_searcher_option(run_cli, tmp_path, searcher, line):
    """Refused when the searcher is built, before the folder: not a traceback at the first suggestion that
    uses the option (tpe's n_startup_trials), or a run that goes on with the option meaning nothing."""
    done = run_cli("run", _write(tmp_path, {"searcher": searcher}))
    assert (done.returncode, done.stderr) == (2, f"hpctune: error: {line}\n")
    assert not (tmp_path / "runs").exists()


def test_gp_without_pytorch_is_refused_before_anything_is_written(run_cli, tmp_path):
    """GPSampler imports torch only when it first fits, after n_startup_trials trials: refused up front
    instead. PyTorch is made unimportable here by a 'torch' package that raises ImportError, first on
    the path of the CLI's process."""
    from conftest import REPO

    hidden = tmp_path / "no_torch"
    (hidden / "torch").mkdir(parents=True)
    (hidden / "torch" / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\", name='torch')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(hidden), str(REPO), str(REPO / "tests")])}
    done = run_cli("run", _write(tmp_path, {"searcher": "gp"}), env=env)
    assert (done.returncode, done.stderr) == (2, "hpctune: error: searcher.type: GPSampler needs torch, which cannot "
                                                 "be imported: pip install torch\n")
    assert not (tmp_path / "runs").exists()
