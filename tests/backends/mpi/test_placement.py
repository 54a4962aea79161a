"""The backend's rank pool: which ranks a launch gets (the controller only counts them)."""
from __future__ import annotations

import pytest

from hpctune.backends.mpi.placement import RankPool


def _pool(hosts: dict[int, str]) -> RankPool:
    pool = RankPool()
    for rank, host in hosts.items():
        pool.join(rank, host)
    return pool


def test_single_ranks_go_to_the_longest_idle_first():
    pool = _pool({1: "a", 2: "a", 3: "b"})
    assert [pool.place(trial, 1) for trial in (10, 11)] == [[1], [2]]
    assert pool.release(10) == [1]
    assert pool.place(12, 1) == [3]   # 3 was idle before 1 came back
    assert pool.place(13, 1) == [1]
    assert pool.running == {2: 11, 3: 12, 1: 13}
    assert pool.num_idle == 0


def test_a_group_takes_one_node_when_one_node_has_room():
    pool = _pool({1: "a", 2: "b", 3: "a", 4: "b", 5: "b"})
    assert pool.place(7, 3) == [2, 4, 5]       # node a has only 2 idle
    assert pool.ranks_of(7) == [2, 4, 5]
    assert pool.place(8, 2) == [1, 3]
    assert pool.release(7) == [2, 4, 5]
    assert pool.running == {1: 8, 3: 8}
    assert pool.ranks_of(7) == []


def test_a_group_spans_nodes_when_no_node_has_room():
    pool = _pool({1: "a", 2: "b", 3: "c"})
    assert pool.place(1, 2) == [1, 2]


def test_asking_for_more_ranks_than_are_idle_is_a_bug_said_plainly():
    pool = _pool({1: "a"})
    with pytest.raises(RuntimeError, match="trial 5 needs 2 ranks but only 1 are idle"):
        pool.place(5, 2)
    assert pool.num_idle == 1 and pool.running == {}
