"""A small sorted container with logarithmic insert and rank queries (no third-party dependency).

:class:`SortedKeys` keeps its items in a list of sorted buckets of at most
``2 · load`` items each, with the largest item of every bucket and a Fenwick
(binary indexed) tree over the bucket sizes.

Complexity, ``n`` items, ``m ≈ n / load`` buckets, ``load`` a constant (512):

- :meth:`add`: a bisection over the bucket maxima (O(log m)), an ``insort``
  into one bucket (O(log load) comparisons and a memmove of at most
  ``2 · load`` pointers: bounded, independent of ``n``) and an O(log m) tree
  update. When a bucket outgrows ``2 · load`` it is split in two and the tree
  rebuilt in O(m); that happens at most once per ``load`` inserts, so it is
  amortised O(m / load) = O(n / load²), i.e. O(1) below millions of items.
- :meth:`bisect_left`, :meth:`bisect_right` (rank queries) and ``keys[i]``
  (the ``i``-th smallest): O(log m + log load).
- ``len``: O(1); iteration: O(n).

A plain sorted list kept with ``bisect.insort`` does the same comparisons but
shifts O(n) pointers per insert, which dominates at 10⁵ items.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from typing import Any, Iterable, Iterator

__all__ = ["SortedKeys"]


class SortedKeys:
    """Items kept in ascending order (duplicates allowed) with O(log n) insert, rank and index.

    Items must be mutually comparable (``<``); equal items keep no particular order
    among themselves (they are equal). Build one from items in any order.
    """

    __slots__ = ("_load", "_buckets", "_maxes", "_tree", "_len")

    def __init__(self, items: Iterable[Any] = (), load: int = 512):
        if load < 1:
            raise ValueError(f"load must be >= 1, got {load}")
        self._load = load
        self._reset(sorted(items))

    def _reset(self, ordered: list) -> None:
        load = self._load
        self._buckets = [ordered[i:i + load] for i in range(0, len(ordered), load)]
        self._maxes = [bucket[-1] for bucket in self._buckets]
        self._len = len(ordered)
        self._rebuild()

    def _rebuild(self) -> None:
        """The Fenwick tree over the bucket sizes, built in O(m)."""
        tree = [0] + [len(bucket) for bucket in self._buckets]
        size = len(tree)
        for i in range(1, size):
            parent = i + (i & -i)
            if parent < size:
                tree[parent] += tree[i]
        self._tree = tree

    def _before(self, index: int) -> int:
        """Number of items in the buckets before bucket ``index``."""
        tree, total = self._tree, 0
        while index > 0:
            total += tree[index]
            index -= index & -index
        return total

    # -- updates ------------------------------------------------------------------
    def add(self, item: Any) -> None:
        """Insert ``item`` (after any equal items)."""
        buckets, maxes = self._buckets, self._maxes
        self._len += 1
        if not buckets:
            buckets.append([item])
            maxes.append(item)
            self._rebuild()
            return
        index = bisect_right(maxes, item)
        if index == len(buckets):          # larger than everything: the last bucket
            index -= 1
            buckets[index].append(item)
            maxes[index] = item
        else:
            insort(buckets[index], item)
        bucket = buckets[index]
        if len(bucket) > 2 * self._load:   # split: rare, amortised over ``load`` inserts
            half = len(bucket) // 2
            buckets.insert(index + 1, bucket[half:])
            del bucket[half:]
            maxes[index] = bucket[-1]
            maxes.insert(index + 1, buckets[index + 1][-1])
            self._rebuild()
            return
        tree, i = self._tree, index + 1
        while i < len(tree):
            tree[i] += 1
            i += i & -i

    # -- queries ------------------------------------------------------------------
    def __len__(self) -> int:
        return self._len

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[Any]:
        for bucket in self._buckets:
            yield from bucket

    def __contains__(self, item: Any) -> bool:
        index = bisect_left(self._maxes, item)
        if index == len(self._buckets):
            return False
        bucket = self._buckets[index]
        at = bisect_left(bucket, item)
        return at < len(bucket) and not (item < bucket[at]) and not (bucket[at] < item)

    def bisect_left(self, item: Any) -> int:
        """Number of items strictly smaller than ``item`` (the index ``item`` would be inserted at, first)."""
        index = bisect_left(self._maxes, item)
        if index == len(self._buckets):
            return self._len
        return self._before(index) + bisect_left(self._buckets[index], item)

    def bisect_right(self, item: Any) -> int:
        """Number of items smaller than or equal to ``item``."""
        index = bisect_right(self._maxes, item)
        if index == len(self._buckets):
            return self._len
        return self._before(index) + bisect_right(self._buckets[index], item)

    def __getitem__(self, position: int) -> Any:
        """The item at ``position`` in ascending order (negative counts from the end)."""
        if not isinstance(position, int):
            raise TypeError(f"SortedKeys indices must be integers, got {type(position).__name__}")
        if position < 0:
            position += self._len
        if not 0 <= position < self._len:
            raise IndexError("SortedKeys index out of range")
        # Fenwick descent: the last bucket whose preceding count is <= position
        tree, index, remaining = self._tree, 0, position
        step = 1 << (len(tree) - 1).bit_length()
        while step:
            nxt = index + step
            if nxt < len(tree) and tree[nxt] <= remaining:
                index = nxt
                remaining -= tree[nxt]
            step >>= 1
        return self._buckets[index][remaining]

    def to_list(self) -> list:
        """All items, ascending, as a new list."""
        return [item for bucket in self._buckets for item in bucket]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SortedKeys):
            return self._len == other._len and self.to_list() == other.to_list()
        return NotImplemented

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        return f"SortedKeys({self.to_list()!r})"
