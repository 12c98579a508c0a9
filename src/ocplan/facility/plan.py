"""The facility plan of a cluster: heat split, coolant flow, CDUs, racks, power delivery,
derived PUE and the findings when a rack exceeds what feeds or cools it.

:func:`facility_plan` is the one entry point; it reads the system's ``facility`` block
(:class:`ocplan.catalog.system.FacilitySpec`) and the sourced tables of
:mod:`ocplan.facility.data`. Per-server power comes from
:func:`ocplan.topology.power.power_budget` (nameplate parts) scaled by the IT load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ocplan.catalog.system import System
from ocplan.checks.rules import Finding
from ocplan.errors import SpecError
from ocplan.facility._frozen import make
from ocplan.facility.cooling import (
    PA_PER_PSI,
    cdu_count,
    cdu_usable_capacity_W,
    pump_power_W,
)
from ocplan.facility.data import (
    BusbarEntry,
    CaptureScope,
    FacilityData,
    facility_data,
    pick,
)
from ocplan.facility.delivery import (
    busbar_current_A,
    floor_area_m2,
    position_area_m2,
    psu_efficiency,
    psu_loss_W,
    rack_count,
    row_count,
)
from ocplan.facility.findings import plan_findings
from ocplan.facility.heat import (
    L_PER_MIN_PER_M3_PER_S,
    delta_T_for_flow_ratio_K,
    heat_to_liquid_W,
    mass_flow_kg_per_s,
    volume_flow_m3_per_s,
)
from ocplan.facility.pue import PueBreakdown, derive_pue
from ocplan.topology.power import power_budget

__all__ = [
    "CoolingPlan",
    "FacilityPlan",
    "RackPlan",
    "ServerHeat",
    "facility_findings",
    "facility_plan",
    "system_findings",
]

Edge = tuple[str, str, float]


@dataclass(frozen=True)
class ServerHeat:
    """One server at the planned IT load, W."""

    modules_W: float
    cpus_W: float
    nics_W: float
    other_W: float
    dc_W: float
    """Supply output: modules + CPUs + NICs + other."""
    psu_load_fraction: float
    """Supply output over the installed supplies' rating (all share the load)."""
    psu_efficiency: float
    psu_loss_W: float
    wall_W: float
    """Supply input: ``dc_W + psu_loss_W``; the heat the server gives off."""
    liquid_W: float
    air_W: float


@dataclass(frozen=True)
class RackPlan:
    """Racks, their power and limits, and the white space they take."""

    servers_per_rack: int
    racks: int
    rows: int
    positions: int
    """Rack positions: racks plus in-row CDUs."""
    floor_area_m2: float
    dc_W: float
    """Busbar load of a full rack."""
    wall_W: float
    liquid_W: float
    air_W: float
    air_limit_W: float
    by_component: tuple[tuple[str, float], ...]
    """(part, W) of a full rack: accelerators, CPUs, NICs, other, PSU losses."""
    busbar: str
    busbar_voltage_V: float
    busbar_current_A: float
    busbar_rated_A: float | None
    busbar_rated_W: float | None
    busbar_margin: float | None
    """Share of the busbar rating left (negative: over); by the tighter of current and
    power ratings; ``None`` when the busbar has neither."""
    flow_kg_per_s: float
    flow_L_per_min: float
    racks_per_server: int | None
    """Racks one server fills: 1 for a server that fits in a rack, more for a pod
    catalogued as one system, None when their size is unpublished (then the rack figures
    are the whole server's and no rack limit is judged)."""
    chips_per_rack: int
    """Accelerators in a full rack."""

    def holds(self) -> str:
        """What a full rack holds, for messages: ``4 servers per rack``, ``a rack of 64
        chips``, ``a server (rack size unpublished)``."""
        if self.racks_per_server is None:
            return "a server (rack size unpublished)"
        if self.racks_per_server > 1:
            return f"a rack of {self.chips_per_rack} chips"
        plural = "s" * (self.servers_per_rack > 1)
        return f"{self.servers_per_rack} server{plural} per rack"


