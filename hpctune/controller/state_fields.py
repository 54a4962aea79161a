"""Each field of the controller's state says once what becomes of it: saved in a snapshot, reset
for a new allocation, or kept by this process.

A field of a state dataclass (:class:`~hpctune.controller.state.ControllerState`, and
:class:`~hpctune.controller.walltime.IterationTimes` within it) declares that in its metadata:

- ``saved(codec)``: in the snapshot's ``state_dict`` under the field's name, in the JSON form
  ``codec`` writes, and loaded back by ``restore``. ``resets=True``: after the journal is replayed,
  the next allocation starts with the field's fresh value (what it said of the old allocation's
  workers is over). ``required=True``: every snapshot ever written has it (one without it is
  refused, a ``KeyError``); any other field missing from an older snapshot keeps its fresh value.
- ``per_allocation()``: never saved; the next allocation starts with the fresh value.
- ``part_of_state()``: a declared dataclass of its own, whose saved fields join the same
  ``state_dict`` level (in its place) and whose per-allocation fields reset with the rest.
- no metadata: this process's own bookkeeping, neither saved nor reset (the trials, which a
  snapshot keeps in a table of their own; lines and checkpoints waiting to be handed out).

:func:`state_dict`, :func:`load_state_dict` and :func:`reset_for_allocation` read only these
declarations, so adding a field to the state is one line in one place.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Codec", "AS_IS", "AS_LIST", "AS_TUPLE_OR_NONE", "ORDERED_IDS", "ID_SET", "ID_TO_ID", "ID_TO_VALUE",
           "saved", "per_allocation", "part_of_state", "state_dict", "load_state_dict", "reset_for_allocation"]

_KEY = "hpctune_state"  # the metadata key, so that other metadata stays possible


@dataclasses.dataclass(frozen=True)
class Codec:
    """How a saved field's value is written into a snapshot's state (plain JSON) and read back."""

    dump: Callable[[Any], Any]
    load: Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _id_pairs(mapping: Mapping[int, Any]) -> list[list[Any]]:
    return [[key, value] for key, value in sorted(mapping.items())]


AS_IS = Codec(_same, _same)
AS_LIST = Codec(list, list)
AS_TUPLE_OR_NONE = Codec(_same, lambda stored: tuple(stored) if stored else None)
ORDERED_IDS = Codec(list, dict.fromkeys)  # an ordered set (a dict of None values), kept in its order
ID_SET = Codec(sorted, lambda stored: {int(item) for item in stored})
ID_TO_ID = Codec(_id_pairs, lambda stored: {int(key): int(value) for key, value in stored})
ID_TO_VALUE = Codec(_id_pairs, lambda stored: {int(key): value for key, value in stored})


@dataclasses.dataclass(frozen=True)
class _Declared:
    codec: Codec | None = None  # None: not saved
    resets: bool = False
    required: bool = False
    nested: bool = False


def saved(codec: Codec = AS_IS, *, resets: bool = False, required: bool = False) -> dict[str, Any]:
    """Metadata of a field kept in snapshots (see the module docstring)."""
    return {_KEY: _Declared(codec, resets=resets, required=required)}


def per_allocation() -> dict[str, Any]:
    """Metadata of a field that only the running allocation has: never saved, fresh after ``restore``."""
    return {_KEY: _Declared(resets=True)}


def part_of_state() -> dict[str, Any]:
    """Metadata of a field that is a declared state dataclass of its own (its fields declare themselves)."""
    return {_KEY: _Declared(nested=True)}


def _declared(state: Any) -> list[tuple[str, _Declared, dataclasses.Field]]:
    return [(field.name, field.metadata[_KEY], field) for field in dataclasses.fields(state) if _KEY in field.metadata]


def state_dict(state: Any) -> dict[str, Any]:
    """The saved fields of ``state`` (a declared dataclass), in the order they are declared, as plain data."""
    out: dict[str, Any] = {}
    for name, declared, _ in _declared(state):
        if declared.nested:
            out.update(state_dict(getattr(state, name)))
        elif declared.codec is not None:
            out[name] = declared.codec.dump(getattr(state, name))
    return out


def load_state_dict(state: Any, stored: Mapping[str, Any]) -> None:
    """Set the saved fields of ``state`` from ``stored`` (what :func:`state_dict` gave, maybe by an older
    version: a missing field that is not required keeps the value ``state`` has).

    Raises:
        KeyError: a required field is missing.
    """
    for name, declared, _ in _declared(state):
        if declared.nested:
            load_state_dict(getattr(state, name), stored)
        elif declared.codec is not None and (declared.required or name in stored):
            setattr(state, name, declared.codec.load(stored[name]))


def reset_for_allocation(state: Any) -> None:
    """Give every field that resets (``per_allocation()``, ``saved(resets=True)``) its fresh value."""
    for name, declared, field in _declared(state):
        if declared.nested:
            reset_for_allocation(getattr(state, name))
        elif declared.resets:
            setattr(state, name, _fresh(field))


def _fresh(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default
