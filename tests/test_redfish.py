"""The Redfish view of composed systems (ocplan.redfish, ocplan.web.redfish_routes).

Unit checks of the trees: every resource sits at its own ``@odata.id``, every link
resolves, collections list their members, numbers equal the catalog's, and values only a
live controller knows are ``null``. Over HTTP: the service is read-only (writes get 405
with a Redfish error body). Conformance: DMTF's redfish-interop-validator (PyPI), run on
the tree of each example system served by a real uvicorn server, against the OCP UBB
Baseline Management profile 2.0.0 (tests/data/redfish): no failure on a Mandatory
requirement, and the only other failures are the documented ``PROFILE_GAPS``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.schema import Cpu, Nic
from ocplan.catalog.system import System, load_system, system_for_chip
from ocplan.errors import SpecError
from ocplan.redfish import PROFILE_GAPS, CpuNode, Tree, cpu_node_tree, redfish_tree, service_tree
from ocplan.web import redfish_routes
from ocplan.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
PROFILE = Path(__file__).parent / "data" / "redfish" / "OCP_UBB_BaselineManagement.v2_0_0.json"
#: The example files that are system files (the others are sweeps).
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.yaml")
                  if "server" in yaml.safe_load(p.read_text(encoding="utf-8")))
JSON = {"content-type": "application/json"}
MIB = 2**20

#: Runs the validator's own command line (console_scripts.main) with its report writers
#: replaced by one that saves the same per-property and per-resource results as JSON
#: (its Excel writer takes most of the run time).
DRIVER = """
import json, sys
from redfish_interop_validator import console_scripts, report

def results(sut, report_dir, *args, **kwargs):
    rows = []
    for uri, found in sut._resources.items():
        kind = sut.get_resource_type(uri)[0]
        for prop, result in found["Results"].items():
            rows.append({"uri": uri, "type": kind, "property": prop,
                         "result": result["Result"].name, "message": result["Message"]})
    resources = [{"type": kind, "result": r["Result"].name, "message": r["Message"]}
                 for kind, r in sut._service_resource_results["Results"].items()]
    path = report_dir / "results.json"
    path.write_text(json.dumps({"properties": rows, "resources": resources,
                                "pass": sut.pass_count, "fail": sut.fail_count}))
    return path

report.html_report = results
report.xlsx_report = lambda *args, **kwargs: None
sys.argv[0] = "rf_interop_validator"
console_scripts.main()
"""


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def examples(catalog: Catalog) -> dict[str, System]:
    return {p.stem: load_system(p, catalog) for p in EXAMPLES}


@pytest.fixture(scope="module")
def trees(examples: dict[str, System]) -> dict[str, Tree]:
    return {name: redfish_tree(system, name) for name, system in examples.items()}


def _refs(value: Any) -> Iterator[str]:
    """Every URI a resource points at: ``@odata.id`` of nested objects and
    ``DataSourceUri``; metric properties name a URI plus a JSON pointer."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("@odata.id", "DataSourceUri") and isinstance(item, str):
                yield item
            elif key == "MetricProperties":
                yield from item
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _of_type(tree: Tree, kind: str) -> dict[str, dict[str, Any]]:
    return {uri: body for uri, body in tree.items()
            if body["@odata.type"].startswith(f"#{kind}.")}


def _processors(tree: Tree, kind: str) -> list[dict[str, Any]]:
    return [body for body in _of_type(tree, "Processor").values()
            if body["ProcessorType"] == kind]


def test_examples_are_found() -> None:
    assert len(EXAMPLES) >= 3  # the three example systems of the repository


def test_every_resource_sits_at_its_own_uri(trees: dict[str, Tree]) -> None:
    for tree in trees.values():
        for uri, body in tree.items():
            assert body["@odata.id"] == uri
            assert body["Name"]
            namespace, _, kind = body["@odata.type"].lstrip("#").rpartition(".")
            if kind.endswith("Collection"):
                assert namespace == kind
                assert body["Members@odata.count"] == len(body["Members"])
            else:
                # "#Processor.v1_22_0.Processor": a versioned namespace of the same type
                name, version = namespace.split(".")
                assert name == kind
                assert version.startswith("v1_")
                own = "RootService" if uri == "/redfish/v1" else uri.rsplit("/", 1)[1]
                assert body["Id"] == own


