"""Topology summaries, fat-tree shapes and power budgets of example and small systems.

Expected values are worked out from the catalog YAML (read raw and parsed with
:mod:`ocplan.units`) or from the test entries written here, by the reasoning in each
comment: which links cross a cut, how many endpoints a leaf serves, what a supply set
delivers.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import yaml

from ocplan import units
from ocplan.catalog.catalog import BUILTIN_DIR, Catalog, load_catalog
from ocplan.catalog.system import System, load_system, system_for_chip
from ocplan.cli.main import main
from ocplan.topology.analysis import TopologySummary, summarize
from ocplan.topology.cluster import board_graph, cluster_graph, fat_tree_shape, scale_out_shape
from ocplan.topology.power import host_share, power_budget, psu_capacity_W
from ocplan.topology.power_estimates import estimate_nic

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SOURCE = [{"title": "ocplan test fixture", "covers": ["*"]}]
GB = 1e9


def _yaml(kind_dir: str, entry_id: str) -> dict[str, Any]:
    data = yaml.safe_load((BUILTIN_DIR / kind_dir / f"{entry_id}.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def _q(text: str, dim: units.Dimension) -> float:
    return units.parse_quantity(text, dim)


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog(use_env=False)


def _example(name: str, catalog: Catalog) -> System:
    return load_system(EXAMPLES / name, catalog)


# ---- test entries --------------------------------------------------------------------


def _module(ports: int = 7, lane_rate: str = "56 Gb/s") -> dict[str, Any]:
    return {
        "kind": "accelerator", "id": "t-oam", "name": "Test OAM module", "vendor": "Test",
        "form_factor": "oam", "oam_version": "1.5", "launch_year": 2024,
        "peak_flops": {"bf16": "500 TFLOP/s"},
        "memory": {"hbm_capacity": "96 GB", "hbm_bandwidth": "3 TB/s", "hbm_type": "HBM3"},
        "scale_up": {"fabric": "test-link", "ports": ports, "lanes_per_port": 16,
                     "lane_rate": lane_rate, "port_bandwidth": "50 GB/s"},
        "host": {"kind": "pcie", "gen": 5, "lanes": 16},
        "power": {"tdp": "600 W", "rail": "54 V"},
        "cooling": ["air", "liquid"],
        "sources": SOURCE,
    }


def _board(topology: str = "fully_connected", lane_rate: str = "112 Gb/s") -> dict[str, Any]:
    return {
        "kind": "baseboard", "id": "t-ubb", "name": "Test UBB", "standard": "ubb",
        "slots": 8, "topology": topology, "max_lanes_per_link": 16,
        "max_lane_rate": lane_rate,
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


def _nic() -> dict[str, Any]:
    return {
        "kind": "nic", "id": "t-nic", "name": "Test NIC 400G", "vendor": "Test",
        "protocol": "roce", "ports": 1, "port_bandwidth": "400 Gb/s",
        "host": {"kind": "pcie", "gen": 5, "lanes": 16}, "power": "25 W",
        "sources": SOURCE,
    }


def _fabric(radix: int = 64) -> dict[str, Any]:
    return {
        "kind": "fabric", "id": "t-fab", "name": "Test RoCE 400G", "protocol": "roce",
        "link_bandwidth": "400 Gb/s",
        "switch": {"name": "Test switch", "radix": radix, "power": "1000 W"},
        "hop_latency": "1 us", "nic": "t-nic", "achievable_fraction": 0.9,
        "sources": SOURCE,
    }


def _server(board: str = "t-ubb") -> dict[str, Any]:
    return {
        "kind": "server", "id": "t-srv", "name": "Test 8-OAM server", "vendor": "Test",
        "baseboard": board, "accelerator": "t-oam",
        "host": {"cpu": "t-cpu", "sockets": 2},
        "nics": [{"nic": "t-nic", "count": 8, "attach": "pcie-switch"}],
        "default_fabric": "t-fab",
        "power_supplies": {"count": 4, "rating": "3000 W", "redundancy": "N+1"},
        "other_power": "2000 W", "cooling": "liquid",
        "sources": SOURCE,
    }


# 8 x 600 W + 2 x 300 W + 8 x 25 W + 2000 W, from the entries above.
SERVER_W = 8 * 600 + 2 * 300 + 8 * 25 + 2000


def _system(tmp_path: Path, entries: list[dict[str, Any]], spec: dict[str, Any]) -> System:
    folder = tmp_path / "catalog"
    folder.mkdir(exist_ok=True)
    for entry in entries:
        (folder / f"{entry['kind']}-{entry['id']}.yaml").write_text(
            yaml.safe_dump(copy.deepcopy(entry)), encoding="utf-8")
    path = tmp_path / "system.yaml"
    path.write_text(yaml.safe_dump({"name": "test system", **spec}), encoding="utf-8")
    return load_system(path, load_catalog([folder], use_env=False))


def _one_server(tmp_path: Path, module: dict[str, Any] | None = None,
                board: dict[str, Any] | None = None, board_id: str = "t-ubb",
                **spec: Any) -> System:
    entries = [module or _module(), _cpu(), _nic(), _fabric(), _server(board_id)]
    if board is not None or board_id == "t-ubb":
        entries.append(board or _board())
    return _system(tmp_path, entries, {"server": "t-srv", "servers": 1, **spec})


# ---- boards --------------------------------------------------------------------------


def test_fully_connected_8_bisection_is_16_links(tmp_path: Path) -> None:
    # Split 4 | 4: every one of the 4 x 4 = 16 cross pairs has one 50 GB/s link.
    summary = summarize(_one_server(tmp_path))
    assert summary.board_bisection_Bps == pytest.approx(16 * 50 * GB)
    assert summary.bisection_Bps == pytest.approx(16 * 50 * GB)
    assert summary.scale_up_Bps_per_chip == pytest.approx(7 * 50 * GB)
    assert summary.diameter_hops == 1


def test_fully_connected_8_mi355x_from_yaml(builtin: Catalog) -> None:
    # The 1024-OAM example: MI355X on the AMD MI350 UBB (fully connected, 8 slots).
    acc = _yaml("accelerators", "mi355x")["scale_up"]
    board = _yaml("baseboards", "amd-mi350-ubb")
    assert board["topology"] == "fully_connected"
    assert board["slots"] == 8
    # The board carries the module's lanes at full rate: no training down.
    assert _q(acc["lane_rate"], units.BITRATE) <= _q(board["max_lane_rate"], units.BITRATE)
    assert acc["lanes_per_port"] <= board["max_lanes_per_link"]
    port = _q(acc["port_bandwidth"], units.BANDWIDTH)
    summary = summarize(_example("ubb-1024-liquid.yaml", builtin))
    assert summary.scale_up_port_Bps == pytest.approx(port)
    assert summary.board_bisection_Bps == pytest.approx(16 * port)
    assert summary.scale_up_Bps_per_chip == pytest.approx(acc["ports"] * port)


def test_mx1_gaudi_board(builtin: Catalog) -> None:
    # Gaudi HL-205: one 100GbE port per peer on an 8-card fully connected board.
    port = _q(_yaml("accelerators", "gaudi")["scale_up"]["port_bandwidth"], units.BANDWIDTH)
    assert port == pytest.approx(12.5 * GB)
    summary = summarize(_example("mx1-8oam-air.yaml", builtin))
    assert summary.chips == 8
    assert summary.servers == 1
    assert summary.board_bisection_Bps == pytest.approx(16 * port)
    assert summary.scale_up_Bps_per_chip == pytest.approx(7 * port)
    assert summary.diameter_hops == 1


def test_nf5698g7_mi300x_board_uses_raw_xgmi_rate(builtin: Catalog) -> None:
    # Topology reports the vendor's raw 64 GB/s per port (usable_fraction is applied by
    # the collective models, not here).
    port = _q(_yaml("accelerators", "mi300x")["scale_up"]["port_bandwidth"], units.BANDWIDTH)
    summary = summarize(_example("nf5698g7-mi300x.yaml", builtin))
    assert summary.board_bisection_Bps == pytest.approx(16 * port)


@pytest.mark.parametrize(("board_id", "ports", "cut_links"), [
    # HCM, 6 ports: quads {0-3}, {4-7} joined by 4 doubled edges i--i+4: 8 links.
    ("ubb-1.5-hcm6", 6, 8),
    # HCM, 8 ports: every edge doubled; the quad cut is again the 4 cross edges x 2.
    ("ubb-1.5-hcm8", 8, 8),
    # K8 minus the matching {i, i+4}: a 4 | 4 split cuts 16 pairs, at most the 4
    # matching pairs of which are missing: 12 links.
    ("ubb-1.5-afc", 6, 12),
])
def test_oam_board_bisection(tmp_path: Path, board_id: str, ports: int,
                             cut_links: int) -> None:
    summary = summarize(_one_server(tmp_path, module=_module(ports), board_id=board_id))
    assert summary.board_topology == _yaml("baseboards", board_id)["topology"]
    assert summary.board_bisection_Bps == pytest.approx(cut_links * 50 * GB)
    assert summary.scale_up_Bps_per_chip == pytest.approx(ports * 50 * GB)
    assert summary.diameter_hops == 2


def test_hybrid_cube_mesh_partly_populated(tmp_path: Path) -> None:
    # Four modules in slots 0-3 of a 6-port HCM board: one quad, all four chips one hop
    # apart; a 2 | 2 split {0,1} | {2,3} cuts (0,2), (0,3), (1,2), (1,3): 4 links.
    system = _one_server(tmp_path, module=_module(6), board_id="ubb-1.5-hcm6",
                         accelerators_per_server=4)
    board = board_graph(system)
    chips = [n for n, d in board.nodes(data=True) if d["kind"] == "chip"]
    assert sorted(chips) == [0, 1, 2, 3]
    summary = summarize(system)
    assert summary.chips == 4
    assert summary.board_bisection_Bps == pytest.approx(4 * 50 * GB)
    assert summary.diameter_hops == 1


def test_module_trains_down_on_slower_board(tmp_path: Path) -> None:
    # 112 Gb/s SerDes on a board whose channels carry 56 Gb/s: ports run at half rate.
    system = _one_server(tmp_path, module=_module(lane_rate="112 Gb/s"),
                         board=_board(lane_rate="56 Gb/s"))
    summary = summarize(system)
    assert summary.scale_up_port_Bps == pytest.approx(25 * GB)
    assert summary.board_bisection_Bps == pytest.approx(16 * 25 * GB)


def test_dgx_h100_nvswitch(tmp_path: Path, builtin: Catalog) -> None:
    # 18 NVLink4 ports of 25 GB/s per direction each into a non-blocking switch plane.
    up = _yaml("accelerators", "h100-sxm-80gb")["scale_up"]
    assert up["ports"] == 18
    port = _q(up["port_bandwidth"], units.BANDWIDTH)
    assert port == pytest.approx(25 * GB)
    path = tmp_path / "dgx.yaml"
    path.write_text("name: one DGX H100\nserver: dgx-h100\nservers: 1\n", encoding="utf-8")
    summary = summarize(load_system(path, builtin))
    assert summary.board_topology == "switch"
    assert summary.scale_up_Bps_per_chip == pytest.approx(18 * 25 * GB)
    # Four chips on each side, each with its full 450 GB/s into the switch.
    assert summary.board_bisection_Bps == pytest.approx(4 * 18 * 25 * GB)
    assert summary.diameter_hops == 2  # chip - switch - chip
    assert summary.board_diameter_hops == 2


@pytest.mark.parametrize(("server", "dims"), [("tpu-v5p-pod", (16, 16, 24)),
                                              ("tpu-v7x-pod", (16, 24, 24))])
def test_pod_scale_up_diameter_is_the_torus_one(tmp_path: Path, builtin: Catalog,
                                                server: str, dims: tuple[int, ...]) -> None:
    """A whole pod reaches any chip in 6 hops through its hosts' data-centre network,
    but a collective on the inter-chip links crosses the torus: half of each wrapped
    dimension, summed."""
    path = tmp_path / "pod.yaml"
    path.write_text(f"name: pod\nserver: {server}\nservers: 1\n", encoding="utf-8")
    summary = summarize(load_system(path, builtin))
    assert summary.chips == dims[0] * dims[1] * dims[2]
    assert summary.diameter_hops == 6  # chip - nic - leaf - spine - leaf - nic - chip
    assert summary.board_diameter_hops == sum(d // 2 for d in dims)


# ---- clusters ------------------------------------------------------------------------


def test_1024_cluster_summary(builtin: Catalog) -> None:
    system = _example("ubb-1024-liquid.yaml", builtin)
    summary = summarize(system)
    assert summary.chips == 1024
    assert (summary.servers, summary.chips_per_server) == (128, 8)
    # chip - nic - leaf - spine - leaf - nic - chip
    assert summary.diameter_hops == 6
    assert summary.board_diameter_hops == 1  # fully connected UBB
    # roce-400g: radix 128. 128 NICs per rail; a non-blocking leaf serves 64 of them and
    # sends 64 up: 2 leaves per rail, 8 x 2 x 64 = 1024 up ports / 128 = 8 spines.
    radix = _yaml("fabrics", "roce-400g")["switch"]["radix"]
    assert radix == 128
    assert summary.scale_out_tiers == 2
    assert summary.scale_out_switches == 8 * 2 + 8
    # Half the servers (64 x 8 NICs of 400 Gb/s = 50 GB/s) face the other half through a
    # non-blocking fabric.
    nic = _q(_yaml("nics", "amd-pollara-400")["port_bandwidth"], units.BANDWIDTH)
    assert summary.bisection_Bps == pytest.approx(64 * 8 * nic)
    assert summary.scale_out_Bps_per_chip == pytest.approx(nic)


def _cluster(tmp_path: Path, radix: int, servers: int, topology: str) -> System:
    entries = [_module(), _board(), _cpu(), _nic(), _fabric(radix), _server()]
    return _system(tmp_path, entries, {
        "server": "t-srv", "servers": servers,
        "scale_out": {"fabric": "t-fab", "nics_per_server": 8, "topology": topology}})


def test_rail_optimized_radix_64_vs_128(tmp_path: Path) -> None:
    # 128 servers x 8 NICs on radix 64: a leaf serves 32 of a rail's 128 NICs -> 4 leaves
    # per rail, 32 leaves x 32 up ports = 1024 / 64 = 16 spines: 48 switches.
    summary = summarize(_cluster(tmp_path, 64, 128, "rail-optimized-fat-tree"))
    assert summary.scale_out_tiers == 2
    assert summary.scale_out_switches == 8 * 4 + 16
    assert summary.diameter_hops == 6
    budget = power_budget(_cluster(tmp_path, 64, 128, "rail-optimized-fat-tree"))
    assert budget.switches_W == pytest.approx(48 * 1000)
    assert budget.it_W == pytest.approx(128 * SERVER_W + 48 * 1000)


def test_plain_fat_tree_on_one_switch(tmp_path: Path) -> None:
    # 16 servers x 8 NICs = 128 endpoints on one radix-128 switch: chip-nic-sw-nic-chip.
    summary = summarize(_cluster(tmp_path, 128, 16, "fat-tree"))
    assert summary.scale_out_tiers == 1
    assert summary.scale_out_switches == 1
    assert summary.diameter_hops == 4


def test_plain_fat_tree_two_tiers(tmp_path: Path) -> None:
    # 128 endpoints on radix 64: 4 leaves of 32 down / 32 up, 128 up ports / 64 = 2 spines.
    summary = summarize(_cluster(tmp_path, 64, 16, "fat-tree"))
    assert summary.scale_out_tiers == 2
    assert summary.scale_out_switches == 4 + 2
    assert summary.diameter_hops == 6


def test_no_scale_out_network(tmp_path: Path) -> None:
    # topology "none": servers stay islands and no switches are bought.
    system = _cluster(tmp_path, 64, 4, "none")
    summary = summarize(system)
    assert summary.scale_out_tiers == 0
    assert summary.scale_out_switches == 0
    assert summary.diameter_hops == -1
    assert summary.bisection_Bps == 0
    budget = power_budget(system)
    assert budget.switches_W == 0
    assert budget.it_W == pytest.approx(4 * SERVER_W)


def test_cluster_graph_rails(tmp_path: Path) -> None:
    # Rail-optimized, 64 servers x 8 NICs on radix 64: a rail (64 NICs) fills two leaves
    # of 32, so NIC k of every server reaches only rail k's own leaves.
    graph = cluster_graph(_cluster(tmp_path, 64, 64, "rail-optimized-fat-tree"))
    for s in (0, 31, 32, 63):
        for k in range(8):
            leaves = [n for n in graph[("nic", s, k)] if n[0] == "leaf"]
            assert leaves == [("leaf", k, s // 32)]
    chips = [n for n, d in graph.nodes(data=True) if d.get("kind") == "chip"]
    assert len(chips) == 512
    assert nx.is_connected(graph)


def test_short_rails_share_leaves(tmp_path: Path) -> None:
    # 16 servers x 8 NICs on radix 64: a rail has 16 NICs, half a leaf's 32 down ports, so
    # rails share leaves two by two: NICs 2g and 2g + 1 of every server on leaf g, and no
    # other NIC there (each rail still meets itself on one switch).
    graph = cluster_graph(_cluster(tmp_path, 64, 16, "rail-optimized-fat-tree"))
    for g in range(4):
        nics = {n for n in graph[("leaf", g, 0)] if n[0] == "nic"}
        assert {k for _, _, k in nics} == {2 * g, 2 * g + 1}
        assert len(nics) == 32
    assert not [n for n in graph.nodes if n[0] == "leaf" and n[1] >= 4]
    assert nx.is_connected(graph)


def test_rack_scale_rails_stay_two_tier(tmp_path: Path, builtin: Catalog) -> None:
    # 8 GB200 NVL72 racks (NVIDIA's 576-GPU scalable unit) on radix-64 switches: 72 rails
    # of 8 NICs (one per rack); 32 // 8 = 4 rails per leaf -> 18 leaves of 32 down and 32
    # up, 18 x 32 / 64 = 9 spines: 27 switches in two tiers (576 endpoints < 64**2 / 2).
    # One leaf per rail would have needed 72 leaves and a third tier.
    path = tmp_path / "gb.yaml"
    path.write_text("name: 8 racks\nserver: gb200-nvl72\nservers: 8\n", encoding="utf-8")
    system = load_system(path, builtin)
    shape = scale_out_shape(system)
    assert shape is not None
    assert (shape.rails_per_leaf, shape.leaf_groups, shape.spines, shape.tiers) == (4, 18, 9, 2)
    summary = summarize(system)
    assert summary.scale_out_switches == 27
    assert summary.scale_out_tiers == 2
    # Half the racks' NICs (4 x 72 x 50 GB/s) cross the cut: the non-blocking tree and
    # the graph's max flow agree.
    assert summary.bisection_Bps == pytest.approx(4 * 72 * 50e9)
    assert summarize(system, method="analytic").bisection_Bps == pytest.approx(
        summary.bisection_Bps)


# ---- fat_tree_shape ------------------------------------------------------------------


def test_fat_tree_shape_rail_optimized_radix_64() -> None:
    shape = fat_tree_shape(128 * 8, 8, 64)
    assert (shape.leaves_per_rail, shape.spines, shape.tiers) == (4, 16, 2)
    assert (shape.down_per_leaf, shape.up_per_leaf) == (32, 32)


def test_fat_tree_shape_rail_optimized_radix_128() -> None:
    shape = fat_tree_shape(128 * 8, 8, 128)
    assert (shape.leaves_per_rail, shape.spines, shape.tiers) == (2, 8, 2)


@pytest.mark.parametrize("radix", [16, 64, 128])
def test_fat_tree_two_tier_limit_is_half_radix_squared(radix: int) -> None:
    # A non-blocking two-tier tree of radix k: k leaves of k/2 endpoints, k/2 spines.
    full = fat_tree_shape(radix * radix // 2, 1, radix)
    assert (full.tiers, full.leaves_per_rail, full.spines) == (2, radix, radix // 2)
    assert fat_tree_shape(radix * radix // 2 + 1, 1, radix).tiers == 3


def test_fat_tree_two_tier_limit_with_rails() -> None:
    # Eight rails of radix 64 share the 64 spine ports per spine: 8 x 256 = 2048 NICs.
    assert fat_tree_shape(8 * 256, 8, 64).tiers == 2
    assert fat_tree_shape(8 * 257, 8, 64).tiers == 3


def test_fat_tree_single_switch() -> None:
    shape = fat_tree_shape(64, 1, 64)
    assert (shape.tiers, shape.leaves_per_rail, shape.spines) == (1, 1, 0)


def test_fat_tree_oversubscribed() -> None:
    # 3:1 on radix 64: a leaf serves 48 endpoints and sends 16 up; 960 = 20 x 48
    # endpoints need 20 leaves, 20 x 16 = 320 up ports / 64 = 5 spines.
    shape = fat_tree_shape(960, 1, 64, oversubscription=3.0)
    assert (shape.down_per_leaf, shape.up_per_leaf) == (48, 16)
    assert (shape.leaves_per_rail, shape.spines, shape.tiers) == (20, 5, 2)


# ---- power ---------------------------------------------------------------------------


@pytest.mark.parametrize(("redundancy", "usable"), [
    ("N", 4), ("N+1", 3), ("N+2", 2), ("N+N", 2)])
def test_psu_capacity(redundancy: str, usable: int) -> None:
    assert psu_capacity_W(4, 3000.0, redundancy) == pytest.approx(usable * 3000.0)


def test_psu_capacity_n_plus_n_six_supplies() -> None:
    # 3 + 3 supplies of 3.2 kW: one feed's three carry the load.
    assert psu_capacity_W(6, 3200.0, "N+N") == pytest.approx(9600.0)


def test_server_power_budget_vs_supplies(tmp_path: Path) -> None:
    system = _one_server(tmp_path)
    budget = power_budget(system)
    assert budget.modules_W == pytest.approx(8 * 600)
    assert budget.cpus_W == pytest.approx(2 * 300)
    assert budget.nics_W == pytest.approx(8 * 25)
    assert budget.server_W == pytest.approx(SERVER_W)
    assert budget.unknown == ()
    # 4 x 3000 W: N+1 holds 9000 W (enough), N+N 6000 W (not enough).
    assert budget.server_W <= psu_capacity_W(4, 3000.0, "N+1")
    assert budget.server_W > psu_capacity_W(4, 3000.0, "N+N")
    # One server on its own buys no scale-out switch.
    assert budget.switches_W == 0
    assert budget.facility_W == pytest.approx(SERVER_W * 1.2)


def test_cluster_power_counts_switches(tmp_path: Path) -> None:
    # 16 servers x 8 NICs on radix 64, rail-optimized: rails of 16 NICs share leaves two
    # by two, 4 leaves (32 down, 32 up) and 4 x 32 / 64 = 2 spines: 6 switches of 1000 W.
    budget = power_budget(_cluster(tmp_path, 64, 16, "rail-optimized-fat-tree"))
    assert budget.switches_W == pytest.approx(6 * 1000)
    assert budget.it_W == pytest.approx(16 * SERVER_W + 6 * 1000)


def test_dgx_h100_power_matches_published_max(tmp_path: Path, builtin: Catalog) -> None:
    # NVIDIA: 10.2 kW system maximum; six 3.3 kW supplies in 4 + 2.
    path = tmp_path / "dgx.yaml"
    path.write_text("name: one DGX H100\nserver: dgx-h100\nservers: 1\n", encoding="utf-8")
    system = load_system(path, builtin)
    budget = power_budget(system)
    assert budget.server_W == pytest.approx(10_200)
    psu = system.server.power_supplies
    assert psu_capacity_W(psu.count, psu.rating, psu.redundancy) == pytest.approx(4 * 3300)


def test_a_tpu_slice_counts_only_its_hosts(builtin: Catalog) -> None:
    """A 256-chip v5p slice of the 6144-chip pod (one server of 1536 hosts, 4 chips each)
    runs 64 hosts: its host parts are 64/1536 of the pod's, so its power per chip equals
    the whole pod's; a one-host server keeps its whole host."""
    pod = system_for_chip(builtin, "tpu-v5p", 6144)
    part = system_for_chip(builtin, "tpu-v5p", 256)
    assert host_share(pod) == 1.0
    assert host_share(part) == pytest.approx(64 / 1536)
    whole, sliced = power_budget(pod), power_budget(part)
    assert sliced.cpus_W == pytest.approx(whole.cpus_W * 64 / 1536)
    assert sliced.other_W == pytest.approx(whole.other_W * 64 / 1536)
    assert sliced.it_W / 256 == pytest.approx(whole.it_W / 6144)
    four = system_for_chip(builtin, "h100-sxm-80gb", 4)
    assert host_share(four) == 1.0
    assert power_budget(four).cpus_W == power_budget(
        system_for_chip(builtin, "h100-sxm-80gb", 8)).cpus_W


