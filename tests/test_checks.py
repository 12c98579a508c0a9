"""Compliance rules: for every rule a system that breaks it and one that passes.

Every system here is built from a small user catalog written to ``tmp_path`` (ids start
with ``t-``), so the expected numbers follow from the YAML values written below and not
from the built-in catalog. The baseline system meets every rule:

- module: OAM 1.5, 600 W on 54 V, 7 x16 ports at 56 Gb/s, PCIe Gen5 x16;
- board: 8-slot fully connected UBB, x16 links up to 112 Gb/s, 1000 W slots,
  PCIe switches with 576 lanes and 128 uplink lanes;
- server: 2 x t-cpu (80 lanes, 300 W each), 8 x t-nic (400 Gb/s, Gen5 x16, 25 W) behind
  the board switches, 4 x 3000 W supplies N+1, 2000 W other power, air, 700 W per slot;
- system: 16 servers on t-fab (400 Gb/s, radix 64), 4 servers per 40 kW rack.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.system import load_system
from ocplan.checks.rules import RULES, Finding, refusal, run_rules
from ocplan.cli.main import main
from ocplan.errors import SpecError

SOURCE = [{"title": "ocplan test fixture", "covers": ["*"]}]

# Nameplate power of the baseline server, from the values written below:
# 8 modules x 600 W + 2 CPUs x 300 W + 8 NICs x 25 W + 2000 W other.
BASE_SERVER_W = 8 * 600 + 2 * 300 + 8 * 25 + 2000  # 7600 W


def _accelerator() -> dict[str, Any]:
    return {
        "kind": "accelerator", "id": "t-oam", "name": "Test OAM module", "vendor": "Test",
        "form_factor": "oam", "oam_version": "1.5", "launch_year": 2024,
        "peak_flops": {"bf16": "500 TFLOP/s"},
        "memory": {"hbm_capacity": "96 GB", "hbm_bandwidth": "3 TB/s", "hbm_type": "HBM3"},
        "scale_up": {"fabric": "test-link", "ports": 7, "lanes_per_port": 16,
                     "lane_rate": "56 Gb/s", "port_bandwidth": "50 GB/s"},
        "host": {"kind": "pcie", "gen": 5, "lanes": 16},
        "power": {"tdp": "600 W", "rail": "54 V"},
        "cooling": ["air", "liquid"],
        "sources": SOURCE,
    }


def _baseboard() -> dict[str, Any]:
    return {
        "kind": "baseboard", "id": "t-ubb", "name": "Test UBB 8 fully connected",
        "standard": "ubb", "slots": 8, "topology": "fully_connected",
        "max_lanes_per_link": 16, "max_lane_rate": "112 Gb/s",
        "host_uplink": {"pcie_gen": 5, "lanes": 128, "switch_lanes": 576},
        "slot_power_max": "1000 W", "rail": "54 V",
        "sources": SOURCE,
    }


def _cpu() -> dict[str, Any]:
    return {
        "kind": "cpu", "id": "t-cpu", "name": "Test CPU", "vendor": "Test",
        "codename": "Testlake", "isa": "x86-64", "launch_year": 2024, "cores": 64,
        "threads": 128, "base_clock": "2 GHz", "memory_channels": 8,
        "memory_type": "DDR5-4800", "memory_bandwidth": "307.2 GB/s", "pcie_lanes": 80,
        "pcie_gen": 5, "tdp": "300 W",
        "sources": SOURCE,
    }


def _nic(nic_id: str = "t-nic", rate: str = "400 Gb/s", gen: int = 5) -> dict[str, Any]:
    return {
        "kind": "nic", "id": nic_id, "name": f"Test NIC {rate}", "vendor": "Test",
        "protocol": "roce", "ports": 1, "port_bandwidth": rate,
        "host": {"kind": "pcie", "gen": gen, "lanes": 16}, "power": "25 W",
        "sources": SOURCE,
    }


def _fabric() -> dict[str, Any]:
    return {
        "kind": "fabric", "id": "t-fab", "name": "Test RoCE 400G", "protocol": "roce",
        "link_bandwidth": "400 Gb/s",
        "switch": {"name": "Test switch", "radix": 64, "power": "1000 W"},
        "hop_latency": "1 us", "nic": "t-nic", "achievable_fraction": 0.9,
        "sources": SOURCE,
    }


def _server() -> dict[str, Any]:
    return {
        "kind": "server", "id": "t-srv", "name": "Test 8-OAM server", "vendor": "Test",
        "baseboard": "t-ubb", "accelerator": "t-oam", "accelerators": 8,
        "host": {"cpu": "t-cpu", "sockets": 2},
        "nics": [{"nic": "t-nic", "count": 8, "attach": "pcie-switch"}],
        "default_fabric": "t-fab",
        "power_supplies": {"count": 4, "rating": "3000 W", "redundancy": "N+1"},
        "other_power": "2000 W", "cooling": "air", "air_module_power_max": "700 W",
        "sources": SOURCE,
    }


def _system() -> dict[str, Any]:
    return {
        "name": "test cluster", "server": "t-srv", "servers": 16,
        "scale_out": {"fabric": "t-fab", "nics_per_server": 8},
        "rack": {"servers_per_rack": 4, "power_limit": "40 kW"},
    }


def _entries() -> dict[str, dict[str, Any]]:
    return {"accelerator": _accelerator(), "baseboard": _baseboard(), "cpu": _cpu(),
            "nic": _nic(), "fabric": _fabric(), "server": _server()}


Edit = Callable[[dict[str, dict[str, Any]], dict[str, Any]], None]


def _write(tmp_path: Path, edit: Edit | None = None,
           extra: Sequence[dict[str, Any]] = ()) -> tuple[Path, Path]:
    """Write the (edited) test catalog and system; return (catalog dir, system file)."""
    entries = copy.deepcopy(_entries())
    system = _system()
    if edit is not None:
        edit(entries, system)
    folder = tmp_path / "catalog"
    folder.mkdir(exist_ok=True)
    for entry in [*entries.values(), *extra]:
        (folder / f"{entry['id']}.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    path = tmp_path / "system.yaml"
    path.write_text(yaml.safe_dump(system), encoding="utf-8")
    return folder, path


def _findings(tmp_path: Path, edit: Edit | None = None,
              extra: Sequence[dict[str, Any]] = ()) -> list[Finding]:
    folder, path = _write(tmp_path, edit, extra)
    catalog = load_catalog([folder], use_env=False)
    return run_rules(load_system(path, catalog))


def _of(findings: list[Finding], rule: str, severity: str | None = None) -> list[Finding]:
    return [f for f in findings if f.rule == rule and (severity is None or f.severity == severity)]


# ---- the baseline --------------------------------------------------------------------


def test_baseline_meets_every_rule(tmp_path: Path) -> None:
    assert _findings(tmp_path) == []


def test_every_rule_is_covered_here() -> None:
    # A rule added to RULES without a test below should be noticed.
    names = {rule.__name__ for rule in RULES}
    assert names == {"form_factor", "oam_rail_power", "chassis_cooling", "integrated_nic",
                     "air_cooling", "power_cap",
                     "slot_power",
                     "board_slots",
                     "topology_ports", "link_rate", "host_lanes", "nic_host_bandwidth",
                     "server_power", "rack_power", "scale_out_fabric"}


# ---- FORM-FACTOR ---------------------------------------------------------------------


def test_sxm_module_on_an_oam_ubb_is_an_error(tmp_path: Path) -> None:
    """QA A: an SXM module on an OAM UBB passed every rule when its numbers fitted."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["form_factor"] = "sxm"
        del e["accelerator"]["oam_version"]

    found = _of(_findings(tmp_path, edit), "FORM-FACTOR")
    assert [(f.severity, f.subject) for f in found] == [("error", "t-oam")]
    assert found[0].message == ("t-oam is an SXM module (NVIDIA's form factor); the t-srv "
                                "baseboard's slots (t-ubb) take OAM modules (OCP OAM)")
    assert "OAM base specification" in found[0].section