@dataclass(frozen=True)
class CoolingPlan:
    """The liquid loop: coolant, temperatures, CDUs, pumps."""

    capture_ratio: float
    capture_scope: CaptureScope
    """What ``capture_ratio`` is a share of: ``cold-plated`` (accelerators and CPUs) or
    ``server`` (the whole server's heat, a rack-scale system's published split)."""
    coolant: str
    delta_T_K: float
    water_class: str
    supply_C: float
    """Facility-water supply to the CDUs."""
    approach_K: float | None
    rack_supply_C: float | None
    """Rack-loop (chip inlet) supply: facility supply + approach; ``None`` when the CDU
    gives no approach."""
    cdu: str
    cdu_placement: str
    cdu_usable_W: float
    cdus: int
    cdus_per_rack: int
    """In-rack CDUs per rack (0 for in-row)."""
    flow_kg_per_s: float
    flow_L_per_min: float
    pump_W: float
    heat_rejection: str


@dataclass(frozen=True)
class FacilityPlan:
    """Facility of a cluster at ``it_load_fraction`` of nameplate IT power."""

    it_load_fraction: float
    server: ServerHeat
    rack: RackPlan
    cooling: CoolingPlan
    servers: int
    switches_W: float
    it_W: float
    """Servers' supply input plus scale-out switches."""
    liquid_W: float
    air_W: float
    psu_loss_W: float
    breakdown: PueBreakdown
    pue_derived: float
    pue_given: float | None
    pue: float
    """The PUE applied: the given one when the system file writes ``pue``, else derived."""
    facility_W: float
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    power_flow: tuple[Edge, ...]
    """(from, to, W) edges grid -> UPS -> supplies -> parts and grid -> cooling, for a
    Sankey diagram; the leaves add up to the derived facility power."""


def facility_plan(system: System, it_load_fraction: float = 1.0) -> FacilityPlan:
    """Plan power delivery and cooling of ``system`` at a share of its nameplate IT power.

    Parameters
    ----------
    system
        A resolved system; its ``facility`` block chooses water class, coolant, CDU,
        busbar, supply class and heat rejection.
    it_load_fraction
        IT power as a share of nameplate, 0 < f <= 1; every part scales linearly (no idle
        floor), and the supplies are evaluated at the resulting load.

    Raises
    ------
    SpecError
        When ``it_load_fraction`` is outside (0, 1] or the facility block names an
        unknown CDU, busbar, supply curve or power chain.
    """
    if not 0.0 < it_load_fraction <= 1.0:  # also refuses NaN
        raise SpecError.one("argument", "it_load_fraction", "must be in (0, 1]",
                            it_load_fraction)
    key = (id(system), it_load_fraction)
    hit = _MEMO.get(key)
    if hit is not None and hit[0] is system:
        return hit[1]
    plan = _plan(system, it_load_fraction)
    if len(_MEMO) >= _MEMO_SIZE:
        _MEMO.clear()
    _MEMO[key] = (system, plan)
    return plan


#: Plans of recently planned systems, by object identity: a System is immutable, and
#: searches and pages ask for the same system's plan many times. Bounded by clearing.
_MEMO: dict[tuple[int, float], tuple[System, FacilityPlan]] = {}
_MEMO_SIZE = 512


