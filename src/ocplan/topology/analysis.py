"""Graph measures of a system: per-chip bandwidth, bisection bandwidth, diameter.

Bisection bandwidth is the max-flow (= min cut, per direction) between the two halves
of a balanced split. Exact bisection width is NP-hard in general, so the minimum over a
few natural splits is taken: contiguous and interleaved halves of the chips of one
board, and the two halves of the servers of a cluster (a cluster split never needs to
cut a board, so boards are contracted to one node there, which leaves the value exact
for that split and the flow problem small).

Small systems are measured on their whole cluster graph (``method="graph"``). Larger
ones (beyond GRAPH_SUMMARY_MAX_NODES or GRAPH_SUMMARY_MAX_EDGES) are measured without
it (``method="analytic"``) and get the same numbers: node and link counts from
:func:`~ocplan.topology.cluster.cluster_size`, the board measures from the one-board
graph, the server-split bisection from a closed form of the fat tree
(:func:`fat_tree_bisection_Bps`) and the diameter from a reduced graph of a few
representative servers (:func:`reduced_diameter`).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import networkx as nx

from ocplan.catalog.fields import MAX_CHIPS
from ocplan.catalog.system import System
from ocplan.errors import Infeasible
from ocplan.topology.cluster import (
    FatTreeShape,
    board_graph,
    chip_port_Bps,
    chip_scale_out_Bps,
    cluster_graph,
    cluster_size,
    cpu_of_chip,
    leaf_of_nic,
    nic_Bps,
    nic_chips,
    rail_optimized,
    scale_out_shape,
    torus_link_Bps,
    used_sockets,
)

__all__ = [
    "DIAMETER_SOURCES",
    "GRAPH_SUMMARY_MAX_EDGES",
    "GRAPH_SUMMARY_MAX_NODES",
    "MAX_SUMMARY_CHIPS",
    "SummaryMethod",
    "TopologySummary",
    "bisection_Bps",
    "check_summary_size",
    "chip_diameter",
    "fat_tree_bisection_Bps",
    "reduced_diameter",
    "summarize",
]

SummaryMethod = Literal["graph", "analytic"]

#: Largest system summarized: the schema's bound on a system (``MAX_CHIPS``), checked again
#: here so that a System made without the schema (an API caller's) is refused before
#: anything is computed.
MAX_SUMMARY_CHIPS = MAX_CHIPS
#: Largest cluster graph (nodes) that summarize() measures on the graph itself when no
#: method is asked for; beyond it the analytic method gives the same numbers without the
#: graph. Measured on the 2-core development machine (CPU seconds), 8-GPU rail-optimized
#: fat trees: the graph method takes 0.20 s at 2,328 nodes (the 1,024-chip example),
#: 0.37 s at 2,987, 0.61 s at 4,656 and 1.5 s at 9,312 (max-flow and shortest paths in
#: pure Python grow faster than the graph); the analytic method takes under 0.01 s on
#: 8-chip servers at any size, 0.2-0.3 s with 4,096- and 6,144-chip TPU pods.
GRAPH_SUMMARY_MAX_NODES = 3_000
#: Edge counterpart of GRAPH_SUMMARY_MAX_NODES: three edges per node, the density of the
#: 8-GPU fat trees above (2,987 nodes, 8,792 edges); denser graphs (a TPU pod's rail
#: leaves times spines) go analytic sooner.
GRAPH_SUMMARY_MAX_EDGES = 3 * GRAPH_SUMMARY_MAX_NODES
#: Chips of server 0 from which the diameter is measured (the first ones in slot order;
#: the boards are symmetric enough that these reach the farthest chip).
DIAMETER_SOURCES = 8


@dataclass(frozen=True)
class TopologySummary:
    """What ``ocplan topology`` prints; bandwidths per direction in B/s."""

    name: str
    chips: int
    servers: int
    chips_per_server: int
    board_topology: str
    torus_dims: tuple[int, ...] | None
    """A torus board's (or slice's) shape, in the order its chips are numbered; None
    for other boards."""
    torus_link_Bps: tuple[float, ...] | None
    """Per-direction bandwidth of one link along each torus dimension (same order)."""
    nodes: int
    links: int
    scale_up_port_Bps: float
    scale_up_Bps_per_chip: float
    scale_out_Bps_per_chip: float
    board_bisection_Bps: float
    bisection_Bps: float
    diameter_hops: int
    """Most hops between two chips on the whole cluster graph, scale-out network
    included (a pod's chips also meet through their hosts' data-centre NICs)."""
    board_diameter_hops: int
    """Most hops between two chips of one server over its scale-up links alone (ICI,
    NVLink, xGMI, ...): what a collective inside the scale-up domain crosses; -1 when the
    board leaves chips unlinked."""
    scale_out_tiers: int
    scale_out_switches: int
    method: SummaryMethod
    """How the cluster-wide figures (nodes, links, bisection, diameter) were computed: on
    the whole cluster graph (``"graph"``) or from the system's numbers and a reduced
    graph (``"analytic"``); both give the same values."""

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _flow_between(graph: nx.Graph, left: Iterable[Hashable], right: Iterable[Hashable]) -> float:
    left, right = list(left), list(right)
    side = set(left)
    if len(side) + len(set(right)) == graph.number_of_nodes() and side.isdisjoint(right) \
            and all(node in graph for node in (*left, *right)):
        # Every node is a terminal: the only cut between the halves is the split itself,
        # so the max flow is the bandwidth of the edges that cross it.
        return float(sum(d["bandwidth_Bps"] for a, b, d in graph.edges(data=True)
                         if (a in side) != (b in side)))
    import networkx as nx  # where a graph is built (ocplan.topology.builders says why)

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


def bisection_Bps(graph: nx.Graph, chips: list[Hashable],
                  torus_dims: Sequence[int] | None = None) -> float:
    """Min over contiguous and interleaved halves of ``chips`` of the flow across them;
    on a torus (``chips`` in row-major order of ``torus_dims``) also over the halves
    along each dimension, since a torus whose dimensions are wired at different rates
    (:func:`~ocplan.topology.builders.torus`) is cut most cheaply across its slowest."""
    n = len(chips)
    if n < 2:
        return 0.0
    half = n // 2
    splits = [(chips[:half], chips[half:]), (chips[0::2], chips[1::2])]
    if torus_dims is not None and math.prod(torus_dims) == n:
        stride = n
        for size in torus_dims:
            stride //= size
            if size >= 2:
                low = [c for i, c in enumerate(chips) if (i // stride) % size < size // 2]
                high = [c for i, c in enumerate(chips) if (i // stride) % size >= size // 2]
                splits.append((low, high))
    return min(_flow_between(graph, a, b) for a, b in splits)


def chip_diameter(graph: nx.Graph, sources: Sequence[Hashable], chips: set[Hashable]) -> int:
    """Largest hop count from any of ``sources`` to any chip (the chip-to-chip diameter
    when the graph is symmetric enough that ``sources`` represent every chip)."""
    import networkx as nx  # where a graph is walked (ocplan.topology.builders says why)

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
    import networkx as nx  # where a graph is built (ocplan.topology.builders says why)

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


# ---- analytic measures: the cluster graph's values without the cluster graph ---------


def check_summary_size(system: System) -> None:
    """Refuse, with Infeasible("size"), a system of more than MAX_SUMMARY_CHIPS chips."""
    if system.num_chips > MAX_SUMMARY_CHIPS:
        raise Infeasible("size", f"{system.num_chips:,} chips ({system.num_servers:,} servers "
                                 f"x {system.chips_per_server:,}); the topology summary covers "
                                 f"systems of at most {MAX_SUMMARY_CHIPS:,} chips")


def _leaf_loads(endpoints: int, left: int, down: int) -> list[tuple[int, int, int]]:
    """(how many leaves, endpoints from the left half, from the right half) for one rail
    of ``endpoints`` endpoints numbered in order, the first ``left`` of them on the left,
    filled into leaves of ``down`` consecutive endpoints. The leaves come in at most four
    kinds: all left, the one the split falls in, all right, and the last (partly filled)."""
    leaves = -(-endpoints // down)

    def load(j: int) -> tuple[int, int]:
        start, end = j * down, min((j + 1) * down, endpoints)
        on_left = max(0, min(left, end) - start)
        return on_left, end - start - on_left

    split = min(left // down, leaves - 1)
    kinds = [(split, down, 0), (1, *load(split))]
    if leaves - 1 > split:
        kinds += [(leaves - 2 - split, 0, down), (1, *load(leaves - 1))]
    return [k for k in kinds if k[0] > 0]


def fat_tree_bisection_Bps(system: System, shape: FatTreeShape) -> float:
    """Max flow, per direction in B/s, between the first floor(S/2) servers and the other
    servers over the scale-out fat tree ``shape``, each server's board contracted to one
    node: the value the graph method computes, from the tree's numbers.

    Symbols: w = bandwidth of one NIC path (its NIC-leaf link; its chip side carries at
    least w), a_l and b_l = w times the NICs of left and right servers on leaf l, and
    u = up_per_leaf x fabric link bandwidth, a leaf's uplink to the spines (0 on a
    single switch). Every leaf reaches every spine with the same bandwidth, so the spine
    tier acts as one hub (any flow through it splits evenly over the spines). With the
    servers as source and sink, the minimum cut puts the hub on one side and each leaf on
    its cheaper side:

        B = min( sum_l min(a_l, b_l + u), sum_l min(b_l, a_l + u) ).

    Assumption: the leaf wiring of :func:`~ocplan.topology.cluster.leaf_of_nic`
    (consecutive endpoints per leaf), so each rail has at most four kinds of leaf.
    """
    assert system.fabric is not None
    nics, w = nic_Bps(system)
    servers = system.num_servers
    half = servers // 2
    u = shape.up_per_leaf * system.fabric.link_bandwidth if shape.spines else 0.0
    down = max(1, shape.down_per_leaf)
    if rail_optimized(system):
        # Rails share leaves in groups of rails_per_leaf (the last group may be short):
        # a leaf of g rails carries g times one rail's endpoints.
        g = shape.rails_per_leaf
        groups = [g] * (nics // g) + ([nics % g] if nics % g else [])
        loads = _leaf_loads(servers, half, down)
    else:
        groups, loads = [1], _leaf_loads(servers * nics, half * nics, down)
    flows = [w * r for r in groups]
    hub_right = sum(count * min(a * f, b * f + u) for f in flows for count, a, b in loads)
    hub_left = sum(count * min(b * f, a * f + u) for f in flows for count, a, b in loads)
    return min(hub_right, hub_left)


def _representative_servers(system: System, shape: FatTreeShape | None) -> list[int]:
    """Servers (besides server 0) whose chips are as far from server 0's as any server's.

    A server that shares no leaf with server 0 is reached through the spines: its chips
    lie min_k E_0(c, NIC k) + 4 + dist(its NICs, c') hops from chip c of server 0, where
    E_0 is measured within server 0 and the fabric and dist(its NICs, c') within the
    server (a path out through the fabric and back cannot beat starting at the NIC it
    comes back to), the same for every such server: one of them represents all. The
    servers that share a leaf with server 0 are taken one by one. Rail-optimized (NIC k
    of every server on rail k, servers in groups of D = down_per_leaf per leaf): servers
    1 .. D-1 share all of server 0's leaves alike, so servers 1 and D represent all.
    Otherwise endpoint s N + k sits on leaf floor((s N + k) / D): servers 1 up to the
    last one with an endpoint on server 0's leaves, then the next one.
    """
    servers = system.num_servers
    if shape is None or servers == 1:
        return []
    down = max(1, shape.down_per_leaf)
    if rail_optimized(system):
        return sorted({s for s in (1, down) if s < servers})
    nics, _ = nic_Bps(system)
    last_shared = (((nics - 1) // down + 1) * down - 1) // nics
    return list(range(1, min(servers - 1, last_shared + 1) + 1))


@dataclass(frozen=True)
class _ServerLayout:
    """One server's nodes numbered 0..size-1 (board nodes, module slots without a board
    node, CPUs, NICs) and its internal edges as pairs of those numbers."""

    size: int
    edges: npt.NDArray[np.int64]
    chips: npt.NDArray[np.int64]
    nics: npt.NDArray[np.int64]
    sources: npt.NDArray[np.int64]


def _server_layout(system: System, board: nx.Graph, with_nics: bool) -> _ServerLayout:
    """Number one server's nodes and list its edges as :func:`cluster_graph` wires them."""
    n = system.chips_per_server
    index: dict[Hashable, int] = {node: i for i, node in enumerate(board.nodes)}
    chips = [index[v] for v, d in board.nodes(data=True) if d["kind"] == "chip"]
    for i in range(n):
        index.setdefault(i, len(index))  # a slot that a host or NIC edge creates
    pairs = [(index[a], index[b]) for a, b in board.edges]
    if not board.has_node("host"):  # PCIe-only boards hang off their own host node
        sockets = used_sockets(system)
        base = len(index)
        pairs += [(index[i], base + cpu_of_chip(i, n, sockets)) for i in range(n)]
        size = base + sockets
    else:
        size = len(index)
    nic_nodes: list[int] = []
    if with_nics:
        nics, _ = nic_Bps(system)
        nic_nodes = list(range(size, size + nics))
        pairs += [(index[i], size + k) for k in range(nics) for i in nic_chips(k, n, nics)]
        size += nics
    sources = [index[i] for i in range(min(n, DIAMETER_SOURCES))]
    return _ServerLayout(size, np.array(pairs, dtype=np.int64).reshape(-1, 2),
                         np.array(chips, dtype=np.int64), np.array(nic_nodes, dtype=np.int64),
                         np.array(sources, dtype=np.int64))


def reduced_diameter(system: System, board: nx.Graph) -> int:
    """The chip diameter (hops) that :func:`chip_diameter` finds on the whole cluster
    graph from server 0's first DIAMETER_SOURCES chips, measured on a reduced graph:
    server 0 and the representative servers (:func:`_representative_servers`), wired as
    in the cluster graph, the leaves their NICs use and one spine; -1 if disconnected.

    Exact because a shortest path never needs another server or another spine: a detour
    leaf - NIC - ... - NIC - leaf through any server takes at least 4 hops where the
    spines join any two leaves in 2 (and a tree with one leaf has no spine to replace),
    and all spines join all leaves alike.
    """
    shape = scale_out_shape(system)
    if shape is None and system.num_servers > 1:
        return -1  # servers with no network between them
    layout = _server_layout(system, board, shape is not None)
    members = [0, *_representative_servers(system, shape)]
    edges = [layout.edges + p * layout.size for p in range(len(members))]
    nodes = len(members) * layout.size
    if shape is not None:
        nics, _ = nic_Bps(system)
        rail_opt = rail_optimized(system)
        leaf_index: dict[tuple[int, int], int] = {}
        nic_leaf: list[tuple[int, int]] = []
        for p, s in enumerate(members):
            for k in range(nics):
                leaf = leaf_of_nic(s, k, nics, shape, rail_opt)
                if leaf not in leaf_index:
                    leaf_index[leaf] = nodes + len(leaf_index)
                nic_leaf.append((p * layout.size + int(layout.nics[k]), leaf_index[leaf]))
        nodes += len(leaf_index)
        edges.append(np.array(nic_leaf, dtype=np.int64).reshape(-1, 2))
        if shape.spines:
            spine = nodes
            nodes += 1
            edges.append(np.array([(leaf, spine) for leaf in leaf_index.values()],
                                  dtype=np.int64).reshape(-1, 2))
    chips = np.concatenate([layout.chips + p * layout.size for p in range(len(members))])
    return _cover_levels(nodes, np.concatenate(edges), layout.sources, chips)


def _cover_levels(nodes: int, edges: npt.NDArray[np.int64], sources: npt.NDArray[np.int64],
                  targets: npt.NDArray[np.int64]) -> int:
    """Hops until every target is reached from every source (the largest source-target
    distance), by breadth-first search from all sources at once: bit j of a node's mask
    says source j has reached it. -1 if some target is never reached."""
    assert len(sources) <= 63
    head = np.concatenate([edges[:, 1], edges[:, 0]])
    tail = np.concatenate([edges[:, 0], edges[:, 1]])
    order = np.argsort(head, kind="stable")
    head, tail = head[order], tail[order]
    heads, starts = np.unique(head, return_index=True)
    seen = np.zeros(nodes, dtype=np.uint64)
    seen[sources] = np.left_shift(np.uint64(1), np.arange(len(sources), dtype=np.uint64))
    full = np.uint64((1 << len(sources)) - 1)
    hops = 0
    while not np.all(seen[targets] == full):
        step = seen.copy()
        if len(tail):
            step[heads] |= np.bitwise_or.reduceat(seen[tail], starts)
        if np.array_equal(step, seen):
            return -1
        seen = step
        hops += 1
    return hops


# ---- the summary ---------------------------------------------------------------------


def summarize(system: System, method: SummaryMethod | None = None) -> TopologySummary:
    """Measure the system's topology.

    ``method`` None picks ``"graph"`` (the whole cluster graph) up to
    GRAPH_SUMMARY_MAX_NODES / GRAPH_SUMMARY_MAX_EDGES and ``"analytic"`` beyond; both
    give the same numbers. Raises Infeasible ("size") beyond MAX_SUMMARY_CHIPS chips, or
    for ``"graph"`` beyond the graph limits of :func:`~ocplan.topology.cluster.
    cluster_graph`.
    """
    check_summary_size(system)
    size = cluster_size(system)
    if method is None:
        small = size.nodes <= GRAPH_SUMMARY_MAX_NODES and size.edges <= GRAPH_SUMMARY_MAX_EDGES
        method = "graph" if small else "analytic"
    board = board_graph(system)
    board_chips = [n for n, d in board.nodes(data=True) if d["kind"] == "chip"]
    scale_up = sum(d["bandwidth_Bps"] for _, _, d in board.edges(0, data=True))
    board_bis = bisection_Bps(board, board_chips, system.torus_dims)
    board_diameter = chip_diameter(board, board_chips[:DIAMETER_SOURCES], set(board_chips)) \
        if len(board_chips) > 1 else 0
    shape = scale_out_shape(system)
    if method == "graph":
        nodes, links, bis, diameter = _graph_measures(system, board_bis)
    else:
        nodes, links = size.nodes, size.links
        if system.num_servers == 1:
            bis = board_bis
        else:
            bis = fat_tree_bisection_Bps(system, shape) if shape is not None else 0.0
        diameter = reduced_diameter(system, board)
    tiers, switches = (shape.tiers, shape.switches) if shape else (0, 0)
    return TopologySummary(
        name=system.spec.name,
        chips=system.num_chips,
        servers=system.num_servers,
        chips_per_server=system.chips_per_server,
        board_topology=system.baseboard.topology,
        torus_dims=system.torus_dims,
        torus_link_Bps=torus_link_Bps(system) if system.torus_dims is not None else None,
        nodes=nodes,
        links=links,
        scale_up_port_Bps=chip_port_Bps(system.accelerator, system.baseboard),
        scale_up_Bps_per_chip=scale_up,
        scale_out_Bps_per_chip=chip_scale_out_Bps(system),
        board_bisection_Bps=board_bis,
        bisection_Bps=bis,
        diameter_hops=diameter,
        board_diameter_hops=board_diameter,
        scale_out_tiers=tiers,
        scale_out_switches=switches,
        method=method,
    )


def _graph_measures(system: System, board_bis: float) -> tuple[int, int, float, int]:
    """(nodes, links, bisection B/s, diameter hops) measured on the whole cluster graph."""
    graph = cluster_graph(system)
    chip_set = {n for n, d in graph.nodes(data=True) if d.get("kind") == "chip"}
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
    sources = [("chip", 0, i) for i in range(min(system.chips_per_server, DIAMETER_SOURCES))]
    diameter = chip_diameter(graph, sources or [("chip", 0, 0)], chip_set)
    links = sum(d.get("links", 1) for _, _, d in graph.edges(data=True))
    return graph.number_of_nodes(), links, bis, diameter