def test_custom_board_names_the_form_factor_it_takes(tmp_path: Path) -> None:
    """A custom board fixes no form factor: ``module_form_factor`` names it, and a
    module of that form passes; without it the rule says it could not check."""
    def named(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["standard"] = "custom"
        e["baseboard"]["module_form_factor"] = "oam"

    assert _of(_findings(tmp_path, named), "FORM-FACTOR") == []

    def unnamed(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["standard"] = "custom"

    other = tmp_path / "unnamed"
    other.mkdir()
    found = _of(_findings(other, unnamed), "FORM-FACTOR")
    assert [f.severity for f in found] == ["warning"]
    assert "not checked" in found[0].message


def test_board_form_factor_contradicting_its_standard_is_refused(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["module_form_factor"] = "sxm"

    folder, _ = _write(tmp_path, edit)
    with pytest.raises(SpecError, match="contradicts standard 'ubb'"):
        load_catalog([folder], use_env=False)


@pytest.mark.parametrize(("server", "chip", "takes"), [
    ("mx1", "a100-sxm-80gb", "OAM modules (OCP OAM 1.0)"),
    ("amd-mi355x-platform", "h100-sxm-80gb", "OAM modules (OCP OAM 2.0)"),
    ("mx1", "tpu-v5e", "OAM modules (OCP OAM 1.0)"),
    ("dgx-h100", "gaudi3", "SXM modules (NVIDIA's form factor)"),
])
def test_cli_check_refuses_a_module_the_slots_do_not_take(
        server: str, chip: str, takes: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """QA A: ``server: mx1`` with ``accelerator: a100-sxm-80gb`` gave 0 errors; H100 or
    Gaudi 3 on the wrong board was caught only by LINK-RATE, a TPU only by ports."""
    path = tmp_path / "system.yaml"
    path.write_text(f"name: t\nserver: {server}\naccelerator: {chip}\nservers: 1\n",
                    encoding="utf-8")
    code = main(["check", str(path), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    found = [f for f in data["findings"] if f["rule"] == "FORM-FACTOR"]
    assert len(found) == 1
    assert found[0]["severity"] == "error"
    assert found[0]["message"].startswith(f"{chip} is ")
    assert found[0]["message"].endswith(f"take {takes}")


def test_every_catalog_server_takes_its_own_module() -> None:
    """No server of the built-in catalog fails FORM-FACTOR with the module it ships."""
    from ocplan.catalog.schema import Server
    from ocplan.catalog.system import system_for_chip
    from ocplan.checks.rules import form_factor

    catalog = load_catalog(use_env=False)
    for server in catalog.all("server"):
        assert isinstance(server, Server)
        if server.accelerator is None:
            continue
        system = system_for_chip(catalog, server.accelerator, 1, server_id=server.id)
        assert form_factor(system) == [], server.id


# ---- CHASSIS-COOLING -----------------------------------------------------------------


def test_liquid_cooling_on_an_air_chassis_is_an_error(tmp_path: Path) -> None:
    """Issue 11: ``cooling: liquid`` on an air-only chassis passed silently."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["cooling"] = "liquid"

    found = _of(_findings(tmp_path, edit), "CHASSIS-COOLING")
    assert [f.severity for f in found] == ["error"]
    assert "air-cooled chassis" in found[0].message

    def liquid_chassis(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["cooling"] = "liquid"
        e["server"]["cooling"] = "liquid"
        e["accelerator"]["cooling"] = ["air"]

    other = tmp_path / "liquid"  # a catalog folder of its own (catalogs are cached)
    other.mkdir()
    found = _of(_findings(other, liquid_chassis), "CHASSIS-COOLING")
    assert len(found) == 1
    assert "cooling only" in found[0].message


# ---- INTEGRATED-NIC ------------------------------------------------------------------


def test_server_nics_replacing_integrated_ports_are_said(tmp_path: Path) -> None:
    """Issue 11: nics_per_server on a chip with integrated scale-out ports (Gaudi 3)
    silently replaced them (75 -> 25 GB/s per chip)."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["integrated_nic"] = {"ports": 3, "port_bandwidth": "25 GB/s",
                                              "protocol": "roce"}

    found = _of(_findings(tmp_path, edit), "INTEGRATED-NIC", "warning")
    assert len(found) == 1
    assert "75 GB/s per chip" in found[0].message or "instead of 75 GB/s" in found[0].message

    def integrated_only(e: dict[str, Any], s: dict[str, Any]) -> None:
        edit(e, s)
        s["scale_out"].pop("nics_per_server")

    other = tmp_path / "own-ports"
    other.mkdir()
    assert _of(_findings(other, integrated_only), "INTEGRATED-NIC") == []


# ---- OAM-RAIL-POWER ------------------------------------------------------------------


def test_oam_rail_power_over_oam10_48v_limit(tmp_path: Path) -> None:
    # OAM 1.0 on a 48/54 V rail: 700 W at most.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["oam_version"] = "1.0"
        e["accelerator"]["power"]["tdp"] = "701 W"

    found = _of(_findings(tmp_path, edit), "OAM-RAIL-POWER")
    assert [f.severity for f in found] == ["error"]
    assert "700 W" in found[0].message
    assert found[0].subject == "t-oam"


def test_oam_rail_power_at_oam10_limit_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["oam_version"] = "1.0"
        e["accelerator"]["power"]["tdp"] = "700 W"
        s["cooling"] = "liquid"

    assert _of(_findings(tmp_path, edit), "OAM-RAIL-POWER") == []


def test_oam_rail_power_12v_limit_is_350w(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["oam_version"] = "1.0"
        e["accelerator"]["power"] = {"tdp": "400 W", "rail": "12 V"}

    found = _of(_findings(tmp_path, edit), "OAM-RAIL-POWER", "error")
    assert len(found) == 1
    assert "350 W" in found[0].message


def test_oam_rail_voltage_outside_every_window(tmp_path: Path) -> None:
    # OAM 1.5 has only the 44-59.5 V main rail; 24 V is in no window.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["rail"] = "24 V"

    found = _of(_findings(tmp_path, edit), "OAM-RAIL-POWER", "error")
    assert len(found) == 1
    assert "24 V" in found[0].message


def test_oam_rail_power_ignores_non_oam_modules(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["form_factor"] = "sxm"
        del e["accelerator"]["oam_version"]
        e["accelerator"]["power"]["rail"] = "24 V"

    assert _of(_findings(tmp_path, edit), "OAM-RAIL-POWER") == []


# ---- AIR-COOLING ---------------------------------------------------------------------


def test_air_cooling_over_chassis_slot_rating(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["tdp"] = "701 W"

    found = _of(_findings(tmp_path, edit), "AIR-COOLING")
    assert [f.severity for f in found] == ["error"]
    assert "700 W" in found[0].message


def test_air_cooling_at_chassis_slot_rating_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["tdp"] = "700 W"

    assert _of(_findings(tmp_path, edit), "AIR-COOLING") == []


def test_air_cooling_takes_the_lowest_limit(tmp_path: Path) -> None:
    # Module 550 W, its air profile 500 W (which an air-cooled system runs it at), the
    # chassis removes 480 W per slot: the lowest limit decides.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["tdp"] = "550 W"
        e["accelerator"]["power"]["air_max_tdp"] = "500 W"
        e["server"]["air_module_power_max"] = "480 W"

    found = _of(_findings(tmp_path, edit), "AIR-COOLING", "error")
    assert len(found) == 1
    assert "500 W exceeds" in found[0].message
    assert "480 W" in found[0].message


def test_an_air_system_runs_a_module_at_its_air_profile(tmp_path: Path) -> None:
    # Module 550 W with a 500 W air profile in a 700 W air chassis: no finding (the
    # module runs at 500 W there), where it used to be an error against 550 W.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["tdp"] = "550 W"
        e["accelerator"]["power"]["air_max_tdp"] = "500 W"

    assert _of(_findings(tmp_path, edit), "AIR-COOLING", "error") == []


def test_air_cooling_oam10_guidance(tmp_path: Path) -> None:
    # OAM 1.0 guidance (about 440 W in air) applies when neither the chassis nor the
    # module gives an air rating ...
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["oam_version"] = "1.0"
        e["accelerator"]["power"]["tdp"] = "450 W"
        e["server"].pop("air_module_power_max", None)

    found = _of(_findings(tmp_path, edit), "AIR-COOLING", "error")
    assert len(found) == 1
    assert "440 W" in found[0].message


def test_a_chassis_air_rating_wins_over_the_oam_guidance(tmp_path: Path) -> None:
    # ... but a chassis rated to air-cool 700 W modules (as the Supermicro Gaudi 2 server
    # air-cools 600 W OAM 1.1 modules) is the measured fact: no error at 450 W.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["oam_version"] = "1.0"
        e["accelerator"]["power"]["tdp"] = "450 W"
        e["server"]["air_module_power_max"] = "700 W"

    assert _of(_findings(tmp_path, edit), "AIR-COOLING", "error") == []


def test_air_cooling_liquid_only_module_in_air_chassis(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["cooling"] = ["liquid"]

    found = _of(_findings(tmp_path, edit), "AIR-COOLING", "error")
    assert len(found) == 1
    assert "liquid" in found[0].message


def test_air_cooling_not_checked_when_system_is_liquid(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["tdp"] = "900 W"
        e["accelerator"]["cooling"] = ["liquid"]
        s["cooling"] = "liquid"

    assert _of(_findings(tmp_path, edit), "AIR-COOLING") == []


# ---- POWER-CAP -----------------------------------------------------------------------


def test_power_cap_above_the_module_power_has_no_effect(tmp_path: Path) -> None:
    """QA I: a cap above TDP (900 W on a 600 W module) was a silent no-op."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["power_cap"] = "900 W"

    found = _of(_findings(tmp_path, edit), "POWER-CAP")
    assert [f.severity for f in found] == ["warning"]
    assert found[0].message == "t-oam: power_cap 900 W has no effect (TDP 600 W)"


def test_power_cap_above_the_air_rating_has_no_effect_either(tmp_path: Path) -> None:
    """Air-cooled, the module runs at its air rating (500 W): a 550 W cap, below TDP,
    still changes nothing."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["power"]["air_max_tdp"] = "500 W"
        s["power_cap"] = "550 W"

    found = _of(_findings(tmp_path, edit), "POWER-CAP")
    assert [f.message for f in found] == [
        "t-oam: power_cap 550 W has no effect (TDP 600 W; it runs at 500 W in this system)"]


def test_power_cap_below_the_lowest_vendor_limit_warns(tmp_path: Path) -> None:
    """QA I: 5 W on a Gaudi gave no finding. The floor is 20 % of TDP (NVIDIA B200:
    200 W of 1000 W), 120 W here: 119 W warns, 120 W and 500 W do not."""
    def cap(watts: str) -> Edit:
        def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
            s["power_cap"] = watts
        return edit

    found = _of(_findings(tmp_path, cap("5 W")), "POWER-CAP")
    assert [f.severity for f in found] == ["warning"]
    assert found[0].message.startswith("t-oam: power_cap 5 W is below 120 W, 20% of its "
                                       "600 W TDP")
    assert "NVIDIA" in found[0].section
    for i, watts in enumerate(("119 W", "120 W", "500 W")):
        folder = tmp_path / f"cap{i}"   # a catalog folder of its own (catalogs are cached)
        folder.mkdir()
        found = _of(_findings(folder, cap(watts)), "POWER-CAP")
        assert len(found) == (1 if watts == "119 W" else 0), watts


# ---- SLOT-POWER ----------------------------------------------------------------------


def test_slot_power_over_board_slot(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["slot_power_max"] = "599 W"

    found = _of(_findings(tmp_path, edit), "SLOT-POWER")
    assert [f.severity for f in found] == ["error"]
    assert found[0].subject == "t-ubb"


def test_slot_power_at_board_slot_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["slot_power_max"] = "600 W"

    assert _of(_findings(tmp_path, edit), "SLOT-POWER") == []


# ---- BOARD-SLOTS ---------------------------------------------------------------------


def test_board_slots_more_modules_than_slots(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["accelerators_per_server"] = 9

    found = _of(_findings(tmp_path, edit), "BOARD-SLOTS")
    assert [f.severity for f in found] == ["error"]
    assert "9 modules" in found[0].message
    assert "8 slots" in found[0].message


def test_board_slots_partly_populated_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["accelerators_per_server"] = 4

    assert _of(_findings(tmp_path, edit), "BOARD-SLOTS") == []


# ---- TOPOLOGY-PORTS ------------------------------------------------------------------


def test_topology_ports_fully_connected_8_needs_7(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["scale_up"]["ports"] = 6

    found = _of(_findings(tmp_path, edit), "TOPOLOGY-PORTS")
    assert [f.severity for f in found] == ["error"]
    assert "needs 7" in found[0].message
    assert "has 6" in found[0].message


def test_topology_ports_fully_connected_7_needs_6(tmp_path: Path) -> None:
    # Seven modules fully connected: each needs 7 - 1 = 6 ports.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["scale_up"]["ports"] = 6
        s["accelerators_per_server"] = 7

    assert _of(_findings(tmp_path, edit), "TOPOLOGY-PORTS") == []


def test_topology_ports_links_per_pair_multiply(tmp_path: Path) -> None:
    # Three ports per peer (Gaudi style): 7 peers x 3 = 21 ports.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["links_per_pair"] = 3
        e["accelerator"]["scale_up"]["ports"] = 20

    found = _of(_findings(tmp_path, edit), "TOPOLOGY-PORTS", "error")
    assert len(found) == 1
    assert "needs 21" in found[0].message


def test_topology_ports_module_without_published_scale_up(tmp_path: Path) -> None:
    """No ``scale_up`` block means the module's links are not published (BR100, Max 1550,
    Enflame T21 are OAM modules with links of their own): not checked, not zero ports."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        del e["accelerator"]["scale_up"]

    findings = _findings(tmp_path, edit)
    assert _of(findings, "TOPOLOGY-PORTS", "error") == []
    found = _of(findings, "TOPOLOGY-PORTS", "warning")
    assert len(found) == 1
    assert "publishes no scale-up ports" in found[0].message
    assert "needs 7" in found[0].message


def test_topology_ports_hybrid_cube_mesh_needs_6(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["topology"] = "hybrid_cube_mesh_6"
        e["accelerator"]["scale_up"]["ports"] = 6

    assert _of(_findings(tmp_path, edit), "TOPOLOGY-PORTS") == []


# ---- LINK-LANES / LINK-RATE ----------------------------------------------------------


def test_link_lanes_wider_than_board(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["max_lanes_per_link"] = 8

    findings = _findings(tmp_path, edit)
    found = _of(findings, "LINK-LANES")
    assert [f.severity for f in found] == ["error"]
    assert "x16" in found[0].message
    assert "x8" in found[0].message
    assert _of(findings, "LINK-RATE") == []


def test_link_lanes_equal_width_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["scale_up"]["lanes_per_port"] = 8
        e["baseboard"]["max_lanes_per_link"] = 8

    assert _of(_findings(tmp_path, edit), "LINK-LANES") == []


def test_link_rate_faster_than_board(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["scale_up"]["lane_rate"] = "112 Gb/s"
        e["baseboard"]["max_lane_rate"] = "56 Gb/s"

    findings = _findings(tmp_path, edit)
    found = _of(findings, "LINK-RATE")
    assert [f.severity for f in found] == ["error"]
    assert _of(findings, "LINK-LANES") == []


def test_link_rate_equal_to_board_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["accelerator"]["scale_up"]["lane_rate"] = "112 Gb/s"

    assert _of(_findings(tmp_path, edit), "LINK-RATE") == []


# ---- HOST-LANES ----------------------------------------------------------------------


def test_host_lanes_error_behind_board_switches(tmp_path: Path) -> None:
    # 8 x16 modules + 8 x16 NICs = 256 lanes behind switches of 256 lanes, 128 of
    # which go up to the CPUs: 128 downstream lanes.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["host_uplink"]["switch_lanes"] = 256

    found = _of(_findings(tmp_path, edit), "HOST-LANES", "error")
    assert len(found) == 1
    assert "256 device lanes" in found[0].message
    assert "128 downstream" in found[0].message


def test_host_lanes_notes_a_shared_uplink(tmp_path: Path) -> None:
    # 256 device lanes over 64 uplink lanes: 4:1, above 2:1: noted (reference designs
    # share 4:1 on purpose), neither a warning nor an error.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["host_uplink"]["lanes"] = 64

    findings = _findings(tmp_path, edit)
    found = _of(findings, "HOST-LANES", "info")
    assert len(found) == 1
    assert "4.0:1" in found[0].message
    assert _of(findings, "HOST-LANES", "warning") == []
    assert _of(findings, "HOST-LANES", "error") == []


def test_host_lanes_two_to_one_is_not_a_warning(tmp_path: Path) -> None:
    # The baseline: 256 device lanes over 128 uplink lanes, exactly 2:1.
    assert _of(_findings(tmp_path), "HOST-LANES") == []


def test_host_lanes_error_on_cpu_without_board_switches(tmp_path: Path) -> None:
    # No board switches: 8 x 16 + 8 x 16 = 256 lanes straight on 2 x 80 = 160 CPU lanes.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["host_uplink"]["switch_lanes"] = 0

    found = _of(_findings(tmp_path, edit), "HOST-LANES", "error")
    assert len(found) == 1
    assert "256 lanes" in found[0].message
    assert "160" in found[0].message
    assert found[0].subject == "t-srv"


def test_host_lanes_cpu_enough_without_board_switches(tmp_path: Path) -> None:
    # 256 lanes on 2 x 128 = 256 CPU lanes: exactly enough.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["host_uplink"]["switch_lanes"] = 0
        e["cpu"]["pcie_lanes"] = 128

    assert _of(_findings(tmp_path, edit), "HOST-LANES") == []


def test_host_lanes_cpu_attached_nics_add_to_uplink(tmp_path: Path) -> None:
    # 128 uplink lanes + 8 x16 NICs on the CPUs = 256 lanes > 160.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["nics"][0]["attach"] = "cpu"

    found = _of(_findings(tmp_path, edit), "HOST-LANES", "error")
    assert len(found) == 1
    assert "256 lanes" in found[0].message


def _nic_switch(uplink: int) -> Edit:
    """No board switches: 8 x16 modules on the CPUs, 8 x16 NICs behind switches of the
    server's own whose uplinks take ``uplink`` host lanes (an Aurora-style node)."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["host_uplink"]["switch_lanes"] = 0
        e["server"]["nic_switch_uplink_lanes"] = uplink
    return edit


def test_host_lanes_charge_a_nic_switch_uplink_not_the_nics(tmp_path: Path) -> None:
    # 128 module lanes + 32 uplink lanes = 160 = 2 x 80: fits, and 128 NIC lanes over 32
    # uplink lanes (4:1) is noted; one uplink lane more is an error naming 161.
    (tmp_path / "fits").mkdir()
    (tmp_path / "over").mkdir()
    fits = _findings(tmp_path / "fits", _nic_switch(32))
    assert _of(fits, "HOST-LANES", "error") == []
    shared = _of(fits, "HOST-LANES", "info")
    assert len(shared) == 1
    assert "4.0:1" in shared[0].message
    over = _of(_findings(tmp_path / "over", _nic_switch(33)), "HOST-LANES", "error")
    assert len(over) == 1
    assert "161 lanes" in over[0].message


def _epyc_direct(link: int | None, nics: int = 8, sockets: int = 2,
                 server_link: int | None = None, hosts: int = 1) -> Edit:
    """Devices straight on the CPUs (no board switches); a 128-lane CPU whose socket links
    take ``link`` lanes per socket (EPYC xGMI with four links: 64)."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["host_uplink"]["switch_lanes"] = 0
        e["cpu"]["pcie_lanes"] = 128
        if link is not None:
            e["cpu"]["socket_link_lanes"] = link
        e["server"]["host"]["sockets"] = sockets
        e["server"]["hosts"] = hosts
        if server_link is not None:
            e["server"]["host"]["socket_link_lanes"] = server_link
        e["server"]["nics"][0]["count"] = nics
    return edit


def test_host_lanes_two_socket_xgmi_offers_128(tmp_path: Path) -> None:
    # 8 x16 modules + 8 x16 NICs = 256 lanes on 2 x (128 - 64) = 128: the four xGMI
    # links take half of each socket's lanes, and the message says so.
    found = _of(_findings(tmp_path, _epyc_direct(64)), "HOST-LANES", "error")
    assert len(found) == 1
    assert "256 lanes" in found[0].message
    assert "offer 128" in found[0].message
    assert "64 lanes per socket carry the socket links" in found[0].message


def test_host_lanes_two_socket_xgmi_at_128_passes(tmp_path: Path) -> None:
    # Modules only: 8 x16 = 128 lanes on exactly 2 x (128 - 64).
    assert _of(_findings(tmp_path, _epyc_direct(64, nics=0)), "HOST-LANES") == []


def test_host_lanes_three_link_board_offers_160(tmp_path: Path) -> None:
    # The server wires three xGMI links (48 lanes): 2 x (128 - 48) = 160 offered, so
    # 128 module lanes + 2 x16 NICs = 160 fit and a third NIC (176) does not.
    (tmp_path / "fits").mkdir()
    (tmp_path / "over").mkdir()
    fits = _findings(tmp_path / "fits", _epyc_direct(64, nics=2, server_link=48))
    assert _of(fits, "HOST-LANES") == []
    over = _of(_findings(tmp_path / "over", _epyc_direct(64, nics=3, server_link=48)),
               "HOST-LANES", "error")
    assert len(over) == 1
    assert "176 lanes" in over[0].message
    assert "offer 160" in over[0].message
    assert "48 lanes per socket" in over[0].message


def test_host_lanes_one_socket_loses_nothing(tmp_path: Path) -> None:
    # One socket has no socket links: all 128 lanes are offered, and an overload names
    # no socket links.
    (tmp_path / "fits").mkdir()
    (tmp_path / "over").mkdir()
    fits = _findings(tmp_path / "fits", _epyc_direct(64, nics=0, sockets=1))
    assert _of(fits, "HOST-LANES") == []
    found = _of(_findings(tmp_path / "over", _epyc_direct(64, nics=1, sockets=1)),
                "HOST-LANES", "error")
    assert len(found) == 1
    assert "144 lanes" in found[0].message
    assert "offer 128" in found[0].message
    assert "socket links" not in found[0].message


def test_host_lanes_one_socket_per_host_node_loses_nothing(tmp_path: Path) -> None:
    # Two sockets in two one-socket host nodes: no socket links, 2 x 128 = 256 offered.
    edit = _epyc_direct(64, sockets=2, hosts=2)
    assert _of(_findings(tmp_path, edit), "HOST-LANES") == []


@pytest.mark.parametrize("link", [0, None], ids=["upi-0", "unpublished"])
def test_host_lanes_intel_host_loses_nothing(tmp_path: Path, link: int | None) -> None:
    # UPI has lanes of its own (0), and an unpublished link count takes none either:
    # 256 device lanes on 2 x 128 = 256 fit exactly.
    assert _of(_findings(tmp_path, _epyc_direct(link)), "HOST-LANES") == []


# ---- NIC-PCIE ------------------------------------------------------------------------


def test_nic_pcie_gen4_x16_below_400g(tmp_path: Path) -> None:
    # Gen4 x16 = 31.5 GB/s per direction < 400 Gb/s = 50 GB/s.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["nic"]["host"]["gen"] = 4

    found = _of(_findings(tmp_path, edit), "NIC-PCIE")
    assert [f.severity for f in found] == ["warning"]
    assert found[0].subject == "t-nic"


def test_nic_pcie_gen4_x16_carries_200g(tmp_path: Path) -> None:
    # 200 Gb/s = 25 GB/s fits in Gen4 x16.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["nic"]["host"]["gen"] = 4
        e["nic"]["port_bandwidth"] = "200 Gb/s"

    assert _of(_findings(tmp_path, edit), "NIC-PCIE") == []


def test_nic_pcie_checks_the_scale_out_nic_override(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["scale_out"]["nic"] = "t-nic-gen4"

    extra = [_nic("t-nic-gen4", "400 Gb/s", gen=4)]
    assert len(_of(_findings(tmp_path, edit, extra), "NIC-PCIE", "warning")) == 1


# ---- SERVER-POWER --------------------------------------------------------------------


def test_server_power_over_n_plus_n_supplies(tmp_path: Path) -> None:
    # 4 x 3000 W in N+N deliver 6000 W < 7600 W.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["power_supplies"]["redundancy"] = "N+N"

    found = _of(_findings(tmp_path, edit), "SERVER-POWER")
    assert [f.severity for f in found] == ["error"]
    assert "7.6 kW" in found[0].message
    assert "6 kW" in found[0].message


def test_server_power_exactly_at_capacity_passes(tmp_path: Path) -> None:
    # 4 x 1900 W with no redundancy = 7600 W = the server's draw.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["power_supplies"] = {"count": 4, "rating": f"{BASE_SERVER_W // 4} W",
                                         "redundancy": "N"}

    assert _of(_findings(tmp_path, edit), "SERVER-POWER") == []


def test_server_power_one_watt_over(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["power_supplies"] = {"count": 4, "rating": f"{BASE_SERVER_W // 4} W",
                                         "redundancy": "N"}
        e["server"]["other_power"] = "2001 W"

    assert len(_of(_findings(tmp_path, edit), "SERVER-POWER", "error")) == 1


def test_power_estimated_is_info(tmp_path: Path) -> None:
    # a NIC without a power figure is counted at the NIC law's estimate, not 0 W
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        del e["nic"]["power"]

    findings = _findings(tmp_path, edit)
    found = _of(findings, "POWER-ESTIMATED")
    assert [f.severity for f in found] == ["info"]
    assert "t-nic" in found[0].message
    assert "estimated" in found[0].message
    assert _of(findings, "POWER-UNKNOWN") == []
    assert _of(findings, "SERVER-POWER") == []


# ---- RACK-POWER ----------------------------------------------------------------------


def test_rack_power_over_limit(tmp_path: Path) -> None:
    # 4 servers x 7600 W = 30.4 kW > 30 kW.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["rack"]["power_limit"] = "30 kW"

    found = _of(_findings(tmp_path, edit), "RACK-POWER")
    assert [f.severity for f in found] == ["error"]
    assert "30.4 kW" in found[0].message


def test_rack_power_at_limit_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["rack"]["power_limit"] = f"{4 * BASE_SERVER_W} W"

    assert _of(_findings(tmp_path, edit), "RACK-POWER") == []


def test_rack_power_counts_only_servers_that_exist(tmp_path: Path) -> None:
    # Room for 8 per rack but only 2 servers: 2 x 7600 W = 15.2 kW < 20 kW.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["servers"] = 2
        s["rack"] = {"servers_per_rack": 8, "power_limit": "20 kW"}

    assert _of(_findings(tmp_path, edit), "RACK-POWER") == []


# ---- SCALE-OUT / SCALE-OUT-TIERS / NIC-RATE ------------------------------------------


def test_scale_out_servers_without_fabric(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        del s["scale_out"]
        del e["server"]["default_fabric"]

    found = _of(_findings(tmp_path, edit), "SCALE-OUT")
    assert [f.severity for f in found] == ["error"]
    assert "16 servers" in found[0].message


def test_scale_out_servers_without_nics(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["nics"] = []
        del s["scale_out"]["nics_per_server"]

    found = _of(_findings(tmp_path, edit), "SCALE-OUT", "error")
    assert len(found) == 1
    assert "NICs" in found[0].message


def test_scale_out_topology_none_joins_nothing(tmp_path: Path) -> None:
    # 16 servers with no scale-out network are 16 islands, not one system.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["scale_out"]["topology"] = "none"

    assert len(_of(_findings(tmp_path, edit), "SCALE-OUT", "error")) == 1


def test_scale_out_single_server_needs_no_fabric(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["servers"] = 1
        del s["scale_out"]
        del e["server"]["default_fabric"]

    assert _of(_findings(tmp_path, edit), "SCALE-OUT") == []


def test_scale_out_integrated_nics_join_servers(tmp_path: Path) -> None:
    # No server NICs, but the modules have their own scale-out ports (Gaudi style).
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["nics"] = []
        del s["scale_out"]["nics_per_server"]
        e["accelerator"]["integrated_nic"] = {"ports": 1, "port_bandwidth": "400 Gb/s",
                                              "protocol": "roce"}

    assert _of(_findings(tmp_path, edit), "SCALE-OUT") == []


def _plain_fat_tree(radix: int, servers: int) -> Edit:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["fabric"]["switch"]["radix"] = radix
        s["servers"] = servers
        s["scale_out"]["topology"] = "fat-tree"
        del s["rack"]

    return edit


def test_scale_out_tiers_beyond_two_tier_capacity(tmp_path: Path) -> None:
    # A non-blocking two-tier fat tree of radix 16 holds 16**2 / 2 = 128 endpoints;
    # 17 servers x 8 NICs = 136.
    found = _of(_findings(tmp_path, _plain_fat_tree(16, 17)), "SCALE-OUT-TIERS")
    assert [f.severity for f in found] == ["warning"]
    assert "136 endpoints" in found[0].message


def test_scale_out_tiers_at_two_tier_capacity_passes(tmp_path: Path) -> None:
    # 16 servers x 8 NICs = 128 = 16**2 / 2.
    assert _of(_findings(tmp_path, _plain_fat_tree(16, 16)), "SCALE-OUT-TIERS") == []


def test_nic_rate_faster_than_fabric(tmp_path: Path) -> None:
    # 800 Gb/s NICs (Gen6 x16 carries them) on 400 Gb/s links.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["nics"][0]["nic"] = "t-nic800"

    extra = [_nic("t-nic800", "800 Gb/s", gen=6)]
    findings = _findings(tmp_path, edit, extra)
    found = _of(findings, "NIC-RATE")
    assert [f.severity for f in found] == ["warning"]
    assert "800 Gb/s" in found[0].message
    assert _of(findings, "NIC-PCIE") == []


def test_nic_rate_slower_nic_passes(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["nic"]["port_bandwidth"] = "200 Gb/s"

    assert _of(_findings(tmp_path, edit), "NIC-RATE") == []


# ---- ordering ------------------------------------------------------------------------


def test_findings_sorted_errors_first(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["nic"]["host"]["gen"] = 4                      # NIC-PCIE warning
        del e["fabric"]["switch"]["power"]               # POWER-ESTIMATED info
        e["baseboard"]["slot_power_max"] = "500 W"       # SLOT-POWER error
        e["baseboard"]["max_lanes_per_link"] = 8         # LINK-LANES error

    findings = _findings(tmp_path, edit)
    order = {"error": 0, "warning": 1, "info": 2}
    keys = [(order[f.severity], f.rule) for f in findings]
    assert keys == sorted(keys)
    assert [f.rule for f in findings] == ["LINK-LANES", "SLOT-POWER", "NIC-PCIE",
                                          "POWER-ESTIMATED"]


# ---- CLI -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


def _cli_json(capsys: pytest.CaptureFixture[str], folder: Path,
              path: Path) -> tuple[int, dict[str, Any]]:
    code = main(["--catalog", str(folder), "check", str(path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_cli_check_clean_system_exits_0(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    folder, path = _write(tmp_path)
    code, data = _cli_json(capsys, folder, path)
    assert code == 0
    assert data == {"system": "test cluster", "file": str(path), "errors": 0,
                    "warnings": 0, "findings": []}


def test_cli_check_warnings_only_exits_0(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["nic"]["host"]["gen"] = 4

    folder, path = _write(tmp_path, edit)
    code, data = _cli_json(capsys, folder, path)
    assert code == 0
    assert data["errors"] == 0
    assert data["warnings"] == 1
    assert [f["rule"] for f in data["findings"]] == ["NIC-PCIE"]


def test_cli_check_errors_exit_1_json_shape(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["slot_power_max"] = "500 W"           # SLOT-POWER error
        e["server"]["power_supplies"]["redundancy"] = "N+N"  # SERVER-POWER error
        e["nic"]["host"]["gen"] = 4                          # NIC-PCIE warning

    folder, path = _write(tmp_path, edit)
    code, data = _cli_json(capsys, folder, path)
    assert code == 1
    assert set(data) == {"system", "file", "errors", "warnings", "findings"}
    assert data["system"] == "test cluster"
    assert data["file"] == str(path)
    assert data["errors"] == 2
    assert data["warnings"] == 1
    for f in data["findings"]:
        assert set(f) == {"rule", "severity", "message", "section", "subject"}
        assert all(isinstance(v, str) and v for v in f.values())
    assert [(f["rule"], f["severity"]) for f in data["findings"]] == [
        ("SERVER-POWER", "error"), ("SLOT-POWER", "error"), ("NIC-PCIE", "warning")]
    assert data["errors"] == sum(f["severity"] == "error" for f in data["findings"])


def test_cli_check_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["baseboard"]["slot_power_max"] = "500 W"

    folder, path = _write(tmp_path, edit)
    code = main(["--catalog", str(folder), "check", str(path)])
    text = capsys.readouterr().out
    assert code == 1
    assert "SLOT-POWER" in text
    assert "1 error(s), 0 warning(s)" in text


def test_cli_check_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        s["server"] = "t-srvv"

    folder, path = _write(tmp_path, edit)
    code = main(["--catalog", str(folder), "check", str(path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "did you mean 't-srv'" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(("example", "code"), [
    ("mx1-8oam-air.yaml", 0),
    ("ubb-1024-liquid.yaml", 0),
    # 750 W MI300X modules in the 700 W air-cooled NF5698G7 slots.
    ("nf5698g7-mi300x.yaml", 1),
])
def test_cli_check_examples(example: str, code: int,
                            capsys: pytest.CaptureFixture[str]) -> None:
    path = Path(__file__).resolve().parents[1] / "examples" / example
    assert main(["check", str(path), "--format", "json"]) == code
    data = json.loads(capsys.readouterr().out)
    assert (data["errors"] > 0) == (code == 1)


def test_nf5698g7_mi300x_errors(capsys: pytest.CaptureFixture[str]) -> None:
    # MI300X: 750 W; NF5698G7: 700 W slots and air rating; 6 x 3200 W N+N = 9600 W
    # against 8 x 750 + 2 x 350 (Xeon 8592+) + 8 x 25 (ConnectX-7) + 3100 = 10000 W.
    path = Path(__file__).resolve().parents[1] / "examples" / "nf5698g7-mi300x.yaml"
    main(["check", str(path), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    errors = {f["rule"] for f in data["findings"] if f["severity"] == "error"}
    assert errors == {"AIR-COOLING", "SLOT-POWER", "SERVER-POWER"}
    server = next(f for f in data["findings"] if f["rule"] == "SERVER-POWER")
    assert "10 kW" in server["message"]
    assert "9.6 kW" in server["message"]


def test_air_cooling_unknown_rating_warns(tmp_path: Path) -> None:
    # No chassis slot rating, no module air rating, no OAM guidance (v1.5): say so.
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"].pop("air_module_power_max", None)
        e["accelerator"]["oam_version"] = "1.5"

    found = _of(_findings(tmp_path, edit), "AIR-COOLING")
    assert [f.severity for f in found] == ["warning"]
    assert "no air-cooling rating" in found[0].message


def test_air_cooling_in_a_liquid_chassis_is_an_error(tmp_path: Path) -> None:
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["cooling"] = "liquid"
        s["cooling"] = "air"

    found = _of(_findings(tmp_path, edit), "AIR-COOLING", "error")
    assert any("liquid-cooled chassis" in f.message for f in found)


def test_air_cooling_error_is_not_followed_by_an_unknown_rating_warning(
        tmp_path: Path) -> None:
    """QA H1: an air-cooled system on a liquid-only chassis gave the error "no air-cooled
    configuration" and also the warning "no air-cooling rating is known ... verify"."""
    def edit(e: dict[str, Any], s: dict[str, Any]) -> None:
        e["server"]["cooling"] = "liquid"
        e["server"].pop("air_module_power_max", None)
        e["accelerator"]["oam_version"] = "1.5"   # no OAM air guidance either
        s["cooling"] = "air"

    found = _of(_findings(tmp_path, edit), "AIR-COOLING")
    assert [f.severity for f in found] == ["error"]
    assert "no air-cooled configuration" in found[0].message


# ---- power profiles (issue 11) ---------------------------------------------------------


def test_gaudi3_server_passes_check_in_its_air_profile() -> None:
    """Issue 11: the catalog's own Gaudi 3 server failed AIR-COOLING and SLOT-POWER at the
    1.2 kW liquid rating; an air-cooled system runs the module at its 900 W air rating,
    and its power budget says so."""
    from ocplan.catalog.system import system_for_chip
    from ocplan.topology.power import power_budget

    cat = load_catalog(use_env=False)
    system = system_for_chip(cat, "gaudi3", 8)
    assert system.cooling == "air"
    assert system.power_profile == "air"
    assert system.module_power == cat.accelerator("gaudi3").power.air_max_tdp
    assert [f for f in run_rules(system) if f.severity == "error"] == []
    assert power_budget(system).modules_W == 8 * system.module_power


def test_power_clock_law_against_the_published_mi300x_mi325x_pair() -> None:
    """f = f_ref (P / P_ref)^0.6 (compute_units.md 3.6): MI300X's sustained clock at its
    750 W predicts MI325X's at 1000 W within 2 % (same CDNA3 die)."""
    from ocplan.costmodel.chip import power_capped_clock

    cat = load_catalog(use_env=False)
    a, b = cat.accelerator("mi300x"), cat.accelerator("mi325x")
    assert a.compute is not None
    assert b.compute is not None
    assert a.compute.sustained_clock is not None
    assert b.compute.sustained_clock is not None
    predicted = power_capped_clock(a.compute.sustained_clock, b.power.tdp, a.power.tdp)
    assert predicted == pytest.approx(b.compute.sustained_clock, rel=0.02)


def test_a_liquid_gaudi3_runs_its_1200w_profile_faster(tmp_path: Path) -> None:
    from ocplan.catalog.catalog import BUILTIN_DIR
    from ocplan.catalog.system import system_for_chip
    from ocplan.plan.engine import system_model
    from ocplan.plan.estimate import estimate
    from ocplan.plan.plan import Plan
    from ocplan.workloads.shape import ModelShape
    from ocplan.workloads.workload import Workload

    raw = (BUILTIN_DIR / "servers" / "gaudi3-hls3.yaml").read_text(encoding="utf-8")
    server = yaml.safe_load(raw)
    server.update(id="gaudi3-liquid-test", cooling="liquid")
    server.pop("air_module_power_max", None)
    folder = tmp_path / "liquid"
    folder.mkdir()
    (folder / "gaudi3-liquid-test.yaml").write_text(yaml.safe_dump(server), encoding="utf-8")
    cat = load_catalog([folder], use_env=False)
    air = system_for_chip(cat, "gaudi3", 8)
    liquid = system_for_chip(cat, "gaudi3", 8, server_id="gaudi3-liquid-test")
    assert liquid.module_power == cat.accelerator("gaudi3").power.tdp
    assert system_model(liquid).clock_fraction > system_model(air).clock_fraction
    wl = Workload(ModelShape.from_arch(cat.model("llama3-8b")), 4096, 64, "bf16")
    plan = Plan(tp=1, dp=8, micro_batch=1)
    fast, slow = estimate(wl, plan, liquid), estimate(wl, plan, air)
    assert fast.tokens_per_s > slow.tokens_per_s
    assert fast.power_W > slow.power_W


# ---- the refusal line ----------------------------------------------------------------


def test_refusal_counts_checks_and_errors_that_agree_with_the_names() -> None:
    """QA H2: "fails 5 check(s) (AIR-COOLING, LINK-RATE, SERVER-POWER, SLOT-POWER: ...)"
    named 4 rules for 5: the count is of the rules named, the errors beside it."""
    def error(rule: str, message: str = "m") -> Finding:
        return Finding(rule, "error", message, "s", "x")

    two_air = [error("AIR-COOLING", "first"), error("AIR-COOLING"), error("LINK-RATE"),
               error("SERVER-POWER"), error("SLOT-POWER"),
               Finding("NIC-PCIE", "warning", "w", "s", "x")]
    assert refusal(two_air) == ("invalid: the system fails 4 checks with 5 errors "
                                "(AIR-COOLING, LINK-RATE, SERVER-POWER, SLOT-POWER: first); "
                                "see ocplan check")
    assert refusal([error("SLOT-POWER", "over")]) == (
        "invalid: the system fails 1 check (SLOT-POWER: over); see ocplan check")
    assert refusal([Finding("NIC-PCIE", "warning", "w", "s", "x")]) is None
