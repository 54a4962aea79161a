"""What hpctune reads from Slurm about its job (no Slurm needed)."""
from __future__ import annotations

import time

import pytest

from hpctune.slurm.job import SlurmJob, _duration, parse_show_job, parse_time_limit, stale_mpich_segments, stop_margin

SHOWN = ("JobId=1234 JobName=hpctune UserId=me(1000) JobState=RUNNING Reason=None Requeue=1 Restarts=2 "
         "BatchFlag=1 RunTime=00:00:10 TimeLimit=01:00:00 StartTime=2026-11-24T12:00:00 "
         "EndTime=2026-11-24T13:00:00 Command=/home/me/slurm/cpu.sbatch exp.yaml")


def test_the_fields_of_scontrol_show_job():
    fields = parse_show_job(SHOWN)
    assert (fields["JobId"], fields["Restarts"], fields["TimeLimit"], fields["EndTime"]) == (
        "1234", "2", "01:00:00", "2026-11-24T13:00:00")


@pytest.mark.parametrize("text, seconds", [("5", 300.0), ("05:30", 330.0), ("01:00:00", 3600.0),
                                           ("2-00:00:00", 172800.0), ("1-02:03:04", 93784.0),
                                           ("1-12", 129600.0), ("1-12:30", 131400.0),
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


@pytest.mark.parametrize("text", ["", "4h", "1:2:3:4", "-1", "1-", "01:00:00 ", "1.5"])
def test_what_is_not_a_slurm_time_limit(text):
    if text.strip() != text:  # surrounding blanks are fine (sbatch takes them)
        assert parse_time_limit(text) == 3600.0
        return
    with pytest.raises(ValueError):
        parse_time_limit(text)


def test_stale_mpich_segments_are_those_named_after_the_job_s_steps(tmp_path):
    """MPICH names its start-up shared memory mpich_shm_<FNV-1a of '<job>.<step>' in hex>_<node>."""
    names = ["mpich_shm_59de1db0_0", "mpich_vci_59de1db0_0", "mpich_shm_503e7bcd_2",  # job 63 step 0, job 65 step 1
             "mpich_shm_b6ba42e1_0",  # job 64: another job's
             "mpich_shm_59de1db0", "ucx_shm_posix_59de1db0", "other"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert sorted(path.name for path in stale_mpich_segments("63", str(tmp_path))) == [
        "mpich_shm_59de1db0_0", "mpich_vci_59de1db0_0"]
    assert [path.name for path in stale_mpich_segments("65", str(tmp_path))] == ["mpich_shm_503e7bcd_2"]