def _plan(system: System, it_load_fraction: float) -> FacilityPlan:
    data = facility_data()
    spec = system.spec.facility
    src = system.source
    notes: list[str] = []
    budget = power_budget(system)
    f = it_load_fraction

    # ---- one server ---------------------------------------------------------------
    supplies = system.server.power_supplies
    curve = pick(data.psu_curves, spec.power_delivery.psu_curve, src,
                 "facility.power_delivery.psu_curve")
    dc = budget.server_W * f
    load = dc / (supplies.count * supplies.rating)
    eta = psu_efficiency(curve.points, load)
    loss = psu_loss_W(dc, eta)
    capture, scope = _capture(system, data)
    captured = dc + loss if scope == "server" else (budget.modules_W + budget.cpus_W) * f
    liquid = heat_to_liquid_W(captured, capture)
    server = make(ServerHeat, budget.modules_W * f, budget.cpus_W * f, budget.nics_W * f,
                  budget.other_W * f, dc, load, eta, loss, dc + loss, liquid, dc + loss - liquid)

    # ---- coolant and CDUs ----------------------------------------------------------
    coolant = data.coolants[spec.coolant]
    design_flow = data.plant.design_flow.L_per_min_per_kW
    delta_T = (spec.coolant_delta_T_K if spec.coolant_delta_T_K is not None
               else delta_T_for_flow_ratio_K(design_flow, coolant.density_kg_per_m3,
                                             coolant.specific_heat_J_per_kgK))
    cdu = pick(data.cdus, spec.cdu, src, "facility.cdu")
    water = data.water_classes[spec.water_class]
    supply_C = spec.supply_temperature_C
    if supply_C is None:
        assert water.max_supply_C is not None, "validator requires a W+ supply"
        supply_C = water.max_supply_C
    approach = spec.cdu_approach_K if spec.cdu_approach_K is not None \
        else cdu.rated_approach_K
    usable = cdu_usable_capacity_W(spec.cdu_capacity or cdu.capacity,
                                   cdu.rated_approach_K, approach)

    # ---- racks ---------------------------------------------------------------------
    busbar = _busbar(system, data)
    volts = spec.power_delivery.voltage or busbar.nominal_voltage
    air_limit = spec.air_limit_per_rack or data.plant.air_limit.per_rack
    span, share = system.racks_per_server, system.rack_share
    if span == 1:
        per_rack = _servers_per_rack(system, dc, busbar.rated_power,
                                     busbar.rated_current_A, volts, notes,
                                     air_W=dc + loss - liquid, air_limit_W=air_limit)
        racks, fill = rack_count(system.num_servers, per_rack), float(per_rack)
        rack_chips = per_rack * system.chips_per_server
    else:
        per_rack, fill = 1, 1.0 if share is None else share
        racks = system.num_servers * (span or 1)
        rack_chips = round(fill * system.chips_per_server)
        notes.append(_span_note(system, span, fill))
    rack_liquid = fill * liquid
    in_rack = cdu.placement == "in-rack"
    per_rack_cdus = cdu_count(rack_liquid, usable, spec.cdu_redundancy) if in_rack else 0
    cdus = racks * per_rack_cdus if in_rack else \
        cdu_count(system.num_servers * liquid, usable, spec.cdu_redundancy)
    positions = racks + (0 if in_rack else cdus)
    rows = row_count(positions, spec.racks_per_row)
    pos = data.plant.rack_position
    area = spec.floor_area_per_rack or position_area_m2(
        pos.rack_width_m, pos.rack_depth_m, pos.cold_aisle_m, pos.hot_aisle_m)
    rack_dc = fill * dc
    amps = busbar_current_A(rack_dc, volts)
    margins = []
    judged = span is not None   # of unpublished size, the whole server is no rack to judge
    if judged and busbar.rated_current_A is not None:
        margins.append(1.0 - amps / busbar.rated_current_A)
    if judged and busbar.rated_power is not None:
        margins.append(1.0 - rack_dc / busbar.rated_power)
    cp, rho = coolant.specific_heat_J_per_kgK, coolant.density_kg_per_m3
    rack_flow = mass_flow_kg_per_s(rack_liquid, cp, delta_T)
    rack = make(
        RackPlan, per_rack, racks, rows, positions, floor_area_m2(positions, area), rack_dc,
        fill * server.wall_W, rack_liquid, fill * server.air_W, air_limit,
        (("accelerators", fill * server.modules_W), ("cpus", fill * server.cpus_W),
         ("nics", fill * server.nics_W), ("other", fill * server.other_W),
         ("psu-losses", fill * loss)),
        busbar.id, volts, amps, busbar.rated_current_A, busbar.rated_power,
        min(margins) if margins else None, rack_flow,
        volume_flow_m3_per_s(rack_flow, rho) * L_PER_MIN_PER_M3_PER_S, span, rack_chips)

    # ---- cluster, pumps, PUE -------------------------------------------------------
    n = system.num_servers
    switches = budget.switches_W * f
    it = n * server.wall_W + switches
    cluster_liquid = n * liquid
    flow = mass_flow_kg_per_s(cluster_liquid, cp, delta_T)
    v_dot = volume_flow_m3_per_s(flow, rho)
    # The CDU's stated external head is what its pumps can give (an upper bound on the
    # loop's drop); without one, the rack-level supply pressure of the OCP/Meta spec.
    head_psi = cdu.external_head_psi or data.plant.pump.rack_supply_head_psi
    pumps = pump_power_W(v_dot, head_psi * PA_PER_PSI,
                         data.plant.pump.wire_to_water_efficiency)
    cooling = make(
        CoolingPlan, capture, scope, coolant.id, delta_T, spec.water_class, supply_C, approach,
        supply_C + approach if approach is not None else None, cdu.id, cdu.placement,
        usable, cdus, per_rack_cdus, flow, v_dot * L_PER_MIN_PER_M3_PER_S, pumps,
        spec.heat_rejection)
    air_side = data.plant.air_side
    chain = pick(data.chains, spec.power_delivery.ups, src, "facility.power_delivery.ups")
    breakdown = derive_pue(
        it, cluster_liquid, it - cluster_liquid, chain.efficiency, pumps,
        air_side.airflow_cfm_per_W * air_side.fan_W_per_cfm,
        data.heat_rejection[spec.heat_rejection].cop,
        data.heat_rejection[air_side.chiller].cop)
    given = spec.pue_given
    pue = given if given is not None else breakdown.pue
    _notes(system, data, server, cooling, breakdown, given, notes)
    findings = plan_findings(system, data, rack, cooling, breakdown, given)
    return make(
        FacilityPlan, f, server, rack, cooling, n, switches, it, cluster_liquid,
        it - cluster_liquid, n * loss, breakdown, breakdown.pue, given, pue, it * pue,
        findings, tuple(notes),
        _power_flow(n, server, switches, breakdown, spec.heat_rejection))


