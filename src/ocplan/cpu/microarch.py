"""Published micro-architecture specs of each CPU family the performance model reads:
on-chip cache per core and peak FP64 vector throughput per core and cycle.

These are facts of the core design, the same for every SKU of a family, so a validation
row (which names its family) gets them without any per-CPU data. Where a SKU deviates
from its family's figure (a part with fewer cores per L3 complex, a smaller system-level
cache), the family figure is used and the difference is left to the error.

- ``l2_per_core``: private L2 per core.
- ``l3_reference`` over ``reference_cores``: the shared last-level cache (L3, or the Arm
  system-level cache) per core of the family's full-core-count part ``reference_cpu``,
  as the vendor writes it ("504 MB": ocplan reads MB as 10^6 B, as the catalog does).
- ``fp64_flop_per_cycle``: peak FP64 FLOP per core per cycle of the vector FMA pipes
  (pipes x 64-bit lanes x 2 for the fused multiply-add); None where not published.

The table is data, ``cpu/data/families.yaml``: every figure carries its source (title,
url, locator) as the catalog entries do, and a new family is a new entry there.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Annotated

from pydantic import Field

from ocplan.catalog.fields import Bytes, Id, Spec
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import Source
from ocplan.errors import SpecError

__all__ = ["DATA_FILE", "FamilySpec", "family_spec", "family_specs"]


class FamilySpec(Spec):
    """Cache and vector specs of one micro-architecture family (see the module doc)."""

    family: Id
    l2_per_core: Bytes
    l3_reference: Bytes
    reference_cores: Annotated[int, Field(ge=1, le=1024, strict=True)]
    reference_cpu: Id
    """Catalog id of the part whose L3 and cores give the L3 share per core."""
    fp64_flop_per_cycle: Annotated[int, Field(ge=2, le=256, strict=True)] | None = None
    note: Annotated[str, Field(max_length=200)] | None = None
    sources: Annotated[tuple[Source, ...], Field(min_length=1)]

    @property
    def l3_per_core(self) -> float:
        """Shared last-level cache per core of the reference part, bytes."""
        return self.l3_reference / self.reference_cores

    @property
    def cache_per_core_bytes(self) -> float:
        """L2 + L3 share per core, bytes: the capacity one core's working set can use
        before it reaches DRAM (L3 non-inclusive or a victim cache on every family here,
        so the two add)."""
        return self.l2_per_core + self.l3_per_core


#: The table (YAML data, one entry per family, each with its sources).
DATA_FILE = Path(__file__).resolve().parent / "data" / "families.yaml"


class _Table(Spec):
    families: Annotated[tuple[FamilySpec, ...], Field(min_length=1)]


@cache
def _specs() -> Mapping[str, FamilySpec]:
    table = validate_as(_Table, load_yaml(DATA_FILE), str(DATA_FILE))
    found = {spec.family: spec for spec in table.families}
    if len(found) != len(table.families):
        raise SpecError.one(str(DATA_FILE), "families", "a family is listed twice")
    return found


def family_specs() -> Mapping[str, FamilySpec]:
    """Every family's specs by family id (read once per process)."""
    return _specs()


def family_spec(family: str) -> FamilySpec | None:
    """The published specs of a family, or None for a family not in the table."""
    return _specs().get(family)
