"""Reading a spec file: UTF-8 text, YAML as ``yaml.safe_load`` reads it, but no key twice.

Every problem is a :class:`SpecError` whose ``where`` is ``<file>`` or
``<file>:<line>`` (lines count from 1), so the CLI prints it as one line.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

__all__ = ["read_spec_file"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _DuplicateKey(Exception):
    def __init__(self, key: Any, line: int, first_line: int):
        super().__init__(key, line, first_line)
        self.key, self.line, self.first_line = key, line, first_line


class _UniqueKeyLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key given twice in one mapping, at any depth.

    PyYAML keeps the last value of a repeated key without a word, so a second
    ``lr:`` deep in a long spec would silently replace the first.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            # keys brought in by a merge (<<: *base) may be overridden: that is what merging is for
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, line, seen[key])
            except TypeError:  # an unhashable key: the base class refuses it with its own error
                break
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_spec_file(path: str | os.PathLike) -> Any:
    """The parsed YAML of a spec file.

    Raises:
        SpecError: the file cannot be read, is not UTF-8, is not valid YAML or
            repeats a key; ``where`` names the file and, where known, the line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(str(path), f"cannot read spec file ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        what = f"not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start})"
        raise SpecError(f"{path}:{line}", what) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except _DuplicateKey as exc:
        raise SpecError(f"{path}:{exc.line}", f"duplicate key {exc.key!r} (first at line {exc.first_line})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(where, f"not valid YAML ({problem})") from None
