"""Rack-scale servers (GB200 / GB300 NVL72) carry their own rack: the liquid/air split their
makers publish for the whole rack, and the busbar of the rack they ship in.

Expected numbers are worked out from the catalog's capture entries (MGX spec 85 %, Lenovo's
GB300 NVL72 guide 90 % of the rack's heat) and the plan's own wall power, not copied from
the code's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.catalog.schema import Server
from ocplan.catalog.system import System, SystemSpec, resolve_system
from ocplan.errors import SpecError
from ocplan.facility import facility_data, facility_findings, facility_plan

SERVERS = Path(__file__).resolve().parents[1] / "src" / "ocplan" / "catalog" / "data" / "servers"


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(use_env=False)


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


def _rules(system: System) -> set[str]:
    return {f.rule for f in facility_findings(system)}


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
