"""Registries of schedulers and searchers by name, and the options they were built with.

``type: asha`` in YAML looks the class up here; a Python user passes an instance.
Either way the experiment file stores ``{"type": name, **options}`` so that a
resumed experiment rebuilds the same object.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .errors import SpecError


class Configurable:
    """Remembers the keyword options an instance was built with (``self.options``)."""

    name: str = ""

    def __new__(cls, *args: Any, **kwargs: Any):
        if args:
            raise TypeError(f"{cls.__name__} takes keyword options only")
        obj = super().__new__(cls)
        obj.options = dict(kwargs)
        return obj

    def describe(self) -> dict:
        """``{"type": name, **options}``: enough to build the same object again."""
        return {"type": self.name, **self.options}


class Registry:
    """Name -> class, for one kind of plug-in (``scheduler`` or ``searcher``)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Class decorator: register ``cls`` under ``cls.name``."""
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def build(self, raw: Any, base: type) -> tuple[Any, dict]:
        """An instance and its JSON description from a name, a mapping or an instance.

        Raises:
            SpecError: unknown type or option, naming ``<kind>.type`` or ``<kind>.<option>``.
        """
        if isinstance(raw, base):
            return raw, raw.describe()
        if isinstance(raw, str):
            raw = {"type": raw}
        if not isinstance(raw, Mapping):
            raise SpecError(self.kind, f"expected a name or a mapping with 'type', got {raw!r}")
        options = dict(raw)
        name = options.pop("type", None)
        if name is None:
            raise SpecError(f"{self.kind}.type", "missing required field")
        cls = self._classes.get(name)
        if cls is None:
            raise SpecError(f"{self.kind}.type", f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        params = inspect.signature(cls.__init__).parameters
        known = [p for p in params if p != "self" and params[p].kind == inspect.Parameter.KEYWORD_ONLY]
        for option in options:
            if option not in known:
                listing = ", ".join(known) if known else "none"
                raise SpecError(f"{self.kind}.{option}", f"unknown option of {self.kind} {name!r} (known: {listing})")
        try:
            instance = cls(**options)
        except SpecError as exc:
            raise SpecError(f"{self.kind}.{exc.where}", exc.what) from None
        return instance, instance.describe()
