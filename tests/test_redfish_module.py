"""The Redfish view of CPU compute modules (ocplan.redfish.module_node, issue 12 item 5).

Unit checks of every catalog compute module's tree against the module entry and its
CPU, each figure recomputed here from the entry (sockets, populated DIMMs, the 2DPC
speed, the exported lanes, the power at TDP and the budget); values only a live
controller knows stay ``null``. Conformance: DMTF's redfish-interop-validator against
the OCP UBB Baseline Management profile 2.0.0, on a service holding a DIMM module (two
DIMMs per channel) and a soldered-memory module. A module is not a UBB: the profile's
requirements apply except the resource types of ``MODULE_NOT_APPLICABLE`` (ports),
and the test asserts no other failure on a Mandatory requirement and no failure on a
Supported one but the documented ``PROFILE_GAPS`` and ``MODULE_GAPS``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from ocplan.catalog.catalog import BUILTIN_DIR, Catalog, load_catalog
from ocplan.catalog.schema import ComputeModule, Cpu
from ocplan.catalog.system import System
from ocplan.errors import SpecError
from ocplan.redfish import (
    MODULE_GAPS,
    MODULE_NOT_APPLICABLE,
    PROFILE_GAPS,
    CpuNode,
    Tree,
    cpu_node_tree,
    module_node,
    read_managed,
    service_tree,
)
from ocplan.redfish.odata import dram_bytes
from ocplan.web import redfish_routes
from test_redfish import PROFILE, _failures, _of_type, _refs, _validate

ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = BUILTIN_DIR / "modules"
MIB = 2**20
#: Width of a PCIe root port and the most lanes a Redfish PCIe device states.
X16 = 16


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def modules(catalog: Catalog) -> dict[str, ComputeModule]:
    found = {}
    for entry in catalog.all("compute-module"):
        assert isinstance(entry, ComputeModule)
        found[entry.id] = entry
    return found


@pytest.fixture(scope="module")
def trees(modules: dict[str, ComputeModule], catalog: Catalog) -> dict[str, Tree]:
    return {mid: cpu_node_tree(module_node(m, catalog), mid) for mid, m in modules.items()}


def _cpu(catalog: Catalog, module: ComputeModule) -> Cpu:
    return catalog.get(Cpu, module.cpu)


def _channels(catalog: Catalog, module: ComputeModule) -> int:
    channels = module.memory.channels or _cpu(catalog, module).memory_channels
    assert channels is not None
    return channels


def test_every_catalog_module_has_a_tree(modules: dict[str, ComputeModule],
                                         trees: dict[str, Tree]) -> None:
    assert len(modules) >= 5
    kinds = {m.memory.module_type for m in modules.values()}
    assert {"soldered", "rdimm", "mrdimm"} <= kinds  # every memory kind is exercised
    for mid, tree in trees.items():
        for uri, body in tree.items():
            assert body["@odata.id"] == uri
            for ref in _refs(body):
                assert ref.split("#")[0] in tree, f"{mid}: {uri} points at missing {ref}"
            for member in body.get("Members", []):
                assert member["@odata.id"].rsplit("/", 1)[0] == uri
        chassis = tree[f"/redfish/v1/Chassis/{mid}"]
        assert chassis["ChassisType"] == "Module"
        assert mid in tree[f"/redfish/v1/Systems/{mid}"]["Description"]


def test_processors_sit_in_their_sockets_with_the_tdp_as_limit(
        modules: dict[str, ComputeModule], trees: dict[str, Tree], catalog: Catalog) -> None:
    for mid, module in modules.items():
        cpu = _cpu(catalog, module)
        tree = trees[mid]
        cpus = {uri: body for uri, body in _of_type(tree, "Processor").items()
                if body["ProcessorType"] == "CPU"}
        assert len(cpus) == module.sockets
        locations = sorted(b["Location"]["PartLocation"]["LocationOrdinalValue"]
                           for b in cpus.values())
        assert locations == list(range(module.sockets))
        assert {b["Location"]["PartLocation"]["LocationType"] for b in cpus.values()} == \
            {"Socket"}
        assert {b["TotalCores"] for b in cpus.values()} == {cpu.cores}
        summary = tree[f"/redfish/v1/Systems/{mid}"]["ProcessorSummary"]
        assert summary["CoreCount"] == module.sockets * cpu.cores
        for uri in cpus:
            limit = tree[f"{uri}/EnvironmentMetrics"]["PowerLimitWatts"]
            assert limit["SetPoint"] == limit["AllowableMax"] == cpu.tdp


def test_memory_lists_every_populated_dimm(modules: dict[str, ComputeModule],
                                           trees: dict[str, Tree], catalog: Catalog) -> None:
    for mid, module in modules.items():
        mem = module.memory
        tree = trees[mid]
        devices = _of_type(tree, "Memory")
        if mem.module_type == "soldered":
            # one embedded device per socket holding that socket's memory
            assert len(devices) == module.sockets
            assert {d["Location"]["PartLocation"]["LocationType"]
                    for d in devices.values()} == {"Embedded"}
            per_device = dram_bytes(mem.capacity)  # the sold GB as JEDEC's GiB
        else:
            assert len(devices) == (module.sockets * _channels(catalog, module)
                                    * mem.dimms_per_channel)
            slots = [d["Location"]["PartLocation"] for d in devices.values()]
            assert {s["LocationType"] for s in slots} == {"Slot"}
            assert {tuple(d["AllowedSpeedsMHz"]) for d in devices.values()} == \
                {(mem.rated_mts,)}
            per_device = dram_bytes(mem.capacity)  # the sold GB as JEDEC's GiB
        for body in devices.values():
            assert body["CapacityMiB"] * MIB == pytest.approx(per_device, abs=MIB)
        total_GiB = tree[f"/redfish/v1/Systems/{mid}"]["MemorySummary"]["TotalSystemMemoryGiB"]
        assert total_GiB * 2**30 == pytest.approx(len(devices) * per_device)
        # every device belongs to the processor of its socket
        for uri, body in devices.items():
            socket = uri.rsplit("/", 1)[1].split("_")[0]
            assert body["Links"]["Processors"][0]["@odata.id"].endswith(f"/{socket}")


def test_dimm_speed_follows_the_population(modules: dict[str, ComputeModule],
                                           trees: dict[str, Tree], catalog: Catalog) -> None:
    """Two DIMMs per channel run at the CPU's published 2DPC speed, below its 1DPC speed
    and below the DIMMs' grade; MRDIMMs at the CPU's MRDIMM speed."""
    derated = mrdimm = 0
    for mid, module in modules.items():
        cpu = _cpu(catalog, module)
        mem = module.memory
        speeds = {d.get("OperatingSpeedMhz") for d in _of_type(trees[mid], "Memory").values()}
        assert len(speeds) == 1
        speed = speeds.pop()
        if mem.module_type == "soldered":
            continue
        assert mem.rated_mts is not None
        assert speed is not None
        assert speed <= mem.rated_mts
        if mem.dimms_per_channel == 2 and cpu.memory_mts_2dpc is not None:
            assert cpu.memory_mts is not None
            assert speed == min(cpu.memory_mts_2dpc, mem.rated_mts) < cpu.memory_mts
            derated += 1
        if mem.module_type == "mrdimm":
            assert cpu.memory_mts_mrdimm is not None
            assert speed == min(cpu.memory_mts_mrdimm, mem.rated_mts)
            kinds = {d["MemoryDeviceType"] for d in _of_type(trees[mid], "Memory").values()}
            assert kinds == {"DDR5_MRDIMM"}
            mrdimm += 1
    assert derated >= 1
    assert mrdimm >= 1


def test_root_ports_carry_every_exported_lane(modules: dict[str, ComputeModule],
                                              trees: dict[str, Tree]) -> None:
    for mid, module in modules.items():
        devices = [body for uri, body in _of_type(trees[mid], "PCIeDevice").items()
                   if "/PCIeDevices/RootPort" in uri]
        assert len(devices) == sum(math.ceil(g.lanes / X16) for g in module.io)
        widths = [d["PCIeInterface"]["MaxLanes"] for d in devices]
        assert sum(widths) == sum(g.lanes for g in module.io)
        assert max(widths) <= X16
        expected_gens = sorted(f"Gen{g.gen}" for g in module.io
                               for _ in range(math.ceil(g.lanes / X16)))
        assert sorted(d["PCIeInterface"]["MaxPCIeType"] for d in devices) == expected_gens
        for device in devices:
            assert device["Slot"]["Lanes"] == device["PCIeInterface"]["MaxLanes"]
            assert device["PCIeInterface"]["LanesInUse"] is None  # negotiated: unknown
        functions = [body for uri, body in _of_type(trees[mid], "PCIeFunction").items()
                     if "/PCIeDevices/RootPort" in uri]
        assert len(functions) == len(devices)
        assert {f["DeviceClass"] for f in functions} == {"Bridge"}


def test_power_is_the_demand_at_tdp_within_the_budget(
        modules: dict[str, ComputeModule], trees: dict[str, Tree], catalog: Catalog) -> None:
    for mid, module in modules.items():
        cpu = _cpu(catalog, module)
        mem = module.memory
        assert cpu.tdp is not None
        dimms = 0 if mem.module_type == "soldered" else \
            module.sockets * _channels(catalog, module) * mem.dimms_per_channel
        demand = module.sockets * cpu.tdp + dimms * (mem.dimm_power or 0) + module.other_power
        tree = trees[mid]
        assert tree[f"/redfish/v1/Chassis/{mid}"]["MaxPowerWatts"] == pytest.approx(demand)
        subsystem = tree[f"/redfish/v1/Chassis/{mid}/PowerSubsystem"]
        assert subsystem["CapacityWatts"] == module.power_budget
        assert subsystem["Allocation"]["RequestedWatts"] == pytest.approx(demand)
        assert "PowerSupplies" not in subsystem  # a module is fed by its host
        thermal = tree[f"/redfish/v1/Chassis/{mid}/ThermalSubsystem/ThermalMetrics"]
        readings = thermal["TemperatureReadingsCelsius"]
        assert len(readings) == module.sockets + 1  # each CPU and the module
        assert all(r["Reading"] is None for r in readings)


def test_values_only_a_controller_knows_are_null(trees: dict[str, Tree]) -> None:
    for tree in trees.values():
        for uri, body in tree.items():
            if body["@odata.type"].startswith(("#Processor.", "#Memory.", "#PCIeDevice.",
                                               "#Chassis.", "#PCIeFunction.")):
                assert body["Status"] == {"State": None, "Health": None}, uri
            for key in ("SerialNumber", "PartNumber", "Reading", "VendorId", "DeviceId",
                        "ErrorCorrection", "BandwidthPercent"):
                assert body.get(key) is None, f"{uri}: {key}"
            if body["@odata.type"].startswith(("#Chassis.", "#ComputerSystem.")):
                assert body["UUID"] is None, uri  # the hardware's; the service has its own


def test_read_managed_tells_modules_from_systems(catalog: Catalog, tmp_path: Path) -> None:
    node = read_managed(MODULE_DIR / "ocm-xeon-6980p-2s-flw.yaml", catalog)
    assert isinstance(node, CpuNode)
    assert node.entry_id == "ocm-xeon-6980p-2s-flw"
    system = read_managed(ROOT / "examples" / "mx1-8oam-air.yaml", catalog)
    assert isinstance(system, System)
    # the id comes from the file's name, as for systems
    named = redfish_routes.system_ids([node, system])
    assert list(named) == ["ocm-xeon-6980p-2s-flw", "mx1-8oam-air"]
    bad = tmp_path / "bad-module.yaml"
    text = (MODULE_DIR / "ocm-xeon-6980p-2s-flw.yaml").read_text(encoding="utf-8")
    bad.write_text(text.replace("cpu: xeon-6980p", "cpu: no-such-cpu"), encoding="utf-8")
    with pytest.raises(SpecError, match="no-such-cpu"):
        read_managed(bad, catalog)


# ---- DMTF redfish-interop-validator against the OCP UBB profile ------------------------------

#: A DIMM module (two DIMMs per channel, the 2DPC derate) and a soldered-memory one.
VALIDATED = ("ocm-xeon-8480p-2s-2dpc", "grace-superchip-module")


def _module_app(nodes: list[CpuNode]) -> FastAPI:
    app = FastAPI()
    app.include_router(redfish_routes.redfish_router(nodes))
    return app


def test_interop_validator_finds_no_mandatory_failure_that_applies(
        modules: dict[str, ComputeModule], catalog: Catalog, serve: Any,
        tmp_path: Path) -> None:
    nodes = [module_node(modules[mid], catalog) for mid in VALIDATED]
    assert list(redfish_routes.system_ids(nodes)) == list(VALIDATED)
    result = _validate(serve(_module_app(nodes)), tmp_path / "logs")
    mandatory, other = _failures(result)
    # the only Mandatory failures: a resource type the profile asks of a UBB that a
    # module does not have
    assert all("Required Resource Error: Resource not found" in m for m in mandatory), \
        mandatory
    assert [m.split(":")[0] for m in mandatory] == ["Port"]
    assert "Port" in MODULE_NOT_APPLICABLE
    # the documented gaps, and the resource types that do not apply (PortMetrics is
    # Supported, so its absence is not a Mandatory failure)
    assert other == set(PROFILE_GAPS) | set(MODULE_GAPS) | {("PortMetrics", "")}
    profile = json.loads(PROFILE.read_text(encoding="utf-8"))
    checked = {row["type"]: row["result"] for row in result["resources"]}
    for kind, requirement in profile["Resources"].items():
        if kind in MODULE_NOT_APPLICABLE:
            continue
        if requirement.get("ReadRequirement", "Mandatory") in ("Mandatory", "Supported"):
            assert checked.get(kind) == "PASS", kind
    assert result["pass"] > 500


def test_service_tree_of_modules_and_systems_together(
        modules: dict[str, ComputeModule], catalog: Catalog) -> None:
    node = module_node(modules["ocm-epyc-9654-2s-flw"], catalog)
    system = read_managed(ROOT / "examples" / "mx1-8oam-air.yaml", catalog)
    tree = service_tree({"module": node, "server": system})
    members = [m["@odata.id"] for m in tree["/redfish/v1/Systems"]["Members"]]
    assert members == ["/redfish/v1/Systems/module", "/redfish/v1/Systems/server"]
    assert tree["/redfish/v1/Chassis/module"]["ChassisType"] == "Module"
    assert tree["/redfish/v1/Chassis/server"]["ChassisType"] == "RackMount"
