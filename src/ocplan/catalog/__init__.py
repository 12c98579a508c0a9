"""The catalog: schemas, YAML loading, built-in entries and system files."""

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.system import System, SystemSpec, load_system

__all__ = ["Catalog", "System", "SystemSpec", "load_catalog", "load_system"]
