"""Registries of plug-ins by name (schedulers, searchers, backends), and the JSON
descriptions schedulers and searchers are built from.

``type: asha`` in YAML looks the class up here; a Python user may pass an
instance instead. Either way the spec holds, and the experiment file stores,
a description ``{"type": name, **options}`` (:func:`describe`), from which
:meth:`Registry.build` makes the object, for a new experiment and a resumed one alike.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from .errors import SpecError

__all__ = ["Configurable", "Registry", "describe", "registry_of"]


_REGISTRIES: dict[str, Registry] = {}
"""kind -> its registry (each :class:`Registry` adds itself)."""


def registry_of(kind: str) -> Registry | None:
    """The registry of plug-ins of ``kind`` (``"scheduler"``, ``"searcher"``, ``"policy"``), if one was made."""
    return _REGISTRIES.get(kind)


class Configurable:
    """Remembers the keyword options an instance was built with (``self.options``).

    ``kind`` names the registry of the subclass (``"scheduler"``, ``"searcher"``), ``name`` its entry there.
    A subclass that sets a ``name`` of its own (a user's scheduler in a script, say) is registered
    under it when it is defined; the base class of a kind is the one that sets ``kind``.
    """

    kind: str = ""
    name: str = ""

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "kind" not in cls.__dict__ and cls.kind in _REGISTRIES:
            _REGISTRIES[cls.kind].register(cls)

    def __new__(cls, *args: Any, **kwargs: Any):
        if args:
            raise TypeError(f"{cls.__name__} takes keyword options only")
        obj = super().__new__(cls)
        obj.options = dict(kwargs)
        return obj

    def describe(self) -> dict:
        """``{"type": name, **options}``: enough to build the same object again."""
        return {"type": self.name, **self.options}


def describe(kind: str, raw: Any) -> dict:
    """The description ``{"type": name, **options}`` of a ``kind`` plug-in given as a name, a
    mapping with ``type`` or an instance. Whether the type and options exist is not checked here.

    Raises:
        SpecError: ``raw`` is none of these, naming ``<kind>`` or ``<kind>.type``.
    """
    if isinstance(raw, Configurable) and raw.kind == kind:
        registry = _REGISTRIES.get(kind)
        if registry is not None and registry.get(raw.name) is not type(raw):
            raise SpecError(kind, f"{type(raw).__name__} needs a name of its own (a class attribute 'name', "
                                  f"not {raw.name!r}) to be built again on resume")
        return raw.describe()
    if isinstance(raw, str):
        return {"type": raw}
    if not isinstance(raw, Mapping):
        raise SpecError(kind, f"expected a name or a mapping with 'type', got {raw!r}")
    options = dict(raw)
    name = options.pop("type", None)
    if name is None:
        raise SpecError(f"{kind}.type", "missing required field")
    return {"type": name, **options}


class Registry:
    """Name -> class, for one kind of plug-in (``scheduler``, ``searcher``, ``backend``)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._classes: dict[str, type] = {}
        _REGISTRIES[kind] = self

    def register(self, cls: type) -> type:
        """Class decorator: register ``cls`` under ``cls.name``."""
        self._classes[cls.name] = cls
        return cls

    def names(self) -> list[str]:
        return sorted(self._classes)

    def with_defaults(self, description: Mapping) -> dict:
        """``description`` with every keyword option its class leaves out at its default value, so that
        two descriptions of the same object compare equal (``{"type": "asha"}`` and one that spells
        out ``max_t: 100``). An unknown type is returned as it is."""
        cls = self.get(description.get("type"))
        if cls is None:
            return dict(description)
        defaults = {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
                    if p.kind == inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty}
        return {**{"type": description["type"]}, **defaults, **description}

    def get(self, name: str) -> type | None:
        """The class registered as ``name``, or None."""
        return self._classes.get(name)

    def build(self, raw: Any) -> Any:
        """A new instance from a description (or from anything :func:`describe` takes).

        Raises:
            SpecError: unknown type or option, or a bad option value, naming ``<kind>.type`` or
                ``<kind>.<option>``.
        """
        options = describe(self.kind, raw)
        name = options.pop("type")
        cls = self.get(name)
        if cls is None:
            raise SpecError(f"{self.kind}.type", f"unknown {self.kind} {name!r} (known: {', '.join(self.names())})")
        params = inspect.signature(cls.__init__).parameters
        known = [p for p in params if p != "self" and params[p].kind == inspect.Parameter.KEYWORD_ONLY]
        open_ended = any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values())  # checks its own
        for option in () if open_ended else options:
            if option not in known:
                listing = ", ".join(known) if known else "none"
                raise SpecError(f"{self.kind}.{option}", f"unknown option of {self.kind} {name!r} (known: {listing})")
        try:
            return cls(**options)
        except SpecError as exc:
            raise SpecError(f"{self.kind}.{exc.where}", exc.what) from None