def test_1024_cluster_power(builtin: Catalog) -> None:
    # From the YAML: 8 x MI355X + 2 x EPYC 9575F + 8 Pollara NICs + other power, plus the
    # fabric's switches. The Pollara NIC gives no power figure, so it counts the NIC law's
    # estimate; the roce-400g switch gives one.
    acc = _q(_yaml("accelerators", "mi355x")["power"]["tdp"], units.POWER)
    cpu = _q(_yaml("cpus", "epyc-9575f")["tdp"], units.POWER)
    server = _yaml("servers", "amd-mi355x-platform")
    other = _q(server["other_power"], units.POWER)
    switch_W = _q(_yaml("fabrics", "roce-400g")["switch"]["power"], units.POWER)
    system = _example("ubb-1024-liquid.yaml", builtin)
    budget = power_budget(system)
    nic = estimate_nic(system.server_nics[0][0])
    shape = scale_out_shape(system)
    assert nic is not None
    assert shape is not None
    expected = 8 * acc + server["host"]["sockets"] * cpu + 8 * nic.power_W + other
    it = 128 * expected + shape.switches * switch_W
    assert budget.server_W == pytest.approx(expected)
    assert budget.it_W == pytest.approx(it)
    assert budget.facility_W == pytest.approx(it * 1.15)
    assert budget.unknown == ()
    assert [e.part for e in budget.estimated] == ["nic amd-pollara-400"]


