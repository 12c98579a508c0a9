"""Topology at scale: size guards, the analytic summary and the bounded cluster view.

A system file passes the schema up to 2**20 chips; the whole cluster graph of such a
system would not fit in memory. These tests check that (a, b) the summary, the report
and the CLI stay fast at 131,072 and 2**20 chips and give the closed-form counts, (c) a
system beyond the bound is refused at once with one line and exit code 2, (d) the
analytic method equals the graph method wherever both run, over boards and fabrics of
every kind, and (e) nothing builds a graph beyond MAX_GRAPH_NODES / MAX_GRAPH_EDGES.

Expected counts are worked out in the comments from the example system
(examples/ubb-1024-liquid.yaml: 8 x MI355X fully connected per server, 8 x 400G NICs,
rail-optimized RoCE on radix-128 switches) and the fat-tree rules of ``fat_tree_shape``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import networkx as nx
import pytest
import yaml

from ocplan import api
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.system import ScaleOutSpec, System, SystemSpec, load_system, resolve_system
from ocplan.catalog.system import system_for_chip as chip_system
from ocplan.cli.main import main
from ocplan.errors import Infeasible
from ocplan.topology import builders
from ocplan.topology.analysis import MAX_SUMMARY_CHIPS, TopologySummary, summarize
from ocplan.topology.cluster import (
    MAX_GRAPH_EDGES,
    MAX_GRAPH_NODES,
    board_graph,
    board_size,
    check_graph_size,
    cluster_graph,
    cluster_size,
)
from ocplan.topology.power import power_budget

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: Generous wall-clock bound for one summary or report of the largest systems (the
#: analytic method takes well under 0.1 s on 8-chip servers; the graph method took 102 s
#: at 131,072 chips before the size bound).
FAST_S = 5.0
SOURCE = [{"title": "ocplan test fixture", "covers": ["*"]}]


@pytest.fixture(autouse=True)
def _no_env_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OCPLAN_CATALOG", raising=False)


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog(use_env=False)


def _example_data(servers: int) -> dict[str, Any]:
    data = yaml.safe_load((EXAMPLES / "ubb-1024-liquid.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    data["servers"] = servers
    return data


def _example(catalog: Catalog, servers: int) -> System:
    return resolve_system(SystemSpec.model_validate(_example_data(servers)), catalog, "test")


def _write_example(tmp_path: Path, servers: int) -> Path:
    path = tmp_path / f"cluster-{servers}.yaml"
    path.write_text(yaml.safe_dump(_example_data(servers)), encoding="utf-8")
    return path


def _beyond_schema(system: System, servers: int) -> System:
    """The same system with ``servers`` servers, built without the schema's bounds (as an
    API caller could): model_copy does not validate."""
    return dataclasses.replace(system, spec=system.spec.model_copy(update={"servers": servers}))


def _closed_form_counts(system: System) -> tuple[int, int, float]:
    """(nodes, links, bisection B/s) of a rail-optimized, non-blocking fat tree of 8-chip
    fully connected servers with one 1-link NIC per chip, worked out by hand.

    Per server: 8 chips + c CPUs + 8 NICs; 28 board links (K8) + 8 chip-CPU + 8 chip-NIC
    + 8 NIC-leaf links. Per rail: S servers, a radix-r leaf serves r / 2 of them and sends
    r / 2 up: L = S / (r / 2) leaves; the 8 L leaves send 8 L r / 2 ports to
    8 L r / 2 / r = 4 L spines, each leaf-spine pair one link (r / 2 < spines here).
    Bisection: the first S / 2 servers' 8 S / 2 NICs at full rate through the
    non-blocking tree.
    """
    servers, radix = system.num_servers, system.fabric.switch.radix if system.fabric else 0
    sockets = system.server.host.sockets
    assert system.chips_per_server == 8
    assert system.nics_per_server == 8
    leaves = 8 * (servers // (radix // 2))
    spines = leaves * (radix // 2) // radix
    assert radix // 2 < spines  # one link per leaf-spine pair
    nodes = servers * (8 + sockets + 8) + leaves + spines
    links = servers * (28 + 8 + 8 + 8) + leaves * spines
    nic_Bps = system.nic.port_bandwidth if system.nic else 0.0
    assert system.fabric is not None
    assert nic_Bps == system.fabric.link_bandwidth  # 400G NICs on 400G links: no training
    return nodes, links, servers // 2 * 8 * nic_Bps


# ---- (a) 131,072 chips ---------------------------------------------------------------


def test_131072_chips_summary_and_report_are_fast(builtin: Catalog) -> None:
    # 16,384 servers x 8: 256 leaves per rail, 2,048 leaves, 1,024 spines; the graph
    # would have 297,984 nodes and 2.9 M edges (102 s and 4.95 GB before the bound).
    system = _example(builtin, 16_384)
    assert system.num_chips == 131_072
    nodes, links, bisection = _closed_form_counts(system)
    assert (nodes, links) == (16_384 * 18 + 2_048 + 1_024, 16_384 * 52 + 2_048 * 1_024)
    start = time.perf_counter()
    summary = summarize(system)
    assert time.perf_counter() - start < FAST_S
    assert summary.method == "analytic"
    assert (summary.nodes, summary.links) == (nodes, links)
    assert summary.bisection_Bps == pytest.approx(bisection)
    assert summary.diameter_hops == 6  # chip - nic - leaf - spine - leaf - nic - chip
    # 2,048 leaves is more than the radix: the spines need a third tier.
    assert (summary.scale_out_tiers, summary.scale_out_switches) == (3, 2_048 + 1_024)
    start = time.perf_counter()
    report = api.topology_report(system)
    assert time.perf_counter() - start < FAST_S
    assert (report["nodes"], report["links"], report["method"]) == (nodes, links, "analytic")
    view = report["cluster"]
    assert view["servers_shown"] == api.CLUSTER_VIEW_MAX_SERVERS
    kinds = [n["kind"] for n in view["nodes"]]
    assert kinds.count("server") == api.CLUSTER_VIEW_MAX_SERVERS
    assert kinds.count("leaf") == api.CLUSTER_VIEW_MAX_SWITCHES
    assert kinds.count("spine") == api.CLUSTER_VIEW_MAX_SWITCHES


# ---- (b) the largest allowed system --------------------------------------------------


def test_largest_system_is_summarized(builtin: Catalog) -> None:
    # 131,072 servers x 8 = 2**20 chips: 2,048 leaves per rail, 16,384 leaves, 8,192
    # spines; as a graph 2.4 M nodes and 141 M edges.
    system = _example(builtin, 2**20 // 8)
    assert system.num_chips == MAX_SUMMARY_CHIPS
    start = time.perf_counter()
    summary = summarize(system)
    assert time.perf_counter() - start < FAST_S
    nodes, links, bisection = _closed_form_counts(system)
    assert (summary.nodes, summary.links) == (nodes, links)
    assert summary.bisection_Bps == pytest.approx(bisection)
    assert summary.diameter_hops == 6
    assert summary.method == "analytic"


def test_cli_topology_json_on_largest_system(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _write_example(tmp_path, 2**20 // 8)
    start = time.perf_counter()
    assert main(["topology", str(path), "--format", "json"]) == 0
    assert time.perf_counter() - start < FAST_S
    data = json.loads(capsys.readouterr().out)
    assert data["chips"] == 2**20
    assert data["method"] == "analytic"
    assert data["diameter_hops"] == 6
    assert data["nodes"] == 131_072 * 18 + 16_384 + 8_192


# ---- (c) beyond the bound ------------------------------------------------------------


def test_8m_chips_refused_by_the_guard(builtin: Catalog) -> None:
    system = _beyond_schema(_example(builtin, 1), 1_000_000)
    assert system.num_chips == 8_000_000
    start = time.perf_counter()
    for build in (summarize, api.topology_report, cluster_graph):
        with pytest.raises(Infeasible) as info:
            build(system)
        assert info.value.reason == "size"
    assert time.perf_counter() - start < 1.0
    with pytest.raises(Infeasible, match=r"8,000,000 chips .* at most 1,048,576 chips"):
        summarize(system)


def test_power_budget_is_constant_time(builtin: Catalog) -> None:
    # The budget multiplies one server's power and counts switches from the tree's
    # shape: the same cost at 8 M chips as at 8.
    small = power_budget(_example(builtin, 128))
    start = time.perf_counter()
    huge = power_budget(_beyond_schema(_example(builtin, 1), 1_000_000))
    assert time.perf_counter() - start < 0.5
    assert huge.server_W == pytest.approx(small.server_W)
    assert huge.it_W == pytest.approx(1_000_000 * huge.server_W + huge.switches_W)


def test_cli_refuses_8m_chips_with_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Either the schema's bound or the topology guard refuses it: one line, exit 2,
    # naming the size and the limit.
    path = _write_example(tmp_path, 1_000_000)
    start = time.perf_counter()
    assert main(["topology", str(path), "--format", "json"]) == 2
    assert time.perf_counter() - start < FAST_S
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert "8,000,000" in lines[0]
    assert "1,048,576" in lines[0]
    # --format json: stdout is the error document, its message the stderr line
    error = json.loads(captured.out)["error"]
    assert error["exit_code"] == 2
    assert [p["message"] for p in error["problems"]] == lines


def test_cli_maps_the_guard_to_exit_2(tmp_path: Path, builtin: Catalog,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    # The guard itself, as a system that passed an older schema would meet it.
    system = _beyond_schema(_example(builtin, 1), 1_000_000)
    monkeypatch.setattr("ocplan.api.read_system", lambda *_: system)
    path = _write_example(tmp_path, 1)
    assert main(["topology", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines == [f"{path}: 8,000,000 chips (1,000,000 servers x 8); the topology "
                     "summary covers systems of at most 1,048,576 chips"]
    assert "Traceback" not in captured.err


# ---- (d) analytic == graph -----------------------------------------------------------


def _module(ports: int) -> dict[str, Any]:
    return {
        "kind": "accelerator", "id": "t-oam", "name": "Test OAM module", "vendor": "Test",
        "form_factor": "oam", "oam_version": "1.5", "launch_year": 2024,
        "peak_flops": {"bf16": "500 TFLOP/s"},
        "memory": {"hbm_capacity": "96 GB", "hbm_bandwidth": "3 TB/s", "hbm_type": "HBM3"},
        "scale_up": {"fabric": "test-link", "ports": ports, "lanes_per_port": 16,
                     "lane_rate": "56 Gb/s", "port_bandwidth": "50 GB/s"},
        "host": {"kind": "pcie", "gen": 5, "lanes": 16},
        "power": {"tdp": "600 W", "rail": "54 V"}, "cooling": ["air", "liquid"],
        "sources": SOURCE,
    }


def _entries(board: str, ports: int, nics: int, radix: int, sockets: int) -> list[dict[str, Any]]:
    """A test module on a builtin baseboard, with test CPU, NIC, fabric and server."""
    cpu = {
        "kind": "cpu", "id": "t-cpu", "name": "Test CPU", "vendor": "Test",
        "codename": "Testlake", "isa": "x86-64", "launch_year": 2024, "cores": 64,
        "threads": 128, "base_clock": "2 GHz", "memory_channels": 8,
        "memory_type": "DDR5-4800", "memory_bandwidth": "307.2 GB/s", "pcie_lanes": 80,
        "pcie_gen": 5, "tdp": "300 W", "sources": SOURCE,
    }
    nic = {
        "kind": "nic", "id": "t-nic", "name": "Test NIC 400G", "vendor": "Test",
        "protocol": "roce", "ports": 1, "port_bandwidth": "400 Gb/s",
        "host": {"kind": "pcie", "gen": 5, "lanes": 16}, "power": "25 W", "sources": SOURCE,
    }
    fabric = {
        "kind": "fabric", "id": "t-fab", "name": "Test RoCE 400G", "protocol": "roce",
        "link_bandwidth": "400 Gb/s",
        "switch": {"name": "Test switch", "radix": radix, "power": "1000 W"},
        "hop_latency": "1 us", "nic": "t-nic", "achievable_fraction": 0.9, "sources": SOURCE,
    }
    server = {
        "kind": "server", "id": "t-srv", "name": "Test server", "vendor": "Test",
        "baseboard": board, "accelerator": "t-oam",
        "host": {"cpu": "t-cpu", "sockets": sockets},
        "nics": [{"nic": "t-nic", "count": nics, "attach": "pcie-switch"}],
        "default_fabric": "t-fab",
        "power_supplies": {"count": 4, "rating": "3000 W", "redundancy": "N+1"},
        "other_power": "2000 W", "cooling": "liquid", "sources": SOURCE,
    }
    return [_module(ports), cpu, nic, fabric, server]


def _custom(tmp_path: Path, board: str, ports: int, nics: int, radix: int, servers: int,
            topology: str, sockets: int = 2) -> System:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for entry in _entries(board, ports, nics, radix, sockets):
        (folder / f"{entry['kind']}.yaml").write_text(yaml.safe_dump(copy.deepcopy(entry)),
                                                     encoding="utf-8")
    spec = SystemSpec(name=f"{servers} x {board}", server="t-srv", servers=servers,
                      scale_out=ScaleOutSpec(fabric="t-fab", nics_per_server=nics,
                                             topology=topology))
    return resolve_system(spec, load_catalog([folder], use_env=False), "test")


def _builtin(catalog: Catalog, chip: str, chips: int, topology: str | None = None,
             oversubscription: float = 1.0, server: str | None = None) -> System:
    scale_out = None
    if topology is not None:
        fabric = chip_system(catalog, chip, 1, server_id=server).server.default_fabric
        assert fabric is not None
        scale_out = ScaleOutSpec(fabric=fabric, topology=topology,  # type: ignore[arg-type]
                                 oversubscription=oversubscription)
    return chip_system(catalog, chip, chips, server_id=server, scale_out=scale_out)


#: Mid-size systems of every board kind and fabric setting, small enough for the graph.
#: (id, how to build it): builtin(chip, chips, topology, oversubscription) or
#: custom(board, module ports, NICs, radix, servers, topology[, sockets]).
MID_SIZE: list[tuple[str, tuple[Any, ...]]] = [
    # 200 x 8 MI355X, fully connected, rail-optimized, 2 leaves per rail.
    ("fc-rail", ("builtin", "mi355x", 1600, None, 1.0, "amd-mi355x-platform")),
    # 100 x 8 MI355X on one plain tree oversubscribed 3:1 (96 down, 32 up per leaf).
    ("fc-plain-3to1", ("builtin", "mi355x", 800, "fat-tree", 3.0, "amd-mi355x-platform")),
    # DGX H100: NVSwitch board, rail-optimized 2:1 on radix-64 InfiniBand.
    ("switch-rail-2to1", ("builtin", "h100-sxm-80gb", 296, "rail-optimized-fat-tree", 2.0)),
    # Gaudi 2: 3 ports per peer, integrated 3-port NICs; 50 servers fit one leaf per rail,
    # so the farthest chips are one board hop past a shared leaf (diameter 5).
    ("fc3-rail", ("builtin", "gaudi2", 400)),
    # MI250X 4-OAM blades on Slingshot.
    ("fc4-slingshot", ("builtin", "mi250x", 360)),
    # NVL72 racks: a 72-chip switch plane per server.
    ("nvl72-plain", ("builtin", "gb200", 360, "fat-tree", 1.0)),
    # TPU v5e: four 16 x 16 torus pods on the data-center network.
    ("torus-pods", ("builtin", "tpu-v5e", 1024)),
    # A 4-chip TPU v4 slice, torus (2, 2, 1): sizes 2 and 1 in one slice.
    ("torus-slice", ("builtin", "tpu-v4", 4)),
    # OAM v1.5 hybrid cube mesh, 6 ports, on a plain radix-16 tree.
    ("hcm6-plain", ("custom", "ubb-1.5-hcm6", 6, 8, 16, 30, "fat-tree")),
    # Almost fully connected UBB, rail-optimized on radix 12 (3 leaves per rail).
    ("afc-rail", ("custom", "ubb-1.5-afc", 6, 8, 12, 17, "rail-optimized-fat-tree")),
    # PCIe-only board (no CPU nodes), 2 NICs per server shared by 4 chips each.
    ("pcie-plain", ("custom", "pcie-gen5-8", 7, 2, 16, 60, "fat-tree")),
    # 5 NICs per server on radix-10 leaves: server NICs split across leaves unevenly.
    ("fc-5nics-plain", ("custom", "ubb-1.5-fc8", 7, 5, 10, 29, "fat-tree", 3)),
    # No scale-out network: disconnected servers (diameter -1, bisection 0).
    ("none", ("builtin", "mi355x", 64, "none", 1.0, "amd-mi355x-platform")),
]


@pytest.fixture(params=[case for case, _ in MID_SIZE])
def mid_system(request: pytest.FixtureRequest, tmp_path: Path, builtin: Catalog) -> System:
    how = dict(MID_SIZE)[request.param]
    if how[0] == "custom":
        return _custom(tmp_path, *how[1:])
    return _builtin(builtin, *how[1:])


def test_analytic_equals_graph(mid_system: System) -> None:
    size = cluster_size(mid_system)
    graph = cluster_graph(mid_system)
    assert (size.nodes, size.edges) == (graph.number_of_nodes(), graph.number_of_edges())
    assert size.links == sum(d["links"] for _, _, d in graph.edges(data=True))
    assert size.chips == sum(1 for _, d in graph.nodes(data=True) if d.get("kind") == "chip")
    board = board_graph(mid_system)
    bsize = board_size(mid_system)
    assert (bsize.nodes, bsize.edges) == (board.number_of_nodes(), board.number_of_edges())
    by_graph = summarize(mid_system, "graph")
    analytic = summarize(mid_system, "analytic")
    assert (by_graph.method, analytic.method) == ("graph", "analytic")
    assert (analytic.nodes, analytic.links) == (by_graph.nodes, by_graph.links)
    assert analytic.diameter_hops == by_graph.diameter_hops
    assert analytic.bisection_Bps == pytest.approx(by_graph.bisection_Bps, rel=1e-9)
    rest = set(TopologySummary.__dataclass_fields__) - {"method", "bisection_Bps"}
    assert {k: getattr(analytic, k) for k in rest} == {k: getattr(by_graph, k) for k in rest}


def test_mid_size_values_are_not_trivial(builtin: Catalog, tmp_path: Path) -> None:
    # The equality above covers distinct outcomes, not one repeated value.
    gaudi = summarize(_builtin(builtin, "gaudi2", 400), "analytic")
    # Each chip's three 100G ports take three leaf ports (session 42): a radix-128 leaf
    # serves 21 chips, so a rail of 50 servers spans 3 leaves and the farthest chips
    # meet through a spine: chip - nic - leaf - spine - leaf - nic - chip.
    assert gaudi.diameter_hops == 6
    oversubscribed = summarize(_builtin(builtin, "mi355x", 800, "fat-tree", 3.0,
                                        "amd-mi355x-platform"), "analytic")
    # 800 NICs of 50 GB/s on radix 128 at 3:1: a leaf may serve 96, so 9 leaves of 89
    # (the last 88) with ceil(89 / 3) = 30 uplinks each. Servers 0-49 own NICs 0-399:
    # leaves 0-3 and 44 NICs of leaf 4. With the spines on the right of the cut, each of
    # the 4 full leaves sends 30 links up and leaf 4's 44 left NICs reach its 45 right
    # ones: 164 links; the spines on the left give 45 + 4 x 30 = 165, more.
    assert oversubscribed.bisection_Bps == pytest.approx((4 * 30 + 44) * 50e9)
    single = summarize(_custom(tmp_path, "ubb-1.5-fc8", 7, 1, 64, 20, "fat-tree"), "analytic")
    assert (single.scale_out_tiers, single.diameter_hops) == (1, 4)  # one switch


def test_small_systems_keep_the_graph_method(builtin: Catalog) -> None:
    summary = summarize(_example(builtin, 128))
    assert summary.method == "graph"
    assert summary.as_dict()["method"] == "graph"


# ---- the cluster view ----------------------------------------------------------------


def _graph_cluster_view(system: System) -> dict[str, Any]:
    """The cluster view as it was drawn from the whole cluster graph (reference)."""
    shown = min(system.num_servers, api.CLUSTER_VIEW_MAX_SERVERS)
    graph = cluster_graph(system)
    node_of: dict[Any, str] = {}
    for node in graph.nodes:
        if node[0] in ("chip", "nic", "sw") and node[1] < shown:
            node_of[node] = f"server {node[1]}"
        elif node[0] == "leaf":
            node_of[node] = f"leaf {node[1]}.{node[2]}"
        elif node[0] == "spine":
            node_of[node] = f"spine {node[1]}"
    edges: dict[tuple[str, str], float] = {}
    for a, b, d in graph.edges(data=True):
        na, nb = node_of.get(a), node_of.get(b)
        if na is None or nb is None or na == nb:
            continue
        key = (min(na, nb), max(na, nb))
        edges[key] = edges.get(key, 0.0) + d["bandwidth_Bps"]
    used = {n for pair in edges for n in pair}
    return {"nodes": [{"id": n, "kind": n.split(" ")[0]} for n in sorted(used)],
            "edges": [{"source": a, "target": b, "bandwidth_Bps": bw}
                      for (a, b), bw in sorted(edges.items())],
            "servers_shown": shown}


@pytest.mark.parametrize("case", ["fc-rail", "fc3-rail", "pcie-plain", "torus-pods",
                                  "fc-5nics-plain"])
def test_cluster_view_equals_the_graph_view(case: str, tmp_path: Path,
                                            builtin: Catalog) -> None:
    how = dict(MID_SIZE)[case]
    system = _custom(tmp_path, *how[1:]) if how[0] == "custom" else _builtin(builtin, *how[1:])
    assert api._cluster_view(system) == _graph_cluster_view(system)


# ---- (e) graph size guards -----------------------------------------------------------


def test_cluster_graph_refuses_beyond_the_limit(builtin: Catalog) -> None:
    # 4,096 servers x 18 nodes = 73,728 nodes (+ switches) > MAX_GRAPH_NODES.
    system = _example(builtin, 4096)
    size = cluster_size(system)
    assert size.nodes > MAX_GRAPH_NODES
    start = time.perf_counter()
    with pytest.raises(Infeasible) as info:
        cluster_graph(system)
    with pytest.raises(Infeasible):
        summarize(system, "graph")
    assert time.perf_counter() - start < 1.0
    assert info.value.reason == "size"
    assert f"{size.nodes:,} nodes" in info.value.detail
    assert f"at most {MAX_GRAPH_NODES:,} nodes" in info.value.detail
    assert summarize(system).method == "analytic"


def test_guard_boundary(builtin: Catalog) -> None:
    # The largest example cluster within the limits passes the guard and one more server
    # does not (the prediction is exact: checked against built graphs above).
    low, high = 1, 4096
    while high - low > 1:
        mid = (low + high) // 2
        size = cluster_size(_example(builtin, mid))
        low, high = (mid, high) if size.nodes <= MAX_GRAPH_NODES and \
            size.edges <= MAX_GRAPH_EDGES else (low, mid)
    check_graph_size(cluster_size(_example(builtin, low)), "largest")
    with pytest.raises(Infeasible, match="at most 50,000 nodes and 250,000 edges"):
        cluster_graph(_example(builtin, high))


def test_board_graph_refuses_a_huge_board(builtin: Catalog) -> None:
    # 1,000 modules fully connected (beyond any board's slots, so the schema refuses it;
    # built here without it): 499,500 edges > MAX_GRAPH_EDGES.
    base = _example(builtin, 1)
    system = dataclasses.replace(
        base, spec=base.spec.model_copy(update={"accelerators_per_server": 1000}))
    assert board_size(system).edges == 1000 * 999 // 2 > MAX_GRAPH_EDGES
    with pytest.raises(Infeasible, match="499,500 edges"):
        board_graph(system)


@pytest.mark.parametrize("dims", [(2, 1, 1), (2, 2, 1), (1, 4), (3, 2, 5), (4, 4, 4)])
def test_torus_matches_networkx_without_self_loops(dims: tuple[int, ...]) -> None:
    # The row-major torus builder equals networkx's periodic grid, minus the self-loops
    # networkx gives a dimension of size 1 (which has no link).
    ours = builders.torus(dims, 1.0)
    grid = nx.grid_graph(dim=list(reversed(dims)), periodic=True)
    index = {c: i for i, c in enumerate(sorted(grid.nodes))}
    expected = {frozenset((index[a], index[b])) for a, b in grid.edges if a != b}
    assert {frozenset(e) for e in ours.edges} == expected
    assert nx.number_of_selfloops(ours) == 0
    assert ours.number_of_nodes() == math.prod(dims)


def test_small_tpu_slice_has_one_link_per_neighbour(builtin: Catalog) -> None:
    # A 2-chip slice (2, 1, 1): one ICI link per chip, not a second one to itself.
    summary = summarize(chip_system(builtin, "tpu-v4", 2))
    assert summary.scale_up_Bps_per_chip == pytest.approx(summary.scale_up_port_Bps)


def test_load_system_of_the_example_is_unchanged(builtin: Catalog) -> None:
    # The shipped example still summarizes on the graph, as before.
    summary = summarize(load_system(EXAMPLES / "ubb-1024-liquid.yaml", builtin))
    assert (summary.method, summary.chips, summary.diameter_hops) == ("graph", 1024, 6)
