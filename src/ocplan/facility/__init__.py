"""Facility model: liquid cooling and power delivery of racks and clusters.

Replaces "TDP x PUE" with the physics of the facility: the heat split between cold
plates and air, the first law for coolant flow, CDU sizing at an approach temperature,
ASHRAE water classes, supply efficiency curves, busbar current, racks and floor, and a PUE
derived from the cooling plant. Entry point: :func:`facility_plan`.
"""

from ocplan.facility.data import facility_data
from ocplan.facility.plan import (
    CoolingPlan,
    FacilityPlan,
    RackPlan,
    ServerHeat,
    facility_findings,
    facility_plan,
    system_findings,
)
from ocplan.facility.pue import PueBreakdown

__all__ = [
    "CoolingPlan",
    "FacilityPlan",
    "PueBreakdown",
    "RackPlan",
    "ServerHeat",
    "facility_data",
    "facility_findings",
    "facility_plan",
    "system_findings",
]