# ---- CLI -----------------------------------------------------------------------------


def test_cli_topology_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", str(EXAMPLES / "ubb-1024-liquid.yaml"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    fields = set(TopologySummary.__dataclass_fields__)
    assert set(data) == fields | {"server_power_W", "it_power_W", "supply_input_power_W",
                                  "facility_power_W", "pue"}
    # facility power is the facility plan's (the one every energy figure uses)
    from ocplan.catalog.catalog import load_catalog
    from ocplan.catalog.system import load_system
    from ocplan.facility import facility_plan

    plan = facility_plan(load_system(EXAMPLES / "ubb-1024-liquid.yaml", load_catalog()))
    assert data["facility_power_W"] == pytest.approx(plan.facility_W)
    assert data["supply_input_power_W"] == pytest.approx(plan.it_W)
    assert data["pue"] == pytest.approx(plan.pue)
    assert data["diameter_hops"] == 6
    assert data["chips"] == 1024
    # switches on top of the servers (the roce-400g switch's published power)
    switch_W = _q(_yaml("fabrics", "roce-400g")["switch"]["power"], units.POWER)
    assert data["it_power_W"] == pytest.approx(128 * data["server_power_W"]
                                               + data["scale_out_switches"] * switch_W)


def test_cli_topology_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["topology", str(EXAMPLES / "mx1-8oam-air.yaml")]) == 0
    out = capsys.readouterr().out
    assert "fully_connected" in out
    assert "1 hop (chip to chip)" in out
    assert "1 hop (chip to chip within a server, scale-up links only)" in out
    assert "1 hops" not in out


