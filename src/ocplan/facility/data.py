"""Sourced facility tables: water classes, coolants, CDUs, capture ratios, supply curves,
busbars, power chains and plant constants.

Each table is a YAML file in ``ocplan/facility/data/`` validated by a model here; every
entry carries the documents its numbers come from (:class:`ocplan.catalog.schema.Source`:
title, url, locator). The files are read once per process (:func:`facility_data`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import Field, model_validator

from ocplan.catalog.fields import Id, Power, Spec, Voltage
from ocplan.catalog.loader import load_yaml, validate_as
from ocplan.catalog.schema import Source
from ocplan.catalog.system import WaterClass
from ocplan.catalog.yaml_cache import ParseCache, cache_dir
from ocplan.errors import SpecError

__all__ = [
    "DATA_DIR",
    "BusbarEntry",
    "CaptureEntry",
    "CaptureScope",
    "CduEntry",
    "CoolantEntry",
    "FacilityData",
    "PsuCurve",
    "WaterClassEntry",
    "facility_data",
    "pick",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

T = TypeVar("T")

Sources = Annotated[tuple[Source, ...], Field(min_length=1)]
Fraction = Annotated[float, Field(strict=True, gt=0, le=1)]
Positive = Annotated[float, Field(strict=True, gt=0)]
DegC = Annotated[float, Field(strict=True, ge=-50, le=150)]
Note = Annotated[str, Field(max_length=600)] | None


class WaterClassEntry(Spec):
    id: WaterClass
    min_supply_C: DegC
    max_supply_C: DegC | None
    """``None``: no upper limit (W+)."""


class WaterClassTable(Spec):
    kind: Literal["water-classes"]
    sources: Sources
    classes: tuple[WaterClassEntry, ...]


class CoolantEntry(Spec):
    id: Id
    name: str
    reference_temperature_C: DegC
    density_kg_per_m3: Annotated[float, Field(strict=True, ge=500, le=2000)]
    specific_heat_J_per_kgK: Annotated[float, Field(strict=True, ge=1000, le=6000)]
    sources: Sources


class CoolantTable(Spec):
    kind: Literal["coolants"]
    coolants: tuple[CoolantEntry, ...]


class CduEntry(Spec):
    id: Id
    name: str
    placement: Literal["in-rack", "in-row"]
    capacity: Power
    rated_approach_K: Positive | None = None
    """Rack-loop supply minus facility supply at the rated capacity; ``None``: not given."""
    flow_L_per_min: Positive | None = None
    external_head_psi: Positive | None = None
    coolant: Id | None = None
    sources: Sources


class CduTable(Spec):
    kind: Literal["cdus"]
    cdus: tuple[CduEntry, ...]


#: What a capture ratio is a share of: the heat of the cold-plated parts (accelerators and
#: CPUs; a server-level figure applied there understates the liquid heat by the parts
#: without plates) or the whole server's (rack-scale systems whose switch trays, supplies
#: and manifolds are liquid-cooled too, and whose makers publish the rack's split).
CaptureScope = Literal["cold-plated", "server"]


class CaptureEntry(Spec):
    id: Id
    name: str
    liquid_fraction: Fraction
    scope: CaptureScope = "cold-plated"
    sources: Sources


class CaptureTable(Spec):
    kind: Literal["capture-ratios"]
    default: Id
    ratios: tuple[CaptureEntry, ...]


class PsuCurve(Spec):
    id: Id
    name: str
    points: Annotated[tuple[tuple[Fraction, Fraction], ...], Field(min_length=2)]
    """(load fraction, efficiency), load fractions rising."""
    sources: Sources

    @model_validator(mode="after")
    def _rising(self) -> PsuCurve:
        loads = [load for load, _ in self.points]
        if loads != sorted(set(loads)):
            raise ValueError("points must have strictly rising load fractions")
        return self


class PsuTable(Spec):
    kind: Literal["psu-curves"]
    sources: Sources
    curves: tuple[PsuCurve, ...]


class BusbarEntry(Spec):
    id: Id
    name: str
    nominal_voltage: Voltage
    rated_current_A: Positive | None = None
    rated_power: Power | None = None
    notes: Note = None
    sources: Sources


class BusbarTable(Spec):
    kind: Literal["busbars"]
    busbars: tuple[BusbarEntry, ...]


class ChainEntry(Spec):
    id: Id
    name: str
    efficiency: Fraction
    sources: Sources


class ChainTable(Spec):
    kind: Literal["power-chain"]
    chains: tuple[ChainEntry, ...]


class HeatRejectionEntry(Spec):
    id: Literal["chiller", "dry-cooler", "cooling-tower"]
    name: str
    cop: Positive
    """Heat rejected per unit of electric power."""
    notes: Note = None
    sources: Sources


class AirSide(Spec):
    chiller: Literal["chiller", "dry-cooler", "cooling-tower"]
    fan_W_per_cfm: Positive
    airflow_cfm_per_W: Positive
    notes: Note = None
    sources: Sources


class Pump(Spec):
    wire_to_water_efficiency: Fraction
    rack_supply_head_psi: Positive
    sources: Sources


class DesignFlow(Spec):
    L_per_min_per_kW: Positive
    sources: Sources


class AirLimit(Spec):
    per_rack: Power
    sources: Sources


class RackPosition(Spec):
    rack_width_m: Positive
    rack_depth_m: Positive
    cold_aisle_m: Positive
    hot_aisle_m: Positive
    notes: Note = None
    sources: Sources


class PueRange(Spec):
    cooling: Literal["air", "liquid"]
    low: Annotated[float, Field(strict=True, ge=1, le=3)]
    high: Annotated[float, Field(strict=True, ge=1, le=3)]
    sources: Sources


class PlantTable(Spec):
    kind: Literal["plant"]
    heat_rejection: tuple[HeatRejectionEntry, ...]
    air_side: AirSide
    pump: Pump
    design_flow: DesignFlow
    air_limit: AirLimit
    rack_position: RackPosition
    pue_ranges: tuple[PueRange, ...]


@dataclass(frozen=True)
class FacilityData:
    """Every facility table, entries keyed by id."""

    water_classes: dict[str, WaterClassEntry]
    water_class_sources: tuple[Source, ...]
    coolants: dict[str, CoolantEntry]
    cdus: dict[str, CduEntry]
    capture: dict[str, CaptureEntry]
    capture_default: str
    psu_curves: dict[str, PsuCurve]
    busbars: dict[str, BusbarEntry]
    chains: dict[str, ChainEntry]
    plant: PlantTable
    heat_rejection: dict[str, HeatRejectionEntry]
    pue_ranges: dict[str, PueRange]


def _read(name: str, model: type[Spec], cache: ParseCache) -> Spec:
    path = DATA_DIR / name
    return validate_as(model, load_yaml(path, cache), str(path))


@cache
def facility_data() -> FacilityData:
    """All tables, read and validated once per process (their parse cached across
    processes like the catalog's: :mod:`ocplan.catalog.yaml_cache`)."""
    parsed = ParseCache(cache_dir(), "facility")
    water = _read("water_classes.yaml", WaterClassTable, parsed)
    coolants = _read("coolants.yaml", CoolantTable, parsed)
    cdus = _read("cdus.yaml", CduTable, parsed)
    capture = _read("capture.yaml", CaptureTable, parsed)
    psu = _read("psu_curves.yaml", PsuTable, parsed)
    busbars = _read("busbars.yaml", BusbarTable, parsed)
    chains = _read("power_chain.yaml", ChainTable, parsed)
    plant = _read("plant.yaml", PlantTable, parsed)
    parsed.save()
    assert isinstance(water, WaterClassTable)
    assert isinstance(coolants, CoolantTable)
    assert isinstance(cdus, CduTable)
    assert isinstance(capture, CaptureTable)
    assert isinstance(psu, PsuTable)
    assert isinstance(busbars, BusbarTable)
    assert isinstance(chains, ChainTable)
    assert isinstance(plant, PlantTable)
    data = FacilityData(
        water_classes={c.id: c for c in water.classes},
        water_class_sources=water.sources,
        coolants={c.id: c for c in coolants.coolants},
        cdus={c.id: c for c in cdus.cdus},
        capture={c.id: c for c in capture.ratios},
        capture_default=capture.default,
        psu_curves={c.id: c for c in psu.curves},
        busbars={b.id: b for b in busbars.busbars},
        chains={c.id: c for c in chains.chains},
        plant=plant,
        heat_rejection={h.id: h for h in plant.heat_rejection},
        pue_ranges={r.cooling: r for r in plant.pue_ranges},
    )
    assert data.capture_default in data.capture, "capture.yaml default names no ratio"
    assert data.plant.air_side.chiller in data.heat_rejection
    return data


def pick(table: dict[str, T], key: str, source: str, field: str) -> T:
    """``table[key]``, or a SpecError naming ``field`` of ``source`` and the allowed keys."""
    try:
        return table[key]
    except KeyError:
        allowed = ", ".join(repr(k) for k in sorted(table))
        raise SpecError.one(source, field, f"unknown; expected one of {allowed}",
                            key) from None