def test_every_link_resolves_and_members_are_children(trees: dict[str, Tree]) -> None:
    for tree in trees.values():
        for uri, body in tree.items():
            for ref in _refs(body):
                assert ref.split("#")[0] in tree, f"{uri} points at missing {ref}"
            for member in body.get("Members", []):
                assert member["@odata.id"].rsplit("/", 1)[0] == uri


def test_accelerators_have_the_catalog_numbers(trees: dict[str, Tree],
                                               examples: dict[str, System]) -> None:
    for name, system in examples.items():
        tree = trees[name]
        accel = system.accelerator
        modules = [body for body in _of_type(tree, "Processor").values()
                   if body["ProcessorType"] != "CPU"]
        assert len(modules) == system.chips_per_server
        # each module in its own baseboard slot, as the UBB profile asks
        slots = sorted(m["Location"]["PartLocation"]["LocationOrdinalValue"] for m in modules)
        assert slots == list(range(system.chips_per_server))
        hbm = [body for body in _of_type(tree, "Memory").values() if body["Id"].endswith("HBM")]
        total_MiB = sum(h["CapacityMiB"] for h in hbm)
        assert total_MiB * MIB == pytest.approx(system.chips_per_server
                                                * accel.memory.hbm_capacity, abs=len(hbm) * MIB)
        for uri in _of_type(tree, "Processor"):
            if tree[uri]["ProcessorType"] == "CPU":
                continue
            limit = tree[f"{uri}/EnvironmentMetrics"]["PowerLimitWatts"]
            assert limit["SetPoint"] == system.module_power
            assert limit["AllowableMax"] == accel.power.tdp
            device = tree[tree[uri]["Links"]["PCIeDevice"]["@odata.id"]]
            assert device["PCIeInterface"]["MaxLanes"] == accel.host.lanes
            assert device["PCIeInterface"]["MaxPCIeType"] == f"Gen{accel.host.gen}"
        cpus = _processors(tree, "CPU")
        assert len(cpus) == system.server.host.sockets
        assert {c["TotalCores"] for c in cpus} == {system.cpu.cores}


def test_xgmi_ports_run_at_lanes_times_lane_rate(trees: dict[str, Tree],
                                                 examples: dict[str, System]) -> None:
    # MI300X: 7 xGMI links of 16 lanes at 32 Gb/s; the port speed comes from the stated
    # 64 GB/s per direction, which must equal 16 x 32 Gb/s = 512 Gb/s.
    system = examples["nf5698g7-mi300x"]
    up = system.accelerator.scale_up
    assert up is not None
    tree = trees["nf5698g7-mi300x"]
    ports = [body for uri, body in _of_type(tree, "Port").items() if "/Processors/OAM0/" in uri]
    assert len(ports) == up.ports == 7
    for port in ports:
        assert port["MaxSpeedGbps"] == pytest.approx(up.lanes_per_port * up.lane_rate / 1e9)
        assert port["Width"] == up.lanes_per_port
        assert port["PortProtocol"] == "OEM"  # xGMI has no Redfish protocol name
        assert port["CurrentSpeedGbps"] is None


