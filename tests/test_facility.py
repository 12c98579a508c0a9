"""Facility model: first law, CDU sizing, heat balance, busbar and water-class findings,
derived PUE, bad facility fields, and rack-scale servers that bring their own rack.

Expected numbers are worked out here from the sourced constants (NIST water, Dow PG25,
vendor CDU ratings, 80 PLUS points, ORv3 ratings) and the example system's parts, not
copied from the code's output.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.catalog.schema import Server
from ocplan.catalog.system import FacilitySpec, System, SystemSpec, load_system, resolve_system
from ocplan.checks.rules import run_rules
from ocplan.errors import SpecError
from ocplan.facility import facility_data, facility_findings, facility_plan
from ocplan.facility.cooling import cdu_count, cdu_usable_capacity_W, pump_power_W
from ocplan.facility.delivery import busbar_current_A, psu_efficiency, psu_loss_W
from ocplan.facility.heat import (
    delta_T_for_flow_ratio_K,
    heat_to_liquid_W,
    mass_flow_kg_per_s,
    volume_flow_m3_per_s,
)
from ocplan.facility.plan import system_findings
from ocplan.topology.power import power_budget

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SERVERS = Path(__file__).resolve().parents[1] / "src" / "ocplan" / "catalog" / "data" / "servers"
LIQUID = EXAMPLES / "ubb-1024-liquid.yaml"


def _catalog_power(system: System) -> tuple[float, float, float, float]:
    """(modules, CPUs, server DC load, installed supply rating) of the liquid example's
    server, W, from its catalog entries: 8 x MI355X at 1400 W, 2 x EPYC 9575F, other_power
    1200 W, the NICs (the Pollara has no published power: the budget's flagged estimate);
    6 x 5250 W supplies."""
    modules = system.chips_per_server * system.accelerator.power.tdp
    cpus = system.server.host.sockets * (system.cpu.tdp or 0.0)
    nics = power_budget(system).nics_W
    supplies = system.server.power_supplies
    return (modules, cpus, modules + cpus + nics + system.server.other_power,
            supplies.count * supplies.rating)


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(use_env=False)


@pytest.fixture(scope="module")
def liquid(catalog: Catalog) -> System:
    return load_system(LIQUID, catalog)


@pytest.fixture(scope="module")
def parts(liquid: System) -> tuple[float, float, float, float]:
    return _catalog_power(liquid)


def _variant(catalog: Catalog, facility: dict[str, Any] | None = None,
             **top: Any) -> System:
    """The liquid example with its facility block (and top-level keys) replaced."""
    data = yaml.safe_load(LIQUID.read_text("utf-8"))
    data.update(top)
    if facility is not None:
        data["facility"] = facility
    spec = validate_as(SystemSpec, data, "variant.yaml")
    return resolve_system(spec, catalog, "variant.yaml")


def _rules(system: System) -> set[str]:
    return {f.rule for f in facility_findings(system)}


# ---- first law -----------------------------------------------------------------------


def test_first_law_100_kW_water_at_10_K() -> None:
    water = facility_data().coolants["water"]
    m_dot = mass_flow_kg_per_s(100e3, water.specific_heat_J_per_kgK, 10.0)
    # Q = m_dot c_p dT with c_p(water, 40 degC) = 4179 J/(kg K) (NIST WebBook)
    assert m_dot == pytest.approx(100e3 / (4179.0 * 10.0))
    assert m_dot == pytest.approx(2.39, abs=0.005)
    litres_per_min = volume_flow_m3_per_s(m_dot, water.density_kg_per_m3) * 60_000
    assert litres_per_min == pytest.approx(2.3929 / 992.2 * 60_000, rel=1e-3)  # ~144.7


def test_flow_halves_when_the_rise_doubles() -> None:
    assert mass_flow_kg_per_s(50e3, 3920.0, 20.0) == pytest.approx(
        mass_flow_kg_per_s(50e3, 3920.0, 10.0) / 2)


def test_ocp_design_flow_means_a_10_K_rise_in_pg25() -> None:
    pg25 = facility_data().coolants["pg25"]
    # 1.5 L/min per kW = 2.5e-5 m^3/s per kW; dT = 1000 W / (1022.5 * 2.5e-5 * 3920)
    hand = 1000.0 / (1022.5 * 2.5e-5 * 3920.0)
    got = delta_T_for_flow_ratio_K(1.5, pg25.density_kg_per_m3, pg25.specific_heat_J_per_kgK)
    assert got == pytest.approx(hand)
    assert got == pytest.approx(9.98, abs=0.01)


def test_capture_ratio_applies_to_plated_parts_only() -> None:
    assert heat_to_liquid_W(12_000.0, 0.8) == pytest.approx(9_600.0)
    assert heat_to_liquid_W(12_000.0, 0.0) == 0.0


# ---- CDUs ----------------------------------------------------------------------------


def test_cdu_datasheet_capacity_reproduced_at_its_approach() -> None:
    cdus = facility_data().cdus
    chx = cdus["coolit-chx2000"]  # CoolIT: 2000 kW at 5 degC ATD
    assert cdu_usable_capacity_W(chx.capacity, chx.rated_approach_K, 5.0) == 2.0e6
    # Same exchanger at half the approach moves half the heat (LMTD = ATD, balanced).
    assert cdu_usable_capacity_W(chx.capacity, chx.rated_approach_K, 2.5) == 1.0e6
    # A wider approach does not lift it past the rating.
    assert cdu_usable_capacity_W(chx.capacity, chx.rated_approach_K, 8.0) == 2.0e6
    vertiv = cdus["vertiv-coolchip-cdu-2300"]  # Vertiv SL-80005: 2300 kW at 4 degC
    assert cdu_usable_capacity_W(vertiv.capacity, vertiv.rated_approach_K, 4.0) == 2.3e6
    assert cdus["vertiv-coolchip-cdu-70"].placement == "in-rack"
    assert cdus["vertiv-coolchip-cdu-70"].capacity == 70e3


def test_cdu_datasheet_pump_point_is_first_law_consistent() -> None:
    # JetCool rack CDU: 160 kW with 280 L/min of PG25 means a rise of
    # 160e3 / (280/60000 * 1022.5 * 3920) = 8.55 K, inside the 8-12 K design band.
    pg25 = facility_data().coolants["pg25"]
    cdu = facility_data().cdus["jetcool-rack-cdu-160"]
    assert cdu.flow_L_per_min is not None
    m_dot = cdu.flow_L_per_min / 60_000 * pg25.density_kg_per_m3
    rise = cdu.capacity / (m_dot * pg25.specific_heat_J_per_kgK)
    assert rise == pytest.approx(160e3 / (280 / 60000 * 1022.5 * 3920))
    assert 8.0 < rise < 12.0


def test_cdu_count_ceil_and_redundancy() -> None:
    assert cdu_count(4.7e6, 2.3e6, "N") == 3
    assert cdu_count(4.7e6, 2.3e6, "N+1") == 4
    assert cdu_count(4.6e6, 2.3e6, "N") == 2  # exactly two full units
    assert cdu_count(0.0, 2.3e6, "N+1") == 0


def test_pump_power_is_hydraulic_over_efficiency() -> None:
    # 25 psi at 0.01 m^3/s, 54.7 % wire to water
    assert pump_power_W(0.01, 25 * 6894.757, 0.547) == pytest.approx(
        25 * 6894.757 * 0.01 / 0.547)


# ---- power delivery -------------------------------------------------------------------


def test_psu_curve_interpolation_and_ends() -> None:
    titanium = facility_data().psu_curves["80plus-titanium"].points
    assert psu_efficiency(titanium, 0.35) == pytest.approx(0.94 + 0.5 * (0.96 - 0.94))
    assert psu_efficiency(titanium, 0.05) == 0.90   # held below the 10 % point
    assert psu_efficiency(titanium, 1.00) == 0.91
    platinum = facility_data().psu_curves["80plus-platinum"].points
    assert psu_efficiency(platinum, 0.75) == pytest.approx((0.94 + 0.91) / 2)
    assert psu_loss_W(960.0, 0.96) == pytest.approx(40.0)


def test_busbar_current() -> None:
    assert busbar_current_A(120e3, 50.0) == 2400.0
    assert busbar_current_A(800e3, 800.0) == 1000.0


def test_busbar_finding_fires_above_rating_and_not_below(
        catalog: Catalog, parts: tuple[float, float, float, float]) -> None:
    _, _, server_dc_W, _ = parts
    # ORv3 standard busbar: 375 A and 15 kW at 48 V. One server is 13.2 kW = 275 A.
    feed = {"power_delivery": {"busbar": "orv3-standard"}}
    one = _variant(catalog, feed, rack={"servers_per_rack": 1, "power_limit": "80 kW"})
    plan = facility_plan(one)
    assert plan.rack.busbar_current_A == pytest.approx(server_dc_W / 48.0)
    assert plan.rack.busbar_margin is not None
    assert plan.rack.busbar_margin > 0
    assert "FACILITY-BUSBAR" not in _rules(one)
    two = _variant(catalog, feed, rack={"servers_per_rack": 2, "power_limit": "80 kW"})
    plan = facility_plan(two)
    assert plan.rack.busbar_current_A == pytest.approx(2 * server_dc_W / 48.0)  # 550 A
    assert plan.rack.busbar_margin is not None
    assert plan.rack.busbar_margin < 0
    found = [f for f in facility_findings(two) if f.rule == "FACILITY-BUSBAR"]
    assert found
    assert all(f.severity == "error" for f in found)
    assert "Meta Network Hardware Switch Requirements" in found[0].section


def test_busbar_voltage_override_lowers_the_current(
        catalog: Catalog, parts: tuple[float, float, float, float]) -> None:
    _, _, server_dc_W, _ = parts
    system = _variant(catalog, {"power_delivery": {"voltage": "54 V"}})
    assert facility_plan(system).rack.busbar_current_A == pytest.approx(
        4 * server_dc_W / 54.0)


# ---- heat balance and the liquid example ---------------------------------------------


def test_liquid_example_heat_balance(
        liquid: System, parts: tuple[float, float, float, float]) -> None:
    modules_W, cpus_W, server_dc_W, rating_W = parts
    plan = facility_plan(liquid)
    server = plan.server
    # supplies: 13.2 kW of 31.5 kW = 41.9 % load -> Titanium 0.94 + (0.419-0.2)/0.3 * 0.02
    load = server_dc_W / rating_W
    eta = 0.94 + (load - 0.2) / 0.3 * 0.02
    assert server.psu_load_fraction == pytest.approx(load)
    assert server.psu_efficiency == pytest.approx(eta)
    assert server.wall_W == pytest.approx(server_dc_W / eta)
    assert server.liquid_W == pytest.approx(0.8 * (modules_W + cpus_W))  # default 80 %
    assert server.liquid_W + server.air_W == pytest.approx(server.wall_W)
    assert plan.liquid_W + plan.air_W == pytest.approx(plan.it_W)
    b = plan.breakdown
    assert b.facility_W == pytest.approx(plan.it_W + b.cooling_W + b.chain_loss_W)
    assert b.cooling_W == pytest.approx(
        b.pump_W + b.crah_fan_W + b.liquid_rejection_W + b.air_rejection_W)
    targets = {dst for _, dst, _ in plan.power_flow}
    leaves = sum(w for _, dst, w in plan.power_flow
                 if dst not in {src for src, _, _ in plan.power_flow})
    assert "accelerators" in targets
    assert "pumps" in targets
    assert leaves == pytest.approx(b.facility_W)
    assert sum(w for _, w in plan.rack.by_component) == pytest.approx(plan.rack.wall_W)


def test_liquid_example_gives_positive_cdu_rack_and_water_figures(
        liquid: System, parts: tuple[float, float, float, float]) -> None:
    modules_W, cpus_W, _, _ = parts
    plan = facility_plan(liquid)
    assert plan.rack.servers_per_rack == 4
    assert plan.rack.racks == 128 // 4
    assert plan.cooling.cdus >= 1
    assert plan.rack.rows >= 1
    assert plan.rack.floor_area_m2 > 0
    # 128 x 9.6 kW = 1.2288 MW on one 2.3 MW CoolChip, plus one for N+1
    assert plan.liquid_W == pytest.approx(128 * 0.8 * (modules_W + cpus_W))
    assert plan.cooling.cdus == 2
    pg25 = facility_data().coolants["pg25"]
    expected_m_dot = plan.liquid_W / (pg25.specific_heat_J_per_kgK * plan.cooling.delta_T_K)
    assert plan.cooling.flow_kg_per_s == pytest.approx(expected_m_dot)
    # 1.5 L/min per kW is what the default rise was derived from
    assert plan.cooling.flow_L_per_min == pytest.approx(1.5 * plan.liquid_W / 1000)
    assert plan.cooling.rack_supply_C == 32 + 4  # W32 upper limit + CoolChip 4 K approach
    assert any("no coolant inlet limit" in n for n in plan.notes)


def test_derived_pue_of_liquid_example_in_published_range(liquid: System) -> None:
    plan = facility_plan(liquid)
    low, high = 1.04, 1.58   # NREL ESIF warm-water TTM PUE; Uptime 2023 industry average
    assert low <= plan.pue_derived <= high
    assert plan.pue_given == 1.15
    assert plan.pue == 1.15
    assert plan.facility_W == pytest.approx(plan.it_W * 1.15)


def test_pue_derived_when_the_file_gives_none(catalog: Catalog) -> None:
    system = _variant(catalog, {})
    plan = facility_plan(system)
    assert system.spec.facility.pue_given is None
    assert plan.pue == plan.pue_derived
    assert plan.facility_W == pytest.approx(
        plan.breakdown.facility_W)
    # the nameplate budget keeps the old 1.2 default until it reads the derived PUE
    assert power_budget(system).facility_W == pytest.approx(power_budget(system).it_W * 1.2)


def test_heat_rejection_plant_orders_the_pue(catalog: Catalog) -> None:
    pues = {kind: facility_plan(_variant(catalog, {"heat_rejection": kind})).pue_derived
            for kind in ("cooling-tower", "dry-cooler", "chiller")}
    # COP 79 (tower fans) > 19.85 (dry cooler fans) > 2.96 (air-cooled chiller)
    assert pues["cooling-tower"] < pues["dry-cooler"] < pues["chiller"]


def test_more_capture_lowers_air_heat_and_pue(catalog: Catalog) -> None:
    low = facility_plan(_variant(catalog, {"capture_ratio": 0.6}))
    high = facility_plan(_variant(catalog, {"capture_ratio": 0.95}))
    assert high.air_W < low.air_W
    assert high.pue_derived < low.pue_derived
    assert high.it_W == pytest.approx(low.it_W)


def test_half_load_halves_the_supply_load(
        liquid: System, parts: tuple[float, float, float, float]) -> None:
    _, _, server_dc_W, rating_W = parts
    full, half = facility_plan(liquid), facility_plan(liquid, 0.5)
    assert half.server.dc_W == pytest.approx(full.server.dc_W / 2)
    assert half.server.psu_load_fraction == pytest.approx(full.server.psu_load_fraction / 2)
    # 20.95 % load: Titanium 0.94 + 0.0095/0.3 * 0.02
    assert half.server.psu_efficiency == pytest.approx(
        0.94 + (server_dc_W / 2 / rating_W - 0.2) / 0.3 * 0.02)


# ---- findings ------------------------------------------------------------------------


@pytest.mark.parametrize(("water", "fires"), [
    ({"water_class": "W32", "supply_temperature_C": 30}, False),
    ({"water_class": "W32", "supply_temperature_C": 35}, True),
    ({"water_class": "W17", "supply_temperature_C": 1}, True),
    ({"water_class": "W+", "supply_temperature_C": 50}, False),
    ({"water_class": "W+", "supply_temperature_C": 40}, True),
])
def test_water_class_findings(catalog: Catalog, water: dict[str, Any], fires: bool) -> None:
    assert ("FACILITY-WATER-CLASS" in _rules(_variant(catalog, water))) is fires


def test_air_side_limit_per_rack(
        catalog: Catalog, liquid: System, parts: tuple[float, float, float, float]) -> None:
    modules_W, cpus_W, server_dc_W, _ = parts
    air = facility_plan(liquid).rack.air_W      # 4 x (13.2 kW / eta - 9.6 kW), ~16.9 kW
    assert air == pytest.approx(4 * (server_dc_W / facility_plan(liquid).server.psu_efficiency
                                     - 0.8 * (modules_W + cpus_W)))
    assert "FACILITY-AIR-RACK" not in _rules(liquid)   # default room limit 35 kW
    tight = _variant(catalog, {"air_limit_per_rack": "15 kW"})
    assert "FACILITY-AIR-RACK" in _rules(tight)


def test_in_rack_cdus_per_rack(catalog: Catalog) -> None:
    # 4 x 9.6 kW = 38.4 kW of liquid per rack: one 70 kW in-rack CDU (+1 for N+1)
    plan = facility_plan(_variant(catalog, {"cdu": "vertiv-coolchip-cdu-70"}))
    assert plan.cooling.cdus_per_rack == 2
    assert plan.cooling.cdus == 2 * plan.rack.racks
    assert plan.rack.positions == plan.rack.racks
    assert "FACILITY-CDU-RACK" not in _rules(_variant(catalog, {"cdu": "vertiv-coolchip-cdu-70"}))
    small = _variant(catalog, {"cdu": "vertiv-coolchip-cdu-70", "cdu_capacity": "20 kW",
                               "cdu_redundancy": "N"})
    assert facility_plan(small).cooling.cdus_per_rack == math.ceil(38.4 / 20)
    assert "FACILITY-CDU-RACK" in _rules(small)


def test_air_cooled_system_has_no_liquid_loop(catalog: Catalog) -> None:
    system = load_system(EXAMPLES / "mx1-8oam-air.yaml", catalog)
    plan = facility_plan(system)
    assert plan.liquid_W == 0
    assert plan.cooling.cdus == 0
    assert plan.cooling.flow_kg_per_s == 0
    assert plan.air_W == pytest.approx(plan.it_W)
    assert "FACILITY-WATER-CLASS" not in _rules(system)


# ---- bad input -----------------------------------------------------------------------


def test_unknown_water_class_names_the_allowed_values() -> None:
    with pytest.raises(SpecError) as err:
        validate_as(FacilitySpec, {"water_class": "W99"}, "s.yaml")
    text = str(err.value)
    assert "water_class" in text
    assert "'W17'" in text
    assert "'W+'" in text


def test_w_plus_needs_a_supply_temperature() -> None:
    with pytest.raises(SpecError, match="supply_temperature_C"):
        validate_as(FacilitySpec, {"water_class": "W+"}, "s.yaml")


@pytest.mark.parametrize("field", [{"supply_temperature_C": 120}, {"coolant": "oil"},
                                   {"capture_ratio": 1.5}, {"coolant_delta_T_K": 0},
                                   {"heat_rejection": "river"}, {"cdu_flow": 3}])
def test_bad_facility_fields_are_spec_errors(field: dict[str, Any]) -> None:
    with pytest.raises(SpecError):
        validate_as(FacilitySpec, field, "s.yaml")


def test_unknown_ids_name_the_allowed_ones(catalog: Catalog) -> None:
    with pytest.raises(SpecError) as err:
        facility_plan(_variant(catalog, {"cdu": "nope-cdu"}))
    assert "facility.cdu" in str(err.value)
    assert "'coolit-chx2000'" in str(err.value)
    with pytest.raises(SpecError, match="orv3-hpr"):
        facility_plan(_variant(catalog, {"power_delivery": {"busbar": "orv9"}}))


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5, float("nan")])
def test_it_load_fraction_outside_0_1_is_refused(liquid: System, fraction: float) -> None:
    with pytest.raises(SpecError, match="it_load_fraction"):
        facility_plan(liquid, fraction)


def test_every_table_entry_cites_a_titled_source() -> None:
    data = facility_data()
    entries: list[Any] = [*data.coolants.values(), *data.cdus.values(),
                          *data.capture.values(), *data.psu_curves.values(),
                          *data.busbars.values(), *data.chains.values(),
                          *data.heat_rejection.values(), *data.pue_ranges.values()]
    for entry in entries:
        assert entry.sources
        assert all(s.title and (s.url or s.locator) for s in entry.sources)
    assert set(data.water_classes) == {"W17", "W27", "W32", "W40", "W45", "W+"}


# ---- rack-scale servers (GB200 / GB300 NVL72) bring their own rack -------------------
# The published liquid/air split of the whole rack (MGX spec 85 %, Lenovo GB300 guide
# 90 %) and the busbar of the rack they ship in.


def _racks(catalog: Catalog, server: str, facility: dict[str, Any] | None = None,
           catalog_override: Catalog | None = None) -> System:
    """Four racks of ``server``, one per rack position (a rack block: limits are errors)."""
    data: dict[str, Any] = {
        "name": f"4 x {server}", "server": server, "servers": 4,
        "rack": {"servers_per_rack": 1, "power_limit": "200 kW"},
    }
    if facility is not None:
        data["facility"] = facility
    spec = validate_as(SystemSpec, data, "racks.yaml")
    return resolve_system(spec, catalog_override or catalog, "racks.yaml")


@pytest.mark.parametrize(("server", "entry", "share"), [
    ("gb200-nvl72", "nvl72-class", 0.85), ("gb300-nvl72", "gb300-nvl72", 0.90)])
def test_published_rack_split_applies_to_the_whole_rack(
        catalog: Catalog, server: str, entry: str, share: float) -> None:
    system = _racks(catalog, server)
    assert system.server.capture == entry
    plan = facility_plan(system)
    wall = plan.server.wall_W
    assert plan.cooling.capture_ratio == pytest.approx(share)
    assert plan.cooling.capture_scope == "server"
    # the split of the whole server's heat, supplies and switch trays included
    assert plan.server.liquid_W == pytest.approx(share * wall)
    assert plan.server.air_W == pytest.approx((1.0 - share) * wall)
    assert plan.server.liquid_W + plan.server.air_W == pytest.approx(wall)
    # more than the plated parts alone could give at that share: the rack-level figure is
    # not read as a cold-plate ratio
    plated = plan.server.modules_W + plan.server.cpus_W
    assert plan.server.liquid_W > share * plated


@pytest.mark.parametrize("server", ["gb200-nvl72", "gb300-nvl72"])
def test_nvl72_racks_pass_their_own_rack_checks(catalog: Catalog, server: str) -> None:
    system = _racks(catalog, server)
    plan = facility_plan(system)
    assert plan.rack.air_W < plan.rack.air_limit_W    # 10-15 % of 120-143 kW < 35 kW
    assert plan.rack.busbar == "nvidia-mgx"
    # no published rating: the current is reported, not judged
    assert plan.rack.busbar_rated_A is None
    assert plan.rack.busbar_rated_W is None
    assert plan.rack.busbar_margin is None
    assert plan.rack.busbar_current_A == pytest.approx(plan.rack.dc_W / 48.0)
    assert not {"FACILITY-AIR-RACK", "FACILITY-BUSBAR"} & _rules(system)


def test_a_system_file_busbar_overrides_the_servers(catalog: Catalog) -> None:
    # the same GB300 rack on a 92 kW ORv3 HPR busbar: the file's choice wins and is judged
    system = _racks(catalog, "gb300-nvl72", {"power_delivery": {"busbar": "orv3-hpr"}})
    plan = facility_plan(system)
    assert plan.rack.busbar == "orv3-hpr"
    assert plan.rack.dc_W > 92e3
    found = [f for f in facility_findings(system) if f.rule == "FACILITY-BUSBAR"]
    assert found
    assert all(f.severity == "error" for f in found)


def test_a_system_file_capture_ratio_overrides_the_servers(catalog: Catalog) -> None:
    # a cold-plate ratio written in the file applies to the plated parts only, as before
    system = _racks(catalog, "gb300-nvl72", {"capture_ratio": 0.8})
    plan = facility_plan(system)
    assert plan.cooling.capture_scope == "cold-plated"
    plated = plan.server.modules_W + plan.server.cpus_W
    assert plan.server.liquid_W == pytest.approx(0.8 * plated)
    assert plan.rack.air_W > plan.rack.air_limit_W
    assert "FACILITY-AIR-RACK" in _rules(system)


def test_servers_without_entries_keep_the_facility_defaults(catalog: Catalog) -> None:
    system = _racks(catalog, "amd-mi355x-platform")
    assert system.server.capture is None
    assert system.server.busbar is None
    plan = facility_plan(system)
    data = facility_data()
    assert plan.cooling.capture_ratio == data.capture[data.capture_default].liquid_fraction
    assert plan.cooling.capture_scope == "cold-plated"
    assert plan.rack.busbar == "orv3-hpr"


def test_every_catalog_server_names_known_facility_entries(catalog: Catalog) -> None:
    data = facility_data()
    named = 0
    for entry in catalog.all("server"):
        assert isinstance(entry, Server)
        if entry.capture is not None:
            assert entry.capture in data.capture, entry.id
            named += 1
        if entry.busbar is not None:
            assert entry.busbar in data.busbars, entry.id
            named += 1
    assert named >= 4   # both NVL72 racks name both


@pytest.mark.parametrize(("field", "allowed"), [("capture", "'nvl72-class'"),
                                               ("busbar", "'orv3-hpr'")])
def test_unknown_server_entry_names_the_server_and_the_allowed_ids(
        catalog: Catalog, tmp_path: Path, field: str, allowed: str) -> None:
    data = yaml.safe_load((SERVERS / "gb300-nvl72.yaml").read_text("utf-8"))
    data.update(id="gb300-nvl72-custom", name="GB300 NVL72, custom rack")
    data[field] = "nope"
    (tmp_path / "custom.yaml").write_text(yaml.safe_dump(data), "utf-8")
    extended = load_catalog([tmp_path], use_env=False)
    system = _racks(catalog, "gb300-nvl72-custom", catalog_override=extended)
    with pytest.raises(SpecError) as err:
        facility_plan(system)
    text = str(err.value)
    assert "gb300-nvl72-custom" in text
    assert field in text
    assert allowed in text


# ---- servers larger than a rack (TPU pods catalogued as one system) -------------------
# TPU v4: a 4x4x4 cube of 64 chips per rack (Jouppi et al. ISCA 2023; the scaling book's
# rack figure); v5p's 64-chip cube read the same way; v5e/v6e racks unpublished.


def _pod(catalog: Catalog, server: str, servers: int = 1, rack: dict[str, Any] | None = None,
         **top: Any) -> System:
    data: dict[str, Any] = {"name": f"{servers} x {server}", "server": server,
                            "servers": servers, **top}
    if rack is not None:
        data["rack"] = rack
    spec = validate_as(SystemSpec, data, "pod.yaml")
    return resolve_system(spec, catalog, "pod.yaml")


def test_a_pod_fills_its_racks_evenly(catalog: Catalog) -> None:
    system = _pod(catalog, "tpu-v4-pod")
    plan = facility_plan(system)
    assert system.racks_per_server == plan.rack.racks_per_server == 4096 // 64
    assert plan.rack.racks == 64
    assert plan.rack.chips_per_rack == 64
    # a full rack is 1/64 of the pod: its parts add up to the rack, the racks to the pod
    assert 64 * plan.rack.dc_W == pytest.approx(plan.server.dc_W)
    assert 64 * plan.rack.liquid_W == pytest.approx(plan.server.liquid_W)
    assert sum(w for _, w in plan.rack.by_component) == pytest.approx(plan.rack.wall_W)
    assert plan.rack.dc_W < 92e3            # ORv3 HPR rating; the whole pod is 1.6 MW
    assert not {"FACILITY-AIR-RACK", "FACILITY-BUSBAR"} & _rules(system)
    assert any("fills 64 racks of 64 chips" in n for n in plan.notes)


def test_a_slice_of_a_pod_fills_the_racks_its_chips_need(catalog: Catalog) -> None:
    # an 8x8x8 slice = 512 chips = 8 racks; its rack limit is judged per 64-chip rack
    tight = _pod(catalog, "tpu-v4-pod", 2, {"servers_per_rack": 1, "power_limit": "10 kW"},
                 slice_dims=[8, 8, 8])
    assert tight.racks_per_server == 8
    per_rack = power_budget(tight).server_W / 8
    assert 10e3 < per_rack < 40e3
    found = [f for f in run_rules(tight) if f.rule == "RACK-POWER"]
    assert len(found) == 1
    assert "a rack of 64 chips draws" in found[0].message
    roomy = _pod(catalog, "tpu-v4-pod", 2, {"servers_per_rack": 1, "power_limit": "40 kW"},
                 slice_dims=[8, 8, 8])
    assert not [f for f in run_rules(roomy) if f.rule == "RACK-POWER"]
    assert facility_plan(roomy).rack.racks == 16
    small = _pod(catalog, "tpu-v4-pod", slice_dims=[4, 4, 2])   # 32 chips: within a rack
    assert small.racks_per_server == 1
    assert small.rack_share == 1.0


def test_a_rack_block_cannot_share_a_rack_between_pods(catalog: Catalog) -> None:
    with pytest.raises(SpecError) as err:
        _pod(catalog, "tpu-v5p-pod", 2, {"servers_per_rack": 2, "power_limit": "100 kW"})
    text = str(err.value)
    assert "rack.servers_per_rack" in text
    assert "tpu-v5p-pod" in text
    assert "96 racks of 64 chips" in text
    assert "allowed: 1" in text


@pytest.mark.parametrize("server", ["tpu-v5e-pod", "tpu-v6e-pod"])
def test_racks_of_unpublished_size_are_not_judged(catalog: Catalog, server: str) -> None:
    system = _pod(catalog, server, 1, {"servers_per_rack": 1, "power_limit": "10 kW"})
    plan = facility_plan(system)
    assert system.racks_per_server is None
    assert plan.rack.racks_per_server is None
    # judged as one rack, the pod would fail the room's air side: that is what is withheld
    assert plan.rack.air_W > plan.rack.air_limit_W
    rules = {f.rule for f in system_findings(system)}
    assert not {"FACILITY-AIR-RACK", "FACILITY-BUSBAR", "RACK-POWER"} & rules
    assert "FACILITY-RACK-UNPUBLISHED" in rules
    assert plan.rack.holds() == "a server (rack size unpublished)"
    assert plan.rack.busbar_margin is None      # no margin is claimed for an unknown rack
