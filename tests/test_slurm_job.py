"""What hpctune reads from Slurm about its job (no Slurm needed)."""
from __future__ import annotations

import time

import pytest

from hpctune.slurm import SlurmJob, _duration, parse_show_job, stop_margin

SHOWN = ("JobId=1234 JobName=hpctune UserId=me(1000) JobState=RUNNING Reason=None Requeue=1 Restarts=2 "
         "BatchFlag=1 RunTime=00:00:10 TimeLimit=01:00:00 StartTime=2026-11-24T12:00:00 "
         "EndTime=2026-11-24T13:00:00 Command=/home/me/slurm/cpu.sbatch exp.yaml")


def test_the_fields_of_scontrol_show_job():
    fields = parse_show_job(SHOWN)
    assert (fields["JobId"], fields["Restarts"], fields["TimeLimit"], fields["EndTime"]) == (
        "1234", "2", "01:00:00", "2026-11-24T13:00:00")


@pytest.mark.parametrize("text, seconds", [("5", 300.0), ("05:30", 330.0), ("01:00:00", 3600.0),
                                           ("2-00:00:00", 172800.0), ("1-02:03:04", 93784.0),
                                           ("UNLIMITED", None), ("Partition_Limit", None), (None, None)])
def test_slurm_time_limits_in_seconds(text, seconds):
    assert _duration(text) == seconds


@pytest.mark.parametrize("limit, asked, margin", [(3600.0, None, 120.0), (60.0, None, 15.0), (None, None, 120.0),
                                                  (3600.0, 300.0, 300.0)])
def test_how_long_before_the_end_trials_are_paused(limit, asked, margin):
    assert stop_margin(limit, asked) == margin


def test_outside_slurm_there_is_no_job():
    assert SlurmJob.from_environment({}) is None


def test_seconds_left_come_from_the_end_slurm_gave():
    job = SlurmJob("1234", end_time=time.time() + 600, time_limit_s=3600.0)
    assert 599 < job.seconds_left() <= 600
    assert SlurmJob("1234").seconds_left() is None
