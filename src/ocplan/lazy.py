"""Lazy public names of a package (PEP 562), so that importing it stays cheap.

Every ``import ocplan.x.y`` runs ``ocplan/__init__.py`` (and ``ocplan/x/__init__.py``)
first; if those imported the whole engine, a command that needs one corner of it (``ocplan
match`` reads CPUs only) would pay for all of it: about 1 s of a 2-core machine.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from types import ModuleType
from typing import Any

__all__ = ["lazy_module", "lazy_names"]


def lazy_names(package: str, where: Mapping[str, str],
               namespace: dict[str, Any]) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that imports ``where[name]`` on first
    access of ``name`` and caches the value in the package's ``namespace``."""

    def __getattr__(name: str) -> object:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__


def lazy_module(name: str) -> ModuleType:
    """Module ``name``, executed on first attribute access (:class:`importlib.util.
    LazyLoader`); an already imported module is returned as it is."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None, name
    assert spec.loader is not None, name
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does, so ``import a.b; a.b.f`` works too
        setattr(import_module(parent), child, module)
    return module