def test_cluster_graph_has_cpus_and_latency_on_every_link() -> None:
    import yaml

    from ocplan.catalog.catalog import load_catalog
    from ocplan.catalog.system import SystemSpec, resolve_system
    from ocplan.topology.cluster import cluster_graph

    data = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples"
                           / "ubb-1024-liquid.yaml").read_text())
    data["servers"] = 4
    cat = load_catalog()
    system = resolve_system(SystemSpec.model_validate(data), cat, "test")
    graph = cluster_graph(system)
    cpus = [n for n, d in graph.nodes(data=True) if d["kind"] == "cpu"]
    assert len(cpus) == 4 * system.server.host.sockets
    assert all(d["latency_s"] > 0 for _, _, d in graph.edges(data=True))
    fabric_hops = {d["latency_s"] for _, _, d in graph.edges(data=True)
                   if d["tier"] == "scale-out"}
    assert fabric_hops == {system.fabric.hop_latency}
    # every chip reaches its host CPU over PCIe
    assert all(any(nb[0] == "cpu" for nb in graph[("chip", s, i)])
               for s in range(4) for i in range(8))


def test_uneven_rail_groups_agree_between_graph_and_numbers(tmp_path: Path) -> None:
    # 10 servers x 8 NICs on radix 64: rails of 10 NICs, 32 // 10 = 3 per leaf, so groups
    # of 3, 3 and 2 rails (3 leaves, 30 up each, 3 x 30 / 64 -> 2 spines).
    system = _cluster(tmp_path, 64, 10, "rail-optimized-fat-tree")
    shape = scale_out_shape(system)
    assert shape is not None
    assert (shape.rails_per_leaf, shape.leaf_groups, shape.up_per_leaf, shape.spines) == (
        3, 3, 30, 2)
    graph, numbers = summarize(system, method="graph"), summarize(system, method="analytic")
    assert graph.scale_out_switches == numbers.scale_out_switches == 5
    assert numbers.bisection_Bps == pytest.approx(graph.bisection_Bps)
    assert numbers.diameter_hops == graph.diameter_hops
    assert (numbers.nodes, numbers.links) == (graph.nodes, graph.links)


