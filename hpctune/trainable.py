"""Naming a trainable so every worker can find it, and finding it again.

A trainable travels between ranks as a reference string: ``module:attr`` (the
module importable from the working folder) or ``path/to/file.py:attr``. A
function defined in the ``__main__`` script becomes ``/abs/script.py:attr``; the
worker loads that file under another module name, so its
``if __name__ == "__main__":`` block does not run again.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Any

from .errors import SpecError

__all__ = ["trainable_reference", "resolve_trainable", "TrainableImportInterrupted"]

_FILE_MODULE = "__hpctune_main__"


class TrainableImportInterrupted(BaseException):
    """Raised by ``hpctune.run`` when it is called while a worker loads the trainable's file."""


def _reference_of_object(obj: Any) -> str:
    qualname = getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None)
    if not qualname or not module or "<" in qualname:
        raise SpecError("trainable", f"{obj!r} must be a module-level function or class (no lambda, no nested function)")
    if module in ("__main__", _FILE_MODULE):
        main = sys.modules[module]
        path = getattr(main, "__file__", None)
        if not path:
            raise SpecError("trainable", f"{qualname} is defined in an interactive session; put it in a file or module")
        return f"{Path(path).resolve()}:{qualname}"
    return f"{module}:{qualname}"


def trainable_reference(value: Any, base_dir: Path | None = None, check: bool = True,
                        import_paths: list[str] = ()) -> str:
    """The reference string of a trainable given as an object or a string.

    Args:
        value: a function, a ``Trainable`` subclass, or a reference string.
        base_dir: folder that relative file paths are also looked up in (the spec's).
        check: import the trainable now, so that a bad one is bad input (exit 2).
        import_paths: more folders to import it from.

    Raises:
        SpecError: not a valid reference, not importable, or not callable.
    """
    if not isinstance(value, str):
        if not callable(value):
            raise SpecError("trainable", f"expected a function or a Trainable class, got {value!r}")
        return _reference_of_object(value)
    if value.count(":") != 1 or not all(value.split(":")):
        raise SpecError("trainable", f"expected 'module:function' or 'path/file.py:function', got {value!r}")
    target, attr = value.split(":")
    if target.endswith(".py"):
        candidates = [Path(target)] + ([base_dir / target] if base_dir else [])
        found = next((p for p in candidates if p.is_file()), None)
        if found is None:
            raise SpecError("trainable", f"file {target!r} not found")
        value = f"{found.resolve()}:{attr}"
    if check:
        resolve_trainable(value, extra_paths=[*([str(base_dir)] if base_dir else []), *import_paths])
    return value


def _load_file(path: str) -> types.ModuleType:
    module = sys.modules.get(_FILE_MODULE)
    if module is not None and getattr(module, "__file__", None) == path:
        return module
    spec = importlib.util.spec_from_file_location(_FILE_MODULE, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[_FILE_MODULE] = module
    try:
        spec.loader.exec_module(module)
    except TrainableImportInterrupted:
        pass  # the script called hpctune.run() at top level: keep what it defined so far
    return module


def resolve_trainable(reference: str, extra_paths=()) -> Any:
    """The function or class a reference names.

    Raises:
        SpecError: the module cannot be imported, has no such attribute, or it is not callable.
    """
    target, attr = reference.rsplit(":", 1)
    for path in [os.getcwd(), *extra_paths]:
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        if target.endswith(".py"):
            module = _load_file(target)
        else:
            module = importlib.import_module(target)
    except SpecError:
        raise
    except Exception as exc:  # any import-time failure of user code is bad input
        raise SpecError("trainable", f"cannot import {target!r}: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise SpecError("trainable", f"{target!r} has no attribute {attr!r}")
    if not callable(obj):
        raise SpecError("trainable", f"{reference!r} is not callable")
    return obj