def _span_note(system: System, span: int | None, fill: float) -> str:
    """The note of a server larger than a rack."""
    if span is None:
        return (f"server '{system.server.id}' spans racks of unpublished size: racks, floor "
                "area and per-rack figures count one rack per server (a lower bound), and "
                "no per-rack limit is judged")
    return (f"server '{system.server.id}' fills {span} racks of "
            f"{system.server.chips_per_rack} chips: a full rack carries {fill:.1%} of its "
            "power and heat")


def _capture(system: System, data: FacilityData) -> tuple[float, CaptureScope]:
    """Liquid share of the heat and what it is a share of: none for air cooling; else the
    system file's ``capture_ratio`` (of the cold-plated parts), the server's published
    entry, or the default cold-plate ratio."""
    if system.cooling != "liquid":
        return 0.0, "cold-plated"
    given = system.spec.facility.capture_ratio
    if given is not None:
        return given, "cold-plated"
    if system.server.capture is not None:
        entry = pick(data.capture, system.server.capture, f"server {system.server.id}",
                     "capture")
    else:
        entry = data.capture[data.capture_default]
    return entry.liquid_fraction, entry.scope


def _busbar(system: System, data: FacilityData) -> BusbarEntry:
    """The rack's busbar: the system file's ``power_delivery.busbar`` when written, else
    the one the server ships with (rack-scale systems), else the facility default."""
    delivery = system.spec.facility.power_delivery
    if "busbar" not in delivery.model_fields_set and system.server.busbar is not None:
        return pick(data.busbars, system.server.busbar, f"server {system.server.id}",
                    "busbar")
    return pick(data.busbars, delivery.busbar, system.source,
                "facility.power_delivery.busbar")


def facility_findings(system: System) -> list[Finding]:
    """Findings of the facility plan at full IT load: water class, busbar, air side,
    in-rack CDUs and the PUE range (rules ``FACILITY-*``), errors first.

    Rack limits are errors against the racks the system file declares (``rack:``);
    without a rack block the racks are ocplan's assumption (as many servers as the busbar
    and the air side allow, at least one: a rack-scale server such as an NVL72 is one
    rack), so an exceeded limit is a warning to design the room for, not a fault of the
    composition."""
    found = list(facility_plan(system).findings)
    if system.spec.rack is not None:
        return found
    return [replace(f, severity="warning",
                    message=f.message + " (no rack block: the rack is assumed)")
            if f.severity == "error" and f.rule in _RACK_RULES else f for f in found]


#: Facility rules that judge a rack (its busbar, air side, in-rack CDUs).
_RACK_RULES = frozenset({"FACILITY-BUSBAR", "FACILITY-AIR-RACK", "FACILITY-CDU-RACK"})


