"""SortedKeys (asha's rungs) and median's two-heap median, checked against plain sorted lists."""
from __future__ import annotations

import json
import math
import random
from bisect import bisect_left, bisect_right

import pytest

from hpctune.schedulers._median import _MedianHeaps
from hpctune.schedulers._sorted import SortedKeys


def _check(keys: SortedKeys, reference: list) -> None:
    assert len(keys) == len(reference)
    assert keys.to_list() == reference
    assert list(keys) == reference
    for i in range(len(reference)):
        assert keys[i] == reference[i]
    assert keys[-1] == reference[-1]


def test_empty():
    keys = SortedKeys()
    assert len(keys) == 0 and not keys
    assert keys.to_list() == []
    assert keys.bisect_left(3) == 0 and keys.bisect_right(3) == 0
    assert 3 not in keys
    with pytest.raises(IndexError):
        keys[0]


def test_insert_rank_and_kth():
    keys = SortedKeys()
    for value in [5, 1, 4, 2, 3]:
        keys.add(value)
    _check(keys, [1, 2, 3, 4, 5])
    assert keys.bisect_left(3) == 2 and keys.bisect_right(3) == 3
    assert keys.bisect_left(0) == 0 and keys.bisect_right(9) == 5
    assert keys.bisect_left(3.5) == 3
    assert 4 in keys and 4.5 not in keys
    assert keys[-5] == 1
    with pytest.raises(IndexError):
        keys[5]
    with pytest.raises(IndexError):
        keys[-6]
    with pytest.raises(TypeError):
        keys[1.0]


def test_duplicates():
    keys = SortedKeys([2, 2, 1], load=2)
    for value in [2, 2, 3, 1, 2]:
        keys.add(value)
    reference = sorted([2, 2, 1, 2, 2, 3, 1, 2])
    _check(keys, reference)
    assert keys.bisect_left(2) == 2 and keys.bisect_right(2) == 7
    assert keys.bisect_left(1) == 0 and keys.bisect_right(1) == 2


def test_tuple_keys_rank_like_asha():
    """(negated score, trial_id) keys; ``(key,)`` counts strictly better scores, as asha's stop variant does."""
    keys = SortedKeys()
    entries = [(-0.5, 3), (-0.9, 1), (-0.5, 0), (math.inf, 7), (-0.1, 2), (-0.5, 9)]
    for entry in entries:
        keys.add(entry)
    reference = sorted(entries)
    _check(keys, reference)
    assert keys.bisect_left((-0.5,)) == 1           # only -0.9 is strictly better
    assert keys.bisect_left((-0.5, 9)) == 3
    assert keys.bisect_left((math.inf,)) == 5


@pytest.mark.parametrize("load", [1, 2, 3, 16, 1000])
def test_many_random_inserts_match_sorted(load):
    rng = random.Random(load)
    keys, reference = SortedKeys(load=load), []
    for step in range(3000):
        value = rng.randrange(500) if step % 3 else rng.random()
        keys.add(value)
        reference.append(value)
        if step % 97 == 0:
            reference.sort()
            _check(keys, reference)
    reference.sort()
    _check(keys, reference)
    for probe in [rng.uniform(-10, 510) for _ in range(300)] + list(range(-1, 501)):
        assert keys.bisect_left(probe) == bisect_left(reference, probe)
        assert keys.bisect_right(probe) == bisect_right(reference, probe)
        assert (probe in keys) == (probe in reference)
    assert max(len(bucket) for bucket in keys._buckets) <= 2 * load


def test_ascending_and_descending_inserts_split_buckets():
    for values in (list(range(5000)), list(range(5000, 0, -1))):
        keys = SortedKeys(load=50)
        for value in values:
            keys.add(value)
        reference = sorted(values)
        _check(keys, reference)
        assert keys.bisect_left(2500) == bisect_left(reference, 2500)


def test_build_from_items_and_equality():
    rng = random.Random(1)
    values = [rng.randrange(100) for _ in range(2500)]
    built = SortedKeys(values, load=40)
    added = SortedKeys(load=7)
    for value in values:
        added.add(value)
    assert built == added
    assert built.to_list() == sorted(values)
    built.add(50)
    assert built != added
    assert repr(SortedKeys([2, 1])) == "SortedKeys([1, 2])"


def test_state_round_trip_through_json():
    """Saved as its ascending list (as asha's state does), reloaded into an equal container."""
    rng = random.Random(2)
    keys = SortedKeys(load=8)
    for i in range(500):
        keys.add((rng.choice([-rng.random(), math.inf]), i))
    saved = json.dumps([[None if k == math.inf else k, t] for k, t in keys])
    loaded = SortedKeys((math.inf if k is None else k, t) for k, t in json.loads(saved))
    assert loaded == keys
    assert loaded.to_list() == keys.to_list()
    loaded.add((-0.5, 1000))
    keys.add((-0.5, 1000))
    assert loaded.bisect_left((-0.5, 1000)) == keys.bisect_left((-0.5, 1000))


def test_load_must_be_positive():
    with pytest.raises(ValueError):
        SortedKeys(load=0)


def _sorted_median(values: list) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def test_median_heaps_match_the_sorted_list_median():
    rng = random.Random(3)
    heaps, values = _MedianHeaps(), []
    for _ in range(2000):
        value = rng.choice([-math.inf, float(rng.randrange(20)), rng.gauss(0, 1)])
        heaps.add(value)
        values.append(value)
        assert len(heaps) == len(values)
        assert heaps.median() == _sorted_median(values)
    state = json.loads(json.dumps(heaps.state(), allow_nan=False))
    again = _MedianHeaps.from_state(*state)
    assert again.state() == heaps.state() and again.median() == heaps.median()
    old_format = _MedianHeaps.from_sorted(sorted(values))
    assert old_format.median() == heaps.median()
    for value in (0.5, -math.inf, 3.0):
        old_format.add(value)
        values.append(value)
        assert old_format.median() == _sorted_median(values)