def test_nics_power_supplies_and_power_budget(trees: dict[str, Tree],
                                              examples: dict[str, System]) -> None:
    for name, system in examples.items():
        tree = trees[name]
        server = system.server
        nic_ports = [body for uri, body in _of_type(tree, "Port").items()
                     if "/NetworkAdapters/" in uri]
        expected = [nic.port_bandwidth * 8 / 1e9 for nic, count, _ in system.server_nics
                    for _ in range(count * nic.ports)]
        assert [p["MaxSpeedGbps"] for p in nic_ports] == pytest.approx(expected)
        supplies = _of_type(tree, "PowerSupply")
        assert len(supplies) == server.power_supplies.count
        assert {p["PowerCapacityWatts"] for p in supplies.values()} == \
            {server.power_supplies.rating}
        subsystem = tree[f"/redfish/v1/Chassis/{name}/PowerSubsystem"]
        reserve = {"N": 0, "N+1": 1, "N+2": 2,
                   "N+N": server.power_supplies.count // 2}[server.power_supplies.redundancy]
        assert subsystem["CapacityWatts"] == \
            (server.power_supplies.count - reserve) * server.power_supplies.rating
        # nameplate: modules + CPUs + NICs + the rest, or null when a part has no power
        parts = [system.module_power * system.chips_per_server, system.server.other_power,
                 *(system.cpu.tdp for _ in range(server.host.sockets)),
                 *(nic.power for nic, count, _ in system.server_nics for _ in range(count))]
        chassis = tree[f"/redfish/v1/Chassis/{name}"]
        if None in parts:
            assert chassis["MaxPowerWatts"] is None
        else:
            assert chassis["MaxPowerWatts"] == pytest.approx(sum(p for p in parts if p))


def test_air_cooling_limits_the_module_power(catalog: Catalog) -> None:
    # Gaudi 3 in the air-cooled HLS-3 runs at its 900 W air rating, not its 1200 W TDP
    system = system_for_chip(catalog, "gaudi3", 8)
    power = system.accelerator.power
    assert system.cooling == "air"
    assert power.air_max_tdp is not None
    tree = redfish_tree(system, "hls3")
    limits = [body["PowerLimitWatts"] for body in _of_type(tree, "EnvironmentMetrics").values()
              if "/Processors/OAM" in body["@odata.id"]]
    assert len(limits) == 8
    for limit in limits:
        assert limit["SetPoint"] == power.air_max_tdp < power.tdp == limit["AllowableMax"]


def test_values_only_a_controller_knows_are_null(trees: dict[str, Tree]) -> None:
    for tree in trees.values():
        for uri, body in tree.items():
            if body["@odata.type"].startswith(("#Processor.", "#Memory.", "#PCIeDevice.",
                                               "#Chassis.", "#PowerSupply.", "#Port.")):
                assert body["Status"] == {"State": None, "Health": None}, uri
            for key in ("SerialNumber", "PartNumber", "Reading", "VendorId", "DeviceId",
                        "CertificateString", "RXBytes", "TXBytes", "CurrentSpeedGbps"):
                assert body.get(key) is None, f"{uri}: {key}"
        for excerpt in _refs_with_readings(tree):
            assert excerpt["Reading"] is None
        certificates = _of_type(tree, "Certificate")
        assert certificates
        assert all(c["Status"]["State"] == "Absent" for c in certificates.values())
        assert all(m["MetricValues"] == [] for m in _of_type(tree, "MetricReport").values())


def _refs_with_readings(value: Any) -> Iterator[dict[str, Any]]:
    """Every nested object that carries a ``Reading`` (sensor excerpts)."""
    if isinstance(value, dict):
        if "Reading" in value and "DataSourceUri" in value:
            yield value
        for item in value.values():
            yield from _refs_with_readings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs_with_readings(item)


def test_cpu_node_has_its_dimms_and_sockets(catalog: Catalog) -> None:
    cpu = catalog.get(Cpu, "epyc-9654")
    nic = catalog.get(Nic, "connectx-7-400g")
    node = CpuNode(name="OCM test", manufacturer="Example", model="OCM-1", cpu=cpu, sockets=2,
                   dimms_per_socket=12, dimm_capacity_bytes=64 * 2**30, nics=((nic, 2),),
                   form="ocm")
    tree = cpu_node_tree(node, "ocm-1")
    cpus = _processors(tree, "CPU")
    assert len(cpus) == 2
    assert all(c["TotalThreads"] == cpu.threads for c in cpus)
    dimms = _of_type(tree, "Memory")
    assert len(dimms) == 2 * 12
    assert {d["CapacityMiB"] for d in dimms.values()} == {64 * 1024}
    assert {d["MemoryDeviceType"] for d in dimms.values()} == {"DDR5"}
    assert {tuple(d["AllowedSpeedsMHz"]) for d in dimms.values()} == {(cpu.memory_mts,)}
    assert tree["/redfish/v1/Chassis/ocm-1"]["ChassisType"] == "Module"
    assert len(_of_type(tree, "NetworkAdapter")) == 2
    for uri, body in tree.items():
        for ref in _refs(body):
            assert ref.split("#")[0] in tree, f"{uri} points at missing {ref}"


def test_service_tree_holds_several_systems(examples: dict[str, System]) -> None:
    tree = service_tree(examples)
    systems = tree["/redfish/v1/Systems"]["Members"]
    assert [m["@odata.id"] for m in systems] == [f"/redfish/v1/Systems/{n}" for n in examples]
    manager = tree["/redfish/v1/Managers/ocplan"]["Links"]
    assert len(manager["ManagerForServers"]) == len(examples)
    assert len(manager["ManagerForChassis"]) == 2 * len(examples)  # server and baseboard
    firmware = tree["/redfish/v1/UpdateService/FirmwareInventory"]
    processors = sum(len(_of_type(redfish_tree(s, n), "Processor")) for n, s in examples.items())
    assert firmware["Members@odata.count"] == processors


def test_bad_ids_and_no_system_are_refused(examples: dict[str, System]) -> None:
    system = next(iter(examples.values()))
    for bad in ("", "a/b", "x_Baseboard", "-x", "a" * 64):
        with pytest.raises(SpecError):
            redfish_tree(system, bad)
    with pytest.raises(SpecError):
        service_tree({})


def test_system_ids_come_from_file_names(examples: dict[str, System],
                                         catalog: Catalog) -> None:
    chip = system_for_chip(catalog, "mi300x", 8)
    named = redfish_routes.system_ids([*examples.values(), chip, chip])
    assert list(named) == [*examples, "mi300x-supermicro-as-8125gs-tnmr2",
                           "mi300x-supermicro-as-8125gs-tnmr2-2"]


# ---- over HTTP ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def base(serve: Any, examples: dict[str, System],
         tmp_path_factory: pytest.TempPathFactory) -> str:
    db = tmp_path_factory.mktemp("redfish") / "scenarios.db"
    return str(serve(create_app(f"sqlite:///{db}", job_workers=1, pool_workers=1,
                                redfish_systems=list(examples.values()))))


