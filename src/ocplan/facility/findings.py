"""Facility findings: a rack over its busbar or air-side limit, facility water outside
its class, more in-rack CDUs than a rack holds, a derived PUE outside published ranges.

Rule ids start with ``FACILITY-``; ``section`` cites the document the limit comes from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ocplan.catalog.system import System
from ocplan.checks.rules import Finding
from ocplan.units import format_quantity

if TYPE_CHECKING:
    from ocplan.facility.data import FacilityData
    from ocplan.facility.plan import CoolingPlan, RackPlan
    from ocplan.facility.pue import PueBreakdown

__all__ = ["plan_findings"]

_ORDER = {"error": 0, "warning": 1, "info": 2}


def _w(value: float) -> str:
    return format_quantity(value, "W")


def _cite(sources: tuple[object, ...]) -> str:
    first = sources[0]
    title = getattr(first, "title", "")
    locator = getattr(first, "locator", None)
    return f"{title}, {locator}" if locator else str(title)


def plan_findings(system: System, data: FacilityData, rack: RackPlan, cooling: CoolingPlan,
                  breakdown: PueBreakdown, given: float | None = None) -> tuple[Finding, ...]:
    """Every facility finding of one plan, errors first; ``given`` is the PUE the system
    file writes, if any."""
    out: list[Finding] = []
    name = system.spec.name
    if system.cooling == "liquid":
        water = data.water_classes[cooling.water_class]
        top = water.max_supply_C
        low = water.min_supply_C
        inside = (cooling.supply_C > low if top is None
                  else low <= cooling.supply_C <= top)
        if not inside:
            span = f"above {low:g}" if top is None else f"{low:g}-{top:g}"
            out.append(Finding(
                "FACILITY-WATER-CLASS", "error",
                f"facility supply {cooling.supply_C:g} degC is outside class "
                f"{cooling.water_class} ({span} degC)", _cite(data.water_class_sources),
                name))
    out += _rack_findings(system, data, rack, cooling)
    out += _pue_findings(system, data, breakdown, given)
    out.sort(key=lambda f: (_ORDER[f.severity], f.rule))
    return tuple(out)


def _pue_findings(system: System, data: FacilityData, breakdown: PueBreakdown,
                  given: float | None) -> list[Finding]:
    """The PUE against the published range of annual averages, like with like.

    A PUE the system file gives is an annual figure and is judged on both sides. The
    derived one is a design-day peak with the code-minimum chiller and the fan-power limit
    (``plant.yaml``), so sitting above the annual averages is what it should do; only a
    derived peak below the best published annual average points at an input that is off.
    """
    pue_range = data.pue_ranges[system.cooling]
    span = f"{pue_range.low:g}-{pue_range.high:g}"
    if given is not None:
        if pue_range.low <= given <= pue_range.high:
            return []
        message = (f"PUE {given:g} given in the system file is outside the published "
                   f"annual averages {span} for {system.cooling}-cooled sites")
    elif breakdown.pue < pue_range.low:
        message = (f"derived design-day PUE {breakdown.pue:.3f} is below the best published "
                   f"annual average ({span} for {system.cooling}-cooled sites): a design "
                   "day cannot beat the year; check the plant's inputs")
    else:
        return []
    return [Finding("FACILITY-PUE-RANGE", "info", message, _cite(pue_range.sources),
                    system.spec.name)]


def _rack_findings(system: System, data: FacilityData, rack: RackPlan,
                   cooling: CoolingPlan) -> list[Finding]:
    """A full rack against its in-rack CDUs, the room's air side and its busbar; for a
    server spanning racks of unpublished size, one remark that none of it is judged
    (judged as one rack, the whole server would fail them all)."""
    if rack.racks_per_server is None:
        return [Finding(
            "FACILITY-RACK-UNPUBLISHED", "info",
            f"server '{system.server.id}' spans several racks and no source gives how "
            "many; busbar, air-side, in-rack CDU and rack power limits are not judged",
            "catalog server chips_per_rack: unpublished", system.server.id)]
    out: list[Finding] = []
    spare = 1 if system.spec.facility.cdu_redundancy == "N+1" else 0
    if system.cooling == "liquid" and cooling.cdus_per_rack - spare > 1:
        out.append(Finding(
            "FACILITY-CDU-RACK", "warning",
            f"each rack needs {cooling.cdus_per_rack - spare} x {cooling.cdu} in-rack "
            f"CDUs (+{spare} spare) for "
            f"{_w(rack.liquid_W)} of liquid heat; use an in-row CDU or a larger model",
            _cite(data.cdus[cooling.cdu].sources), cooling.cdu))
    if rack.air_W > rack.air_limit_W:
        out.append(Finding(
            "FACILITY-AIR-RACK", "error",
            f"{rack.holds()}: {_w(rack.air_W)} of air-side heat; "
            f"the room removes {_w(rack.air_limit_W)} per rack",
            _cite(data.plant.air_limit.sources), system.spec.name))
    busbar = data.busbars[rack.busbar]
    if rack.busbar_rated_A is not None and rack.busbar_current_A > rack.busbar_rated_A:
        out.append(Finding(
            "FACILITY-BUSBAR", "error",
            f"a rack draws {rack.busbar_current_A:,.0f} A at {rack.busbar_voltage_V:g} V; "
            f"the {busbar.name} busbar is rated {rack.busbar_rated_A:,.0f} A",
            _cite(busbar.sources), rack.busbar))
    if rack.busbar_rated_W is not None and rack.dc_W > rack.busbar_rated_W:
        out.append(Finding(
            "FACILITY-BUSBAR", "error",
            f"a rack draws {_w(rack.dc_W)}; the {busbar.name} busbar delivers "
            f"{_w(rack.busbar_rated_W)}", _cite(busbar.sources), rack.busbar))
    return out
