"""Graph measures of a system: per-chip bandwidth, bisection bandwidth, diameter.

Bisection bandwidth is the max-flow (= min cut, per direction) between the two halves
of a balanced split. Exact bisection width is NP-hard in general, so the minimum over a
few natural splits is taken: contiguous and interleaved halves of the chips of one
board, and the two halves of the servers of a cluster (a cluster split never needs to
cut a board, so boards are contracted to one node there, which leaves the value exact
for that split and the flow problem small).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import networkx as nx

from ocplan.catalog.system import System
from ocplan.topology.cluster import (
    board_graph,
    chip_port_Bps,
    chip_scale_out_Bps,
    cluster_graph,
    scale_out_shape,
)

__all__ = ["TopologySummary", "bisection_Bps", "chip_diameter", "summarize"]


@dataclass(frozen=True)
class TopologySummary:
    """What ``ocplan topology`` prints; bandwidths per direction in B/s."""

    name: str
    chips: int
    servers: int
    chips_per_server: int
    board_topology: str
    nodes: int
    links: int
    scale_up_port_Bps: float
    scale_up_Bps_per_chip: float
    scale_out_Bps_per_chip: float
    board_bisection_Bps: float
    bisection_Bps: float
    diameter_hops: int
    scale_out_tiers: int
    scale_out_switches: int

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _flow_between(graph: nx.Graph, left: Iterable[Hashable], right: Iterable[Hashable]) -> float:
    flow = nx.DiGraph()
    for a, b, data in graph.edges(data=True):
        cap = data["bandwidth_Bps"]
        flow.add_edge(a, b, capacity=cap)
        flow.add_edge(b, a, capacity=cap)
    for node in left:
        flow.add_edge("_source", node)  # no capacity attribute: unbounded
    for node in right:
        flow.add_edge(node, "_sink")
    value: float = nx.maximum_flow_value(flow, "_source", "_sink")
    return value


def bisection_Bps(graph: nx.Graph, chips: list[Hashable]) -> float:
    """Min over contiguous and interleaved halves of ``chips`` of the flow across them."""
    n = len(chips)
    if n < 2:
        return 0.0
    half = n // 2
    splits = [(chips[:half], chips[half:]), (chips[0::2], chips[1::2])]
    return min(_flow_between(graph, a, b) for a, b in splits)


def chip_diameter(graph: nx.Graph, sources: Sequence[Hashable], chips: set[Hashable]) -> int:
    """Largest hop count from any of ``sources`` to any chip (the chip-to-chip diameter
    when the graph is symmetric enough that ``sources`` represent every chip)."""
    worst = 0
    for src in sources:
        lengths = nx.single_source_shortest_path_length(graph, src)
        reach = [d for node, d in lengths.items() if node in chips]
        if len(reach) < len(chips):
            return -1  # disconnected
        worst = max(worst, *reach)
    return worst


def _server_level(graph: nx.Graph, servers: int) -> nx.Graph:
    """Contract each server's board (chips and board switches) into one node."""
    mapping = {}
    for node in graph.nodes:
        if isinstance(node, tuple) and node[0] not in ("nic", "leaf", "spine") \
                and len(node) >= 2 and isinstance(node[1], int):
            mapping[node] = ("server", node[1])
    contracted = nx.Graph()
    for a, b, data in graph.edges(data=True):
        ca, cb = mapping.get(a, a), mapping.get(b, b)
        if ca == cb:
            continue
        if contracted.has_edge(ca, cb):
            contracted[ca][cb]["bandwidth_Bps"] += data["bandwidth_Bps"]
        else:
            contracted.add_edge(ca, cb, bandwidth_Bps=data["bandwidth_Bps"])
    return contracted


def summarize(system: System) -> TopologySummary:
    """Measure the system's topology graph."""
    board = board_graph(system)
    board_chips = [n for n, d in board.nodes(data=True) if d["kind"] == "chip"]
    graph = cluster_graph(system)
    chips = [n for n, d in graph.nodes(data=True) if d.get("kind") == "chip"]
    chip_set = set(chips)
    first = ("chip", 0, 0)
    scale_up = sum(d["bandwidth_Bps"] for _, _, d in board.edges(0, data=True))
    board_bis = bisection_Bps(board, board_chips)
    if system.num_servers > 1:
        servers = [("server", s) for s in range(system.num_servers)]
        contracted = _server_level(graph, system.num_servers)
        half = len(servers) // 2
        if all(s in contracted for s in servers):
            bis = _flow_between(contracted, servers[:half], servers[half:])
        else:
            bis = 0.0
    else:
        bis = board_bis
    sources = [("chip", 0, i) for i in range(min(system.chips_per_server, 8))] or [first]
    diameter = chip_diameter(graph, sources, chip_set)
    shape = scale_out_shape(system)
    tiers, switches = (shape.tiers, shape.switches) if shape else (0, 0)
    links = sum(d.get("links", 1) for _, _, d in graph.edges(data=True))
    return TopologySummary(
        name=system.spec.name,
        chips=system.num_chips,
        servers=system.num_servers,
        chips_per_server=system.chips_per_server,
        board_topology=system.baseboard.topology,
        nodes=graph.number_of_nodes(),
        links=links,
        scale_up_port_Bps=chip_port_Bps(system.accelerator, system.baseboard),
        scale_up_Bps_per_chip=scale_up,
        scale_out_Bps_per_chip=chip_scale_out_Bps(system),
        board_bisection_Bps=board_bis,
        bisection_Bps=bis,
        diameter_hops=diameter,
        scale_out_tiers=tiers,
        scale_out_switches=switches,
    )
