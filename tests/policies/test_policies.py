"""Live hyperparameter policies: the built-in ones' rules, their options, and on real MPI ranks a
running trial seeing each change at its next step (function and class API), logged in the lineage
and carried by every result row (``config/<name>``)."""
from __future__ import annotations

import json

import pytest

import hpctune
from hpctune.policies import POLICIES, GrowBatch, PlateauLR, build_policy


def _feed(policy, losses, config, key="loss", extra=None):
    """Each result through the policy, the config following its changes; the value of the key before each."""
    policy.setup("loss", "min")
    seen = []
    for i, loss in enumerate(losses):
        seen.append(config[policy.keys[0]])
        result = {key: loss, "training_iteration": i + 1, **((extra or [{}] * len(losses))[i])}
        changed = policy.on_result(0, result, config)
        config = changed or config
    return seen, config


def test_plateau_lr_halves_after_patience_results_without_improvement():
    losses = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.85, 0.9, 0.9]
    seen, _ = _feed(PlateauLR(patience=2, factor=0.5), losses, {"lr": 0.1})
    assert seen == [0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025]


def test_plateau_lr_waits_its_cooldown_and_stops_at_min_value():
    seen, config = _feed(PlateauLR(patience=1, factor=0.1, cooldown=1, min_value=0.004), [1.0] * 8, {"lr": 0.5})
    assert seen == pytest.approx([0.5, 0.5, 0.05, 0.05, 0.005, 0.005, 0.004, 0.004])
    assert config == {"lr": 0.004}


def test_grow_batch_doubles_while_the_noise_scale_is_above_the_batch():
    noise = [10, 100, 100, 100, 5000, 5000, float("nan")]
    seen, config = _feed(GrowBatch(max_value=256), [1.0] * 7, {"batch": 32, "lr": 0.1},
                         extra=[{"grad_noise_scale": n} for n in noise])
    assert seen == [32, 32, 64, 128, 128, 256, 256] and config == {"batch": 256, "lr": 0.1}


def test_a_policy_s_state_round_trips_through_json():
    policy = PlateauLR(patience=3)
    policy.setup("loss", "min")
    for loss in (1.0, 0.9, 0.95):
        policy.on_result(4, {"loss": loss}, {"lr": 0.1})
    fresh = build_policy({"type": "plateau_lr", "patience": 3})
    fresh.load_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert fresh.state_dict() == policy.state_dict()


@pytest.mark.parametrize("policy, message", [
    ({"type": "plateau_lr", "key": "lrr"}, "policy.key: 'lrr' is not a hyperparameter of the space (it has: lr, "
                                           "epochs, fall)"),
    ({"type": "plateau_lr", "factor": 1.5}, "policy.factor: must be in (0, 1), got 1.5"),
    ({"type": "grow_batch", "factor": 1}, "policy.factor: must be >= 2, got 1"),
    ({"type": "slower"}, "policy.type: unknown policy 'slower' (known: grow_batch, plateau_lr, schedule)"),
])
def test_a_bad_policy_is_refused_before_anything_is_written(tmp_path, run_cli, policy, message):
    spec = tmp_path / "p.yaml"
    spec.write_text(json.dumps({"name": "p", "trainable": "trainable_fixtures:plateau", "metric": "loss",
                                "space": {"lr": 0.1, "epochs": 3, "fall": 1}, "policy": policy,
                                "storage": str(tmp_path / "runs")}))
    done = run_cli("run", str(spec), "--workers", "2")
    assert done.returncode == 2 and done.stderr.splitlines() == [f"hpctune: error: {message}"]
    assert not (tmp_path / "runs").exists()


SPACE_OF_KINDS = {"lr": {"loguniform": [0.001, 0.1]}, "batch": {"quniform": [32, 256, 32]},
                  "width": {"quniform": [0, 256, 32]}, "opt": {"choice": ["sgd", "adam"]},
                  "shift": {"uniform": [-1, 1]}, "layers": {"randint": [1, 4]}, "sizes": {"grid": [16, 64]},
                  "momentum": {"choice": [0.9, 0.99]}, "start": 1024, "decay": 0.01, "epochs": 3, "fall": 1}


GROW_NEEDS = ("not a batch size: grow_batch needs integers >= 1 (randint, quniform or qloguniform with integer "
              "bounds and step, a choice or grid of integers, or an integer)")
PLATEAU_NEEDS = ("plateau_lr multiplies it by {}, so it needs numbers >= 0, not integers only (uniform, loguniform, "
                 "a choice of numbers, or a number such as 0.1)")


@pytest.mark.parametrize("policy, message", [
    ({"type": "grow_batch", "key": "lr"}, f"'lr' is loguniform [0.001, 0.1], {GROW_NEEDS}"),
    ({"type": "grow_batch", "key": "opt"}, f"'opt' is choice ['sgd', 'adam'], {GROW_NEEDS}"),
    ({"type": "grow_batch", "key": "width"}, f"'width' is quniform [0, 256, 32], {GROW_NEEDS}"),  # 0 can be drawn
    ({"type": "plateau_lr", "key": "batch"}, "'batch' is quniform [32, 256, 32]: " + PLATEAU_NEEDS.format(0.5)),
    ({"type": "plateau_lr", "key": "opt", "factor": 0.1},
     "'opt' is choice ['sgd', 'adam']: " + PLATEAU_NEEDS.format(0.1)),
    ({"type": "plateau_lr", "key": "shift"}, "'shift' is uniform [-1, 1]: " + PLATEAU_NEEDS.format(0.5)),
])
def test_a_policy_key_whose_domain_it_cannot_change_is_refused_before_anything_is_written(tmp_path, run_cli, policy,
                                                                                         message):
    """grow_batch on a learning rate (loguniform) set lr to int(2 * lr) == 0 at its first change."""
    spec = tmp_path / "p.yaml"
    spec.write_text(json.dumps({"name": "p", "trainable": "trainable_fixtures:plateau", "metric": "loss",
                                "space": SPACE_OF_KINDS, "policy": policy, "storage": str(tmp_path / "runs")}))
    done = run_cli("run", str(spec), "--workers", "2")
    assert done.returncode == 2 and done.stderr.splitlines() == [f"hpctune: error: policy.key: {message}"]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("policy, key", [("grow_batch", key) for key in ("batch", "layers", "sizes", "start")]
                         + [("plateau_lr", key) for key in ("lr", "momentum", "decay")])