def system_findings(system: System) -> list[Finding]:
    """Every compliance finding of a system: the composition rules
    (:func:`ocplan.checks.rules.run_rules`) and the facility's (``FACILITY-*``), errors
    first. What ``ocplan check`` reports and what refuses an estimate."""
    from ocplan.checks.rules import run_rules

    order = {"error": 0, "warning": 1, "info": 2}
    # the PUE range is a remark on the derived PUE (shown with the facility plan), not on
    # the composition
    found = run_rules(system) + [f for f in facility_findings(system)
                                 if f.rule != "FACILITY-PUE-RANGE"]
    return sorted(found, key=lambda f: order[f.severity])


def _servers_per_rack(system: System, server_dc_W: float, rated_W: float | None,
                      rated_A: float | None, volts: float, notes: list[str],
                      air_W: float = 0.0, air_limit_W: float | None = None) -> int:
    """The system's ``rack.servers_per_rack``; without a rack block, as many servers as
    both the busbar's rating carries and the room's air side removes (at least one):
    a planner fills racks to the tighter limit, so a system file without racks never
    fails a limit by the planner's own choice."""
    rack = system.spec.rack
    if rack is not None:
        return min(rack.servers_per_rack, system.num_servers)
    limits = [w for w in (rated_W, rated_A * volts if rated_A else None) if w]
    if not limits:
        notes.append("no rack block and no busbar rating: one server per rack assumed")
        return 1
    fits = max(1, math.floor(min(limits) / server_dc_W)) if server_dc_W > 0 else 1
    by = "the busbar carries"
    if air_limit_W is not None and air_W > 0:
        by_air = max(1, math.floor(air_limit_W / air_W))
        if by_air < fits:
            fits, by = by_air, "the room's air side removes"
    notes.append(f"no rack block: {fits} servers per rack, as many as {by}")
    return min(fits, system.num_servers)


def _notes(system: System, data: FacilityData, server: ServerHeat, cooling: CoolingPlan,
           breakdown: PueBreakdown, given: float | None, notes: list[str]) -> None:
    notes.append("design-point PUE: full load on a design day, not an annual average")
    if system.cooling == "liquid":
        if cooling.rack_supply_C is None:
            notes.append(f"{cooling.cdu} states no approach: rack-loop supply temperature "
                         "unknown, capacity taken at its rating")
        notes.append(f"the catalog gives no coolant inlet limit for {system.accelerator.id}"
                     f"; rack-loop supply {_t(cooling.rack_supply_C)} is not checked "
                     "against the chip")
        if server.wall_W > 0:
            notes.append(f"liquid carries {server.liquid_W / server.wall_W:.0%} of server "
                         "heat (published cold-plate servers: 70-90 %)")
    else:
        notes.append("air-cooled system: no liquid loop; all heat goes through room units")
    pue_range = data.pue_ranges[system.cooling]
    if given is None and breakdown.pue > pue_range.high:
        notes.append(f"derived PUE {breakdown.pue:.3f} is above the published annual "
                     f"averages {pue_range.low:g}-{pue_range.high:g} for "
                     f"{system.cooling}-cooled sites, as a design day at the code-minimum "
                     "chiller and fan limits should be; economiser hours lower the year's")
    if given is not None:
        notes.append(f"PUE {given} given in the system file overrides the derived "
                     f"{breakdown.pue:.3f}; power_flow shows the derived split")


def _t(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g} degC"


def _power_flow(n: int, server: ServerHeat, switches_W: float, b: PueBreakdown,
                rejection: str) -> tuple[Edge, ...]:
    supplies = n * server.wall_W
    edges: list[Edge] = [
        ("grid", "ups/distribution", b.it_W + b.chain_loss_W),
        ("ups/distribution", "ups/distribution losses", b.chain_loss_W),
        ("ups/distribution", "server supplies", supplies),
        ("ups/distribution", "switches", switches_W),
        ("server supplies", "psu losses", n * server.psu_loss_W),
        ("server supplies", "accelerators", n * server.modules_W),
        ("server supplies", "cpus", n * server.cpus_W),
        ("server supplies", "nics", n * server.nics_W),
        ("server supplies", "other", n * server.other_W),
        ("grid", "cooling", b.cooling_W),
        ("cooling", "pumps", b.pump_W),
        ("cooling", "crah fans", b.crah_fan_W),
        ("cooling", f"heat rejection ({rejection})", b.liquid_rejection_W),
        ("cooling", "air-side chiller", b.air_rejection_W),
    ]
    return tuple(e for e in edges if e[2] > 0.0)
