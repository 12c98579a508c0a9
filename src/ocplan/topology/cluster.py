"""A whole system as one graph: boards, NICs and the scale-out fabric.

:func:`board_graph` builds one server's scale-up graph from its baseboard and module;
:func:`cluster_graph` joins ``servers`` copies through NICs and a (rail-optimized) fat
tree. Node names are tuples: ``("chip", s, i)``, ``("sw", s)``, ``("cpu", s, k)``,
``("nic", s, k)``, ``("leaf", rail, j)``, ``("spine", j)``. Edge attributes are ``links``,
``bandwidth_Bps`` (per direction), ``latency_s`` and ``tier`` = ``"scale-up"``,
``"host"`` or ``"scale-out"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import networkx as nx

from ocplan.catalog.schema import Accelerator, Baseboard
from ocplan.catalog.system import System
from ocplan.topology import builders

__all__ = [
    "FatTreeShape",
    "board_graph",
    "chip_port_Bps",
    "chip_scale_out_Bps",
    "cluster_graph",
    "fat_tree_shape",
    "nic_Bps",
    "pcie_Bps",
    "scale_out_shape",
]

#: Usable bandwidth per lane per direction of PCIe generations, bytes/s, after line
#: encoding (128b/130b for Gen3-5, FLIT for Gen6): PCI-SIG rates as tabulated in
#: ../shared/reference/hardware.md §6 (x16: 31.5, 63.0, ~121 GB/s).
PCIE_LANE_Bps: dict[int, float] = {
    1: 0.25e9, 2: 0.5e9, 3: 0.985e9, 4: 31.5e9 / 16, 5: 63.0e9 / 16, 6: 121e9 / 16,
    7: 242e9 / 16,
}


def pcie_Bps(gen: int, lanes: int) -> float:
    """Usable PCIe bandwidth per direction for ``lanes`` lanes of generation ``gen``."""
    return PCIE_LANE_Bps[gen] * lanes


def chip_port_Bps(accel: Accelerator, board: Baseboard) -> float:
    """Per-direction bandwidth one scale-up port reaches on this board.

    A module whose SerDes are faster, or whose ports are wider, than the board's channels
    trains down: the port bandwidth scales by board rate / module rate and board lanes /
    module lanes (each capped at 1).
    """
    if accel.scale_up is None:
        return 0.0
    up = accel.scale_up
    rate = min(1.0, board.max_lane_rate / up.lane_rate)
    width = min(1.0, board.max_lanes_per_link / up.lanes_per_port)
    return up.port_bandwidth * rate * width


def board_graph(system: System) -> nx.Graph:
    """One server's scale-up graph, by the baseboard's topology kind."""
    board, accel = system.baseboard, system.accelerator
    n = system.chips_per_server
    port = chip_port_Bps(accel, board)
    ports = accel.scale_up.ports if accel.scale_up else 0
    kind = board.topology
    if accel.scale_up is None or kind == "pcie_switch":
        gen = accel.host.gen or 4
        return builders.pcie_switch(n, pcie_Bps(gen, accel.host.lanes))
    if kind == "fully_connected":
        return builders.fully_connected(n, port, board.links_per_pair)
    if kind in ("hybrid_cube_mesh_6", "hybrid_cube_mesh_8"):
        return _populated(builders.hybrid_cube_mesh(port, 6 if kind.endswith("6") else 8), n)
    if kind == "almost_fully_connected":
        return _populated(builders.almost_fully_connected(port), n)
    if kind == "fc_hcm_combined":
        return (builders.fully_connected(n, port) if ports >= 7
                else _populated(builders.hybrid_cube_mesh(port, 6), n))
    if kind == "hypercube_4d":
        return _populated(builders.hypercube(4, port, board.links_per_pair), n)
    if kind == "switch":
        return builders.switch(n, ports * port, ports)
    if kind == "torus":
        dims = system.torus_dims
        assert dims is not None
        return builders.torus(dims, port)
    raise AssertionError(f"unhandled topology {kind}")


def _populated(graph: nx.Graph, n: int) -> nx.Graph:
    """A fixed-shape board graph cut down to its first ``n`` (populated) slots."""
    keep = [v for v, d in graph.nodes(data=True) if d["kind"] != "chip" or v < n]
    return graph if len(keep) == graph.number_of_nodes() else graph.subgraph(keep).copy()


def nic_Bps(system: System) -> tuple[int, float]:
    """(scale-out endpoints per server, per-direction bandwidth of each endpoint).

    Server NICs when the server has them, else the accelerators' integrated ports. A NIC
    port faster than the fabric's links trains down to the link rate.
    """
    link = system.fabric.link_bandwidth if system.fabric is not None else math.inf
    nics = system.nics_per_server
    if nics and system.nic is not None:
        return nics, system.nic.ports * min(system.nic.port_bandwidth, link)
    inic = system.accelerator.integrated_nic
    if inic is not None:
        return system.chips_per_server, inic.ports * min(inic.port_bandwidth, link)
    return 0, 0.0


def chip_scale_out_Bps(system: System) -> float:
    """Scale-out bandwidth available per chip, per direction (NICs shared by the chips)."""
    endpoints, each = nic_Bps(system)
    return endpoints * each / system.chips_per_server


@dataclass(frozen=True)
class FatTreeShape:
    """Switch counts of a (rail-optimized) one-, two- or three-tier fat tree."""

    rails: int
    endpoints: int
    radix: int
    down_per_leaf: int
    """Endpoint ports a leaf serves."""
    up_per_leaf: int
    """Ports a leaf gives to the spine tier."""
    leaves_per_rail: int
    spines: int
    tiers: int

    @property
    def switches(self) -> int:
        return self.rails * self.leaves_per_rail + self.spines


def fat_tree_shape(endpoints: int, rails: int, radix: int,
                   oversubscription: float = 1.0) -> FatTreeShape:
    """Leaves and spines for ``endpoints`` NIC ports spread over ``rails`` rails.

    A leaf serves at most ``radix * o / (1 + o)`` endpoints and gives
    ``ceil(served / o)`` ports to the spines (o = oversubscription, 1 = non-blocking).
    One rail on one switch needs no spines. The spine tier is one level while every
    spine can reach every leaf (leaves <= radix); beyond that a third tier is needed, as
    a non-blocking two-tier tree holds radix**2 / 2 endpoints (hardware.md §7).
    """
    assert endpoints >= 1
    assert rails >= 1
    assert radix >= 2
    per_rail = -(-endpoints // rails)
    if rails == 1 and per_rail <= radix:
        return FatTreeShape(rails, endpoints, radix, per_rail, 0, 1, 0, 1)
    max_down = max(1, int(radix * oversubscription / (1 + oversubscription)))
    leaves = -(-per_rail // max_down)
    down = -(-per_rail // leaves)
    up = max(1, math.ceil(down / oversubscription))
    spines = max(1, -(-(rails * leaves * up) // radix))
    tiers = 2 if rails * leaves <= radix else 3
    return FatTreeShape(rails, endpoints, radix, down, up, leaves, spines, tiers)


def scale_out_shape(system: System) -> FatTreeShape | None:
    """The fat tree that joins the system's NICs, or None when it has no scale-out network
    (no fabric, no NICs, or ``topology: none``). Rail-optimized trees have one rail per NIC
    of a server."""
    spec = system.spec.scale_out
    fabric = system.fabric
    endpoints, _ = nic_Bps(system)
    if fabric is None or endpoints == 0 or (spec is not None and spec.topology == "none"):
        return None
    rail_optimized = spec is None or spec.topology == "rail-optimized-fat-tree"
    return fat_tree_shape(endpoints * system.num_servers, endpoints if rail_optimized else 1,
                          fabric.switch.radix, spec.oversubscription if spec else 1.0)


#: Latency of one scale-up link traversal (NVLink / xGMI / ICI port to port): sub-
#: microsecond on every fabric in the catalog; 0.5 us is taken (assumption, no datasheet
#: figure is published per port).
SCALE_UP_LINK_LATENCY_S = 0.5e-6
#: Latency of a PCIe hop between a device and its host or NIC (root complex or switch):
#: about 0.5 us round trip-free (assumption).
PCIE_HOP_LATENCY_S = 0.5e-6


def cluster_graph(system: System) -> nx.Graph:
    """The whole system: every server's board, host CPUs, NICs and the scale-out fat tree.

    Every edge has ``bandwidth_Bps`` (per direction), ``links`` and ``latency_s``.
    """
    graph = nx.Graph()
    board = board_graph(system)
    acc = system.accelerator
    host_Bps = acc.host.bandwidth or pcie_Bps(acc.host.gen or 4, acc.host.lanes)
    sockets = system.server.host.sockets
    n = system.chips_per_server
    pcie_only = board.has_node("host")
    board_latency = PCIE_HOP_LATENCY_S if pcie_only else SCALE_UP_LINK_LATENCY_S
    for s in range(system.num_servers):
        for node, data in board.nodes(data=True):
            graph.add_node(_board_name(s, node), **data)
        for a, b, data in board.edges(data=True):
            graph.add_edge(_board_name(s, a), _board_name(s, b), tier="scale-up",
                           latency_s=board_latency, **data)
        if pcie_only:
            continue  # PCIe-only boards already hang off their host node
        for k in range(sockets):
            graph.add_node(("cpu", s, k), kind="cpu")
        for i in range(n):
            graph.add_edge(("chip", s, i), ("cpu", s, i * sockets // n), links=1,
                           bandwidth_Bps=host_Bps, latency_s=PCIE_HOP_LATENCY_S, tier="host")
    _add_scale_out(graph, system)
    return graph


def _board_name(server: int, node: Any) -> tuple[Any, ...]:
    if isinstance(node, int):
        return ("chip", server, node)
    return (str(node), server)


def _add_scale_out(graph: nx.Graph, system: System) -> None:
    shape = scale_out_shape(system)
    if shape is None:
        return
    assert system.fabric is not None
    nics, nic_bw = nic_Bps(system)
    n = system.chips_per_server
    spec = system.spec.scale_out
    rail_optimized = spec is None or spec.topology == "rail-optimized-fat-tree"
    port_Bps = system.fabric.link_bandwidth
    for s in range(system.num_servers):
        for k in range(nics):
            nic = ("nic", s, k)
            graph.add_node(nic, kind="nic")
            # Spread NICs evenly over chips (one NIC per chip on rail-optimized boxes).
            served = [k * n // nics] if nics >= n else [i for i in range(n)
                                                         if i * nics // n == k]
            for i in served:
                graph.add_edge(("chip", s, i), nic, links=1, bandwidth_Bps=nic_bw,
                               latency_s=PCIE_HOP_LATENCY_S, tier="host")
            rail = k if rail_optimized else 0
            index = s if rail_optimized else s * nics + k
            leaf = ("leaf", rail, index // max(1, shape.down_per_leaf))
            graph.add_node(leaf, kind="switch")
            _add_capacity(graph, nic, leaf, nic_bw, max(1, round(nic_bw / port_Bps)),
                          system.fabric.hop_latency)
    if shape.spines:
        leaves = [node for node, d in graph.nodes(data=True) if d.get("kind") == "switch"
                  and isinstance(node, tuple) and node[0] == "leaf"]
        per_spine = shape.up_per_leaf / shape.spines
        graph.add_nodes_from((("spine", j) for j in range(shape.spines)), kind="switch")
        for leaf in leaves:
            for j in range(shape.spines):
                _add_capacity(graph, leaf, ("spine", j), per_spine * port_Bps,
                              max(1, round(per_spine)), system.fabric.hop_latency)


def _add_capacity(graph: nx.Graph, a: Any, b: Any, bandwidth: float, links: int,
                  latency_s: float) -> None:
    if graph.has_edge(a, b):
        graph[a][b]["bandwidth_Bps"] += bandwidth
        graph[a][b]["links"] += links
    else:
        graph.add_edge(a, b, links=links, bandwidth_Bps=bandwidth, latency_s=latency_s,
                       tier="scale-out")