def test_a_policy_key_with_a_domain_it_can_change_is_accepted(policy, key):
    from hpctune.controller.core import build_policy_of
    from hpctune.spec import spec_from_dict

    spec = spec_from_dict({"name": "p", "trainable": "nowhere:train", "metric": "loss", "space": SPACE_OF_KINDS,
                           "policy": {"type": policy, "key": key}}, check_trainable=False)
    assert build_policy_of(spec).keys == (key,)


def test_every_policy_is_registered():
    assert POLICIES.names() == ["grow_batch", "plateau_lr", "schedule"]


def _run(tmp_path, run_cli, trainable: str, space: dict, policy: dict) -> hpctune.Analysis:
    spec = tmp_path / "live.yaml"
    spec.write_text(json.dumps({"name": "live", "trainable": trainable, "metric": "loss", "num_samples": 2,
                                "space": space, "policy": policy, "storage": str(tmp_path / "runs")}))
    done = run_cli("run", str(spec), "--workers", "2")
    assert done.returncode == 0, done.stderr
    return hpctune.Analysis(tmp_path / "runs" / "live")


@pytest.mark.parametrize("trainable", ["plateau", "plateau_plain"])  # get_config() each step, or config["lr"]
def test_function_trials_see_the_policy_s_learning_rate_at_their_next_step(tmp_path, run_cli, trainable):
    analysis = _run(tmp_path, run_cli, f"trainable_fixtures:{trainable}", {"lr": 0.1, "epochs": 10, "fall": 3},
                    {"type": "plateau_lr", "patience": 2, "factor": 0.5})
    for trial_id, rows in analysis.results.groupby("trial_id"):
        rows = rows.sort_values("training_iteration")
        assert list(rows["lr_seen"]) == list(rows["config/lr"])  # each row: the value it trained with
        expected, _ = _feed(PlateauLR(patience=2, factor=0.5), list(rows["loss"]), {"lr": 0.1})
        assert list(rows["config/lr"]) == expected == [0.1] * 5 + [0.05] * 2 + [0.025] * 2 + [0.0125]
        changes = analysis.lineage[(analysis.lineage.trial_id == trial_id) & (analysis.lineage.event == "config")]
        assert list(changes.training_iteration) == [5, 7, 9]  # after these results, from the next one on
        assert [json.loads(c)["lr"] for c in changes.config_json] == [0.05, 0.025, 0.0125]


@pytest.mark.parametrize("in_place", [True, False])
def test_class_trials_see_the_policy_s_change_at_their_next_step(tmp_path, run_cli, in_place):
    """reset_config takes it in place, or the trainable is built again from its last checkpoint."""
    analysis = _run(tmp_path, run_cli, "trainable_fixtures:Reconfigurable",
                    {"lr": 0.8, "epochs": 6, "in_place": in_place},
                    {"type": "plateau_lr", "patience": 2, "factor": 0.5, "min_delta": 10.0})
    for _, rows in analysis.results.groupby("trial_id"):
        rows = rows.sort_values("training_iteration")
        # changed after results 3 and 5 (two results without improvement), seen from the next step on
        assert list(rows["lr"]) == list(rows["config/lr"]) == [0.8, 0.8, 0.8, 0.4, 0.4, 0.2]
        assert list(rows.training_iteration) == [1, 2, 3, 4, 5, 6]
        builds = list(rows["builds"].diff().fillna(0))
        assert builds == ([0.0] * 6 if in_place else [0.0, 0.0, 0.0, 1.0, 0.0, 1.0])  # else built again


def test_a_schedule_gives_each_stretch_its_config_from_the_iteration_after_its_start():
    from hpctune.policies import Schedule

    schedule = Schedule(stretches=[[0, {"lr": 0.1, "opt": {"m": 0.9}}], [3, {"lr": 0.05, "opt": {"m": 0.9}}],
                                   [5, {"lr": 0.05, "opt": {"m": 0.5}}]])
    assert schedule.keys == ("lr", "opt/m")  # what changes: the result rows carry it
    seen, _ = _feed(schedule, [1.0] * 7, {"lr": 0.1, "opt": {"m": 0.9}})
    assert seen == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05]
    assert [schedule.config_after(i)["opt"]["m"] for i in range(7)] == [0.9] * 5 + [0.5] * 2


@pytest.mark.parametrize("stretches, message", [
    ([[1, {"lr": 0.1}]], "stretches: from_iteration must start at 0 and increase, got [1]"),
    ([[0, {"lr": 0.1}], [0, {"lr": 0.2}]], "stretches: from_iteration must start at 0 and increase, got [0, 0]"),
    ([[0, 0.1]], "stretches: expected a list of [from_iteration, config] pairs"),
])
def test_a_bad_schedule_is_refused(stretches, message):
    from hpctune.errors import SpecError

    with pytest.raises(SpecError) as refused:
        build_policy({"type": "schedule", "stretches": stretches})
    assert str(refused.value) == f"policy.{message}"