def test_service_answers_gets_with_odata_headers(base: str, trees: dict[str, Tree]) -> None:
    with httpx.Client(base_url=base, timeout=30) as client:
        versions = client.get("/redfish")
        assert versions.json() == {"v1": "/redfish/v1/"}
        root = client.get("/redfish/v1")
        assert root.json() == client.get("/redfish/v1/").json()
        assert root.headers["OData-Version"] == "4.0"
        assert root.json()["@odata.type"] == "#ServiceRoot.v1_20_0.ServiceRoot"
        name = next(iter(trees))
        uri = f"/redfish/v1/Systems/{name}/Processors/OAM0"
        assert client.get(uri + "/").json() == trees[name][uri]
        missing = client.get("/redfish/v1/Systems/nothing")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "Base.1.22.ResourceMissingAtURI"
        metadata = client.get("/redfish/v1/$metadata")
        assert metadata.headers["content-type"].startswith("application/xml")
        assert '<edmx:Include Namespace="ServiceRoot.v1_20_0"/>' in metadata.text
        assert client.get("/redfish/v1/odata").json()["value"][0]["url"] == "/redfish/v1/"


def test_service_is_read_only(base: str, trees: dict[str, Tree]) -> None:
    name = next(iter(trees))
    with httpx.Client(base_url=base, timeout=30) as client:
        before = client.get(f"/redfish/v1/Systems/{name}").json()
        for method in ("POST", "PATCH", "PUT", "DELETE"):
            for uri in ("/redfish/v1", "/redfish/v1/Systems", f"/redfish/v1/Systems/{name}",
                        "/redfish/v1/UpdateService/update-multipart", "/redfish"):
                answer = client.request(method, uri, headers=JSON, content=b'{"Name": "x"}')
                assert answer.status_code == 405, (method, uri)
                assert answer.json()["error"]["code"] == "Base.1.22.OperationNotAllowed"
                assert answer.headers["Allow"] == "GET, HEAD"
        assert client.get(f"/redfish/v1/Systems/{name}").json() == before


# ---- DMTF redfish-interop-validator against the OCP UBB profile ------------------------------


def _redfish_app(system: System) -> FastAPI:
    """An app of the Redfish routes alone, serving ``system``: the routes that
    ``create_app`` includes (tested above), without the workbench's worker pool, which
    would start a process per example."""
    app = FastAPI()
    app.include_router(redfish_routes.redfish_router([system]))
    return app


def _requirement(profile: dict[str, Any], resource: str, path: str) -> str:
    """The profile's ReadRequirement of ``path`` (``/Location/PartLocation``) in
    ``resource``; the default of DSP0272 is Mandatory."""
    node = profile["Resources"][resource]
    requirement = "Mandatory"
    for part in path.replace(" (Write)", "").strip("/").split("/"):
        if part.isdigit():
            continue  # an array index: the requirement of the array applies
        node = node["PropertyRequirements"][part]
        requirement = node.get("ReadRequirement", "Mandatory")
    return requirement


