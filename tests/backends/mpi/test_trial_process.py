"""The process a trial runs in (hpctune.backends.mpi.trial_process): a control message sent while
the trial trains reaches it without waiting for its next result to be answered: a function
trainable sees the new config and checkpoints when asked, a class trainable takes the new config
before its next step."""
from __future__ import annotations

import pytest

from hpctune.backends.mpi.trial_process import TrialProcess
from hpctune.enums import Control, Decision
from hpctune.trial import TrialTask

from conftest import REPO


def _task(tmp_path, trainable: str, config: dict, trial_id: int = 0) -> TrialTask:
    return TrialTask(trial_id=trial_id, trainable=f"trainable_fixtures:{trainable}", config=config,
                     experiment_dir=str(tmp_path), trial_dir=str(tmp_path / "trials" / f"{trial_id:06d}"),
                     checkpoint=None, start_iteration=0, time_total_s=0.0, metric="loss",
                     python_path=[str(REPO / "tests")])


def _run(process: TrialProcess, task: TrialTask, controls_after: dict[int, tuple]) -> list[tuple[dict, str | None]]:
    """Run ``task`` in the trial process; after the result of iteration i, send ``controls_after[i]``
    (before the decision, as a coordinator may). Returns every (row, checkpoint) reported."""
    seen = []

    def on_result(row, checkpoint):
        seen.append((row, checkpoint))
        for control, payload in controls_after.get(row["training_iteration"], ()):
            process.send_control(control, payload)
        return Decision.CONTINUE

    process.run(task, on_result)
    return seen


def test_a_function_trial_sees_a_new_config_and_checkpoints_when_asked(tmp_path):
    process = TrialProcess(rank=1)
    try:
        seen = _run(process, _task(tmp_path, "checkpoints_on_request", {"lr": 0.1, "epochs": 4}),
                    {1: [(Control.CONFIG, {"lr": 0.5, "epochs": 4})], 2: [(Control.CHECKPOINT, None)]})
    finally:
        process.close()
    assert [row["lr"] for row, _ in seen] == [0.1, 0.5, 0.5, 0.5]
    assert [row["asked"] for row, _ in seen] == [0, 0, 1, 0]      # asked once, at the report after
    assert [checkpoint for _, checkpoint in seen] == [None, None, "trials/000000/checkpoint_000003.h5", None]


@pytest.mark.parametrize("in_place", [True, False])
def test_a_class_trial_takes_a_new_config_before_its_next_step(tmp_path, in_place):
    """reset_config True: the same object goes on; False: built again with the new config from
    the checkpoint its last step saved, so its own count continues."""
    process = TrialProcess(rank=1)
    config = {"lr": 0.1, "epochs": 4, "in_place": in_place}
    try:
        seen = _run(process, _task(tmp_path, "Reconfigurable", config),
                    {2: [(Control.CONFIG, {**config, "lr": 0.7})]})
    finally:
        process.close()
    rows = [row for row, _ in seen]
    assert [row["lr"] for row in rows] == [0.1, 0.1, 0.7, 0.7]
    assert [row["loss"] * row["training_iteration"] for row in rows] == pytest.approx([0.1, 0.1, 0.7, 0.7])
    assert [row["builds"] - rows[0]["builds"] for row in rows] == ([0, 0, 0, 0] if in_place else [0, 0, 1, 1])
