"""The sourced hardware and model catalog: schemas, YAML data and system files.

Submodules are imported on first use of a name (PEP 562): a command that only reads CPU
entries must not pay for the topology builders that ``system`` needs.
"""

from typing import TYPE_CHECKING

from ocplan.lazy import lazy_names

if TYPE_CHECKING:
    from ocplan.catalog.catalog import Catalog, load_catalog
    from ocplan.catalog.system import System, SystemSpec, load_system

_PUBLIC: dict[str, str] = {
    "Catalog": "ocplan.catalog.catalog",
    "load_catalog": "ocplan.catalog.catalog",
    "System": "ocplan.catalog.system",
    "SystemSpec": "ocplan.catalog.system",
    "load_system": "ocplan.catalog.system",
}


__getattr__ = lazy_names("ocplan.catalog", _PUBLIC, globals())


__all__ = ["Catalog", "System", "SystemSpec", "load_catalog", "load_system"]