def _validate(base: str, logdir: Path) -> dict[str, Any]:
    """Run the validator on the service at ``base``; its results as a dict."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    run = subprocess.run([sys.executable, "-c", DRIVER, "-u", "reader", "-p", "unused",
                          "--authtype", "Basic", "-r", base, "--logdir", str(logdir),
                          "--timeout", "30", str(PROFILE)],
                         capture_output=True, text=True, timeout=120, env=env, check=False)
    found = list(logdir.glob("*/results.json"))
    assert run.returncode in (0, 1), run.stdout[-3000:] + run.stderr[-3000:]
    assert len(found) == 1, run.stdout[-3000:] + run.stderr[-3000:]
    result: dict[str, Any] = json.loads(found[0].read_text(encoding="utf-8"))
    return result


def _failures(result: dict[str, Any]) -> tuple[list[str], set[tuple[str, str]]]:
    """(Mandatory failures as text, other failures as (resource, property))."""
    profile = json.loads(PROFILE.read_text(encoding="utf-8"))
    mandatory: list[str] = []
    other: set[tuple[str, str]] = set()
    for row in result["resources"]:
        if row["result"] == "FAIL":
            required = profile["Resources"][row["type"]].get("ReadRequirement", "Mandatory")
            if required == "Mandatory":
                mandatory.append(f"{row['type']}: {row['message']}")
            else:
                other.add((row["type"], ""))
    for row in result["properties"]:
        if row["result"] != "FAIL":
            continue
        if row["property"] and _requirement(profile, row["type"], row["property"]) != \
                "Mandatory":
            other.add((row["type"], row["property"].strip("/")))
        else:
            mandatory.append(f"{row['uri']} {row['property']}: {row['message']}")
    return mandatory, other


def test_requirement_lookup_follows_the_profile() -> None:
    profile = json.loads(PROFILE.read_text(encoding="utf-8"))
    assert _requirement(profile, "Processor", "/Location/PartLocation") == "Mandatory"
    assert _requirement(profile, "Processor", "/Location/PartLocation/ServiceLabel") == \
        "Recommended"
    assert _requirement(profile, "Sensor", "/Thresholds") == "Supported"
    assert _requirement(profile, "PCIeDevice", "/DeviceType") == "Mandatory"
    assert _requirement(profile, "MemoryCollection", "/Members (Write)") == "Mandatory"


@pytest.mark.parametrize("example", [p.stem for p in EXAMPLES])
def test_interop_validator_finds_no_mandatory_failure(
        example: str, examples: dict[str, System], serve: Any, tmp_path: Path) -> None:
    result = _validate(serve(_redfish_app(examples[example])), tmp_path / "logs")
    mandatory, other = _failures(result)
    assert mandatory == []
    assert other == set(PROFILE_GAPS)
    # every resource type the profile makes Mandatory was found and checked
    profile = json.loads(PROFILE.read_text(encoding="utf-8"))
    checked = {row["type"]: row["result"] for row in result["resources"]}
    for kind, requirement in profile["Resources"].items():
        if requirement.get("ReadRequirement", "Mandatory") in ("Mandatory", "Supported"):
            assert checked.get(kind) == "PASS", kind
    assert result["pass"] > 1000


def test_interop_validator_catches_a_missing_mandatory_property(
        examples: dict[str, System], trees: dict[str, Tree], serve: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # control: the same run on a tree whose first processor lost its Location must fail
    def without_location(systems: Any) -> Tree:
        tree = service_tree(systems)
        for body in _of_type(tree, "Processor").values():
            body.pop("Location")
            break
        return tree

    monkeypatch.setattr(redfish_routes, "service_tree", without_location)
    name = min(trees, key=lambda n: len(trees[n]))  # the quickest to validate
    mandatory, _ = _failures(_validate(serve(_redfish_app(examples[name])), tmp_path / "logs"))
    assert len(mandatory) == 1
    assert "/Location" in mandatory[0]


def test_a_pod_slice_lists_only_the_hosts_it_uses(catalog: Catalog) -> None:
    # A 64-chip slice of the TPU v5p pod (1,536 hosts, one CPU node and two 100G NICs
    # each in the entry) runs on 16 hosts: 16 CPUs and 32 NICs, not the pod's 1,536 and
    # 3,072; its 64 chips are all there.
    part = system_for_chip(catalog, "tpu-v5p", 64)
    tree = redfish_tree(part, "slice")
    assert len(_processors(tree, "CPU")) == 16
    assert len(_of_type(tree, "NetworkAdapter")) == 32
    assert len(_processors(tree, "Accelerator")) == 64
    whole = redfish_tree(system_for_chip(catalog, "tpu-v5p", 6144), "pod")
    assert len(_processors(whole, "CPU")) == 1536