def test_a_multi_port_endpoint_takes_a_leaf_port_per_link() -> None:
    """A Gaudi 3's three 200G ports on a 200G fabric are three leaf ports: a tree that
    gave each chip one port had 3 x 64 endpoint links on leaves of radix 128 (3:1
    oversubscribed, silently) and a third of the non-blocking bisection."""
    system = load_system(EXAMPLES / "gaudi3-1024-air.yaml", load_catalog())
    shape = scale_out_shape(system)
    assert shape is not None
    assert shape.ports_per_endpoint == 3
    # every leaf fits its radix and is non-blocking
    assert shape.down_per_leaf * 3 + shape.up_per_leaf <= shape.radix
    assert shape.up_per_leaf >= shape.down_per_leaf * 3
    summary = summarize(system)
    assert summary.bisection_Bps == pytest.approx(1024 * 75e9 / 2, rel=1e-9)
    # the ports shape: 3072 of them at <= 64 a leaf need 48 leaves or more
    assert shape.leaf_groups * shape.leaves_per_rail >= 3072 // 64


def test_a_port_per_endpoint_keeps_the_single_port_tree() -> None:
    assert fat_tree_shape(128 * 8, 8, 64, ports=1) == fat_tree_shape(128 * 8, 8, 64)
    two = fat_tree_shape(128 * 8, 8, 64, ports=2)
    assert (two.down_per_leaf, two.up_per_leaf) == (16, 32)
