"""The training side (hpctune.session): what ``hpctune.report()`` refuses (a metric that is no
number, a name hpctune reserves) fails the trial in one line, and a checkpoint that cannot be read
fails its segment in one line naming the file."""
from __future__ import annotations

import pytest

import hpctune
from hpctune.enums import SegmentEnd
from hpctune.session import run_segment
from hpctune.store import save_checkpoint
from hpctune.trial import TrialTask

from trainable_fixtures import text_metric


def test_metric_reported_as_text_fails_the_trial_with_a_clear_message(tmp_path):
    analysis = hpctune.run(text_metric, space={}, metric="loss", num_samples=1, storage=str(tmp_path),
                           name="text", backend="local", verbose=0)
    (error,) = analysis.trials.error
    assert analysis.trials.state[0] == "ERROR"
    assert error.rstrip().endswith("TypeError: hpctune.report(): the metric 'loss' must be a number, got '0.4' (str)")
    assert list(analysis.results.loss) == [0.5]


def reports_a_reserved_key(config):
    hpctune.report({"loss": 0.5, config["key"]: 7})


@pytest.mark.parametrize("key", ["trial_id", "training_iteration", "gpus", "config/x"])
def test_a_metric_named_like_a_reserved_column_fails_the_trial_naming_it(tmp_path, key):
    """It overwrote hpctune's own column (trial_id 7 in the results), or was dropped from the trials table
    (config/x): now the trial fails with one line naming the key, and no row is written."""
    analysis = hpctune.run(reports_a_reserved_key, space={"key": key, "x": 0.25}, metric="loss", num_samples=1,
                           storage=str(tmp_path), name="reserved", backend="local", verbose=0)
    (error,) = analysis.trials.error
    assert list(analysis.trials.state) == ["ERROR"] and analysis.num_results == 0
    assert error.rstrip().splitlines()[-1] == (
        f"ValueError: hpctune.report(): {key!r} is a reserved name (hpctune sets trial_id, training_iteration, "
        "time_this_iter_s, time_total_s, timestamp, rank, hostname and gpus in every result, and config/... are the "
        "config's columns); report it under another name")


def test_a_trial_whose_checkpoint_cannot_be_read_fails_in_one_line(tmp_path):
    """On the trial's side (a file damaged while the experiment runs): the segment's error is one
    line naming the file, not h5py's traceback."""
    from trainable_fixtures import slow_counter

    checkpoint = tmp_path / "trials" / "000000" / "checkpoint_000003.h5"
    save_checkpoint(checkpoint, {"iteration": 3})
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[:100])
    task = TrialTask(trial_id=0, trainable="x:y", config={"x": 0.5, "epochs": 5, "sleep": 0.0},
                     experiment_dir=str(tmp_path), trial_dir=str(checkpoint.parent), checkpoint=str(checkpoint),
                     start_iteration=3, time_total_s=1.0, metric="loss")
    how, error = run_segment(slow_counter, task, channel=None)
    assert (how, error) == (SegmentEnd.ERROR, "checkpoint trials/000000/checkpoint_000003.h5 cannot be read "
                                              f"(truncated file: eof = 100, sblock->base_addr = 0, stored_eof = {len(data)})")
    checkpoint.unlink()
    assert run_segment(slow_counter, task, channel=None) == (
        SegmentEnd.ERROR, "checkpoint trials/000000/checkpoint_000003.h5 is missing")
