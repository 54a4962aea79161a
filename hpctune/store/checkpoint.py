"""Checkpoints as HDF5 files: a nested dict of arrays and scalars, no pickle by default.

A checkpoint is written to a temporary name in the same folder and moved into
place with ``os.replace``, so a reader (or a resumed trial) never sees half of one.

Supported values: ``dict`` (string keys) -> group; numpy arrays, numbers and
homogeneous numeric lists -> datasets; ``str``/``bytes``/``bool``/``None`` and
other lists -> stored with a type tag. Anything else raises ``TypeError``.
``allow_pickle`` is for hpctune's own use: no public call (``hpctune.report``,
``Trainable.save_checkpoint``) passes it, so the error tells users to convert.
"""
from __future__ import annotations

import errno
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "unreadable_reason"]

_TAG = "hpctune_type"


def _write(group: h5py.Group, key: str, value: Any, allow_pickle: bool, where: str) -> None:
    if isinstance(value, dict):
        sub = group.create_group(key)
        sub.attrs[_TAG] = "dict"
        for k, v in value.items():
            if not isinstance(k, str) or "/" in k or not k:
                raise TypeError(f"checkpoint key {where}/{k!r}: keys must be non-empty strings without '/'")
            _write(sub, k, v, allow_pickle, f"{where}/{k}")
        return
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        group.create_dataset(key, data=value)
        group[key].attrs[_TAG] = "ndarray"
        return
    if isinstance(value, (bool, np.bool_)):
        group.create_dataset(key, data=bool(value)).attrs[_TAG] = "bool"
        return
    if isinstance(value, (int, float, complex, np.number)):
        group.create_dataset(key, data=value).attrs[_TAG] = type(value).__name__ if type(value) in (int, float, complex) else "number"
        return
    if value is None or isinstance(value, (str, bytes)):
        tag = "none" if value is None else type(value).__name__
        data = "" if value is None else value
        group.create_dataset(key, data=np.void(data) if isinstance(data, bytes) else data).attrs[_TAG] = tag
        return
    if isinstance(value, (list, tuple)):
        try:
            text = json.dumps(value, allow_nan=True)
        except TypeError:
            text = None
        if text is not None:
            group.create_dataset(key, data=text).attrs[_TAG] = "json_" + type(value).__name__
            return
    if allow_pickle:
        group.create_dataset(key, data=np.void(pickle.dumps(value))).attrs[_TAG] = "pickle"
        return
    # no public call passes allow_pickle: say what the user can change, not how to get pickle
    if isinstance(value, (list, tuple)):
        raise TypeError(f"checkpoint value {where} is a {type(value).__name__} holding a value that is not a "
                        "number, string, list or dict: convert its items, or make it a numpy array or a dict")
    raise TypeError(f"checkpoint value {where} of type {type(value).__name__} is not supported: "
                    "convert it to numpy arrays, numbers, strings, lists or dicts")


def _read(node: h5py.Group | h5py.Dataset, allow_pickle: bool) -> Any:
    tag = node.attrs.get(_TAG, "dict" if isinstance(node, h5py.Group) else "ndarray")
    if tag == "dict":
        return {k: _read(node[k], allow_pickle) for k in node}
    value = node[()]
    if tag == "ndarray":
        return value
    if tag == "bool":
        return bool(value)
    if tag in ("int", "float", "complex"):
        return {"int": int, "float": float, "complex": complex}[tag](value)
    if tag == "number":
        return value
    if tag == "none":
        return None
    if tag == "str":
        return value.decode() if isinstance(value, bytes) else str(value)
    if tag == "bytes":
        return value.tobytes()
    if tag.startswith("json_"):
        text = value.decode() if isinstance(value, bytes) else value
        data = json.loads(text)
        return tuple(data) if tag == "json_tuple" else data
    if tag == "pickle":
        if not allow_pickle:
            raise ValueError("checkpoint holds a pickled value; load it with allow_pickle=True if you trust it")
        return pickle.loads(value.tobytes())
    raise ValueError(f"unknown checkpoint value type {tag!r}")


_ROOM_MARGIN = 1 << 20


def _size_of(value: Any) -> int:
    """About how many bytes ``value`` takes in a checkpoint file."""
    if isinstance(value, dict):
        return sum(64 + len(str(k)) + _size_of(v) for k, v in value.items())
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (str, bytes)):
        return len(value) * (4 if isinstance(value, str) else 1)
    if isinstance(value, (list, tuple)):
        return 16 + sum(_size_of(v) for v in value)
    return 16


def _check_room(folder: Path, size: int) -> None:
    """Refuse a checkpoint that would not fit: HDF5 can crash the process (rather than fail) when
    variable-length data meets a full disk, and a clean ENOSPC lets the trial be paused instead."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    if free < size + size // 16 + _ROOM_MARGIN:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} ({free} bytes free, the checkpoint needs "
                                    f"about {size})", str(folder))


def save_checkpoint(path: str | os.PathLike, state: dict, allow_pickle: bool = False) -> str:
    """Write ``state`` to ``path`` atomically (temporary name, then ``os.replace``).

    Args:
        path: the file to write.
        state: the checkpoint, a dict (see the module docstring for the values it may hold).
        allow_pickle: pickle values of other types; for hpctune's own use only, as no
            public call passes it through.

    Returns:
        The path written, as a string.

    Raises:
        TypeError: ``state`` is not a dict or holds a value of another type (and
            ``allow_pickle`` is false); the message names the value.
        OSError: it cannot be written; ENOSPC also when it would not fit, found before writing.
    """
    if not isinstance(state, dict):
        raise TypeError(f"a checkpoint must be a dict, got {type(state).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_room(path.parent, _size_of(state))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["hpctune_checkpoint"] = 1
            for key, value in state.items():
                if not isinstance(key, str) or "/" in key or not key:
                    raise TypeError(f"checkpoint key {key!r}: keys must be non-empty strings without '/'")
                _write(f, key, value, allow_pickle, key)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return str(path)


def unreadable_reason(exc: BaseException) -> str:
    """Why h5py could not read a file, in a few words: what HDF5 puts in parentheses
    (``truncated file: eof = 96, ...``, ``file signature not found``), else the message."""
    text = str(exc).strip()
    inner = re.search(r"\((.+)\)$", text)
    return inner.group(1) if inner else (text or type(exc).__name__)


def load_checkpoint(path: str | os.PathLike, allow_pickle: bool = False) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    with h5py.File(path, "r") as f:
        return {k: _read(f[k], allow_pickle) for k in f}
