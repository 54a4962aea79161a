"""The search-space DSL: every domain, bounds, constants and nested mappings, the form stored for resume
checks (grid crossing and seeding by the searchers: tests/searchers/test_grid_and_random.py)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import hpctune
from hpctune.errors import SpecError
from hpctune.space import parse_space, sample_config, space_to_json


@pytest.mark.parametrize("domain, check", [
    (hpctune.uniform(2.0, 3.0), lambda v: 2.0 <= v <= 3.0),
    (hpctune.loguniform(1e-4, 1.0), lambda v: 1e-4 <= v <= 1.0),
    (hpctune.quniform(16, 256, 16), lambda v: 16 <= v <= 256 and v % 16 == 0 and isinstance(v, int)),
    (hpctune.qloguniform(1, 1024, 1), lambda v: 1 <= v <= 1024 and float(v).is_integer()),
    (hpctune.randint(1, 4), lambda v: v in (1, 2, 3)),
    (hpctune.choice(["a", "b"]), lambda v: v in ("a", "b")),
])
def test_every_domain_samples_inside_its_bounds(domain, check):
    rng = np.random.default_rng(0)
    values = [domain.sample(rng, {}) for _ in range(500)]
    assert all(check(v) for v in values)
    assert len(set(values)) > 1


def test_loguniform_is_uniform_in_log_space():
    rng = np.random.default_rng(1)
    logs = [math.log10(hpctune.loguniform(1e-4, 1.0).sample(rng, {})) for _ in range(4000)]
    below = sum(v < -2 for v in logs) / len(logs)
    assert 0.45 < below < 0.55


def test_randint_excludes_upper_bound():
    rng = np.random.default_rng(0)
    assert {hpctune.randint(1, 4).sample(rng, {}) for _ in range(300)} == {1, 2, 3}


@pytest.mark.parametrize("raw, message", [
    ({"lr": {"loguniform": [0.0, 1.0]}}, "space.lr.loguniform: low must be > 0"),
    ({"lr": {"loguniform": [-1, 1.0]}}, "space.lr.loguniform: low must be > 0"),
    ({"lr": {"uniform": [2.0, 1.0]}}, "space.lr.uniform: low must be < high (got 2.0 >= 1.0)"),
    ({"lr": {"uniform": [1.0]}}, "space.lr.uniform: expected [low, high], got 1 values"),
    ({"lr": {"uniform": ["a", 1.0]}}, "space.lr.uniform: expected a number, got 'a'"),
    ({"b": {"quniform": [16, 256, 0]}}, "space.b.quniform: q must be > 0"),
    ({"n": {"randint": [4, 4]}}, "space.n.randint: low must be < high (got 4 >= 4; high is excluded)"),
    ({"n": {"randint": [1.5, 4]}}, "space.n.randint: expected an integer, got 1.5"),
    ({"c": {"choice": []}}, "space.c.choice: expected a non-empty list of values"),
    ({"g": {"grid": "abc"}}, "space.g.grid: expected a non-empty list of values"),
    ({"net": {"width": {"loguniform": [0, 1]}}}, "space.net.width.loguniform: low must be > 0"),
    ([1, 2], "space: expected a mapping of hyperparameter names, got list"),
    ({"lr": {"unifrom": [0, 1]}}, "space.lr: 'unifrom' is not a domain (did you mean 'uniform'?); to mean a "
                                  "constant mapping, write {constant: {unifrom: ...}}"),
    ({"net": {"drop": {"beta": [1, 2]}}}, "space.net.drop: 'beta' is not a domain (domains are choice, grid, "
                                          "loguniform, qloguniform, quniform, randint, uniform); to mean a "
                                          "constant mapping, write {constant: {beta: ...}}"),
])
def test_bad_domains_name_the_field(raw, message):
    with pytest.raises(SpecError) as info:
        parse_space(raw)
    assert str(info.value) == message


def test_constants_nested_mappings_and_sample_from():
    space = parse_space({"epochs": 27, "net": {"width": {"choice": [8]}, "act": "relu"},
                         "double": hpctune.sample_from(lambda c: c["net"]["width"] * 2)})
    config = sample_config(space, {}, np.random.default_rng(0))
    assert config == {"epochs": 27, "net": {"width": 8, "act": "relu"}, "double": 16}


def test_space_json_is_stable_for_resume_checks():
    a = space_to_json(parse_space({"lr": {"loguniform": [1e-4, 1.0]}, "n": {"nest": {"grid": [1, 2]}}}))
    b = space_to_json(parse_space({"lr": hpctune.loguniform(1e-4, 1.0), "n": {"nest": hpctune.grid([1, 2])}}))
    assert a == b == {"lr": {"loguniform": [1e-4, 1.0]}, "n/nest": {"grid": [1, 2]}}


def test_a_constant_mapping_is_written_on_purpose_and_passes_through():
    space = parse_space({"opt": {"name": "adam"}, "prior": {"constant": {"beta": [1, 2]}},
                         "odd": {"constant": {"uniform": [0, 1]}}})
    assert space == {"opt": {"name": "adam"}, "prior": {"beta": [1, 2]}, "odd": {"uniform": [0, 1]}}


def test_a_domain_inside_a_choice_or_grid_value_is_refused():
    with pytest.raises(SpecError, match=r"^grid\[0\]: holds a domain \(model: layers: randint\); a grid's values are "
                                        r"constants, a domain inside one would never be sampled$"):
        hpctune.grid([{"model": {"layers": hpctune.randint(1, 4)}}])
    with pytest.raises(SpecError, match=r"^space\.opt\.choice\[2\]: holds a domain \(loguniform\)"):
        parse_space({"opt": {"choice": ["sgd", [1, 2], [{"loguniform": [1e-3, 1]}]]}})
    assert parse_space({"opt": {"choice": ["sgd", {"name": "adam", "betas": [0.9, 0.99]}]}})["opt"].size() == 2
