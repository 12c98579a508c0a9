"""A whole system as one graph: boards, NICs and the scale-out fabric.

:func:`board_graph` builds one server's scale-up graph from its baseboard and module;
:func:`cluster_graph` joins ``servers`` copies through NICs and a (rail-optimized) fat
tree. Node names are tuples: ``("chip", s, i)``, ``("sw", s)``, ``("cpu", s, k)``,
``("nic", s, k)``, ``("leaf", rail, j)``, ``("spine", j)``. Edge attributes are ``links``,
``bandwidth_Bps`` (per direction), ``latency_s`` and ``tier`` = ``"scale-up"``,
``"host"`` or ``"scale-out"``.

Graphs have a size bound: :func:`board_size` and :func:`cluster_size` count a graph's
nodes, edges and links from the system's numbers, and both builders refuse (Infeasible
``"size"``) beyond MAX_GRAPH_NODES or MAX_GRAPH_EDGES instead of allocating. The wiring
rules (:func:`cpu_of_chip`, :func:`nic_chips`, :func:`leaf_of_nic`) are shared with the
analytic measures of :mod:`ocplan.topology.analysis` and the API's cluster view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import networkx as nx

from ocplan.catalog.schema import Accelerator, Baseboard
from ocplan.catalog.system import System
from ocplan.errors import Infeasible
from ocplan.topology import builders

__all__ = [
    "MAX_GRAPH_EDGES",
    "MAX_GRAPH_NODES",
    "FatTreeShape",
    "GraphSize",
    "board_graph",
    "board_kind",
    "board_size",
    "check_graph_size",
    "chip_port_Bps",
    "chip_scale_out_Bps",
    "cluster_graph",
    "cluster_size",
    "cpu_of_chip",
    "fat_tree_shape",
    "host_share",
    "hosts_for_chips",
    "leaf_of_nic",
    "leaves_per_rail_used",
    "links_per_pair",
    "nic_Bps",
    "nic_chips",
    "pcie_Bps",
    "rail_optimized",
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


def board_kind(system: System) -> str:
    """Which builder draws the system's board: the board's topology kind, except that a
    module without scale-up ports (or a PCIe board) gives ``"pcie_switch"`` and the
    combined FC / HCM board runs fully connected with 7-port modules, else as a 6-port
    hybrid cube mesh."""
    kind = system.baseboard.topology
    up = system.accelerator.scale_up
    if up is None or kind == "pcie_switch":
        return "pcie_switch"
    if kind == "fc_hcm_combined":
        return "fully_connected" if up.ports >= 7 else "hybrid_cube_mesh_6"
    return kind


def links_per_pair(system: System) -> int:
    """Ports per module pair of a fully connected board (the combined FC / HCM board
    has one)."""
    return system.baseboard.links_per_pair if system.baseboard.topology == "fully_connected" \
        else 1


def board_graph(system: System) -> nx.Graph:
    """One server's scale-up graph, by the baseboard's topology kind.

    Raises Infeasible ("size") when the graph would exceed MAX_GRAPH_NODES or
    MAX_GRAPH_EDGES (:func:`board_size` predicts it without building anything).
    """
    board, accel = system.baseboard, system.accelerator
    n = system.chips_per_server
    check_graph_size(board_size(system), f"the {board.topology} board graph of {n:,} modules")
    port = chip_port_Bps(accel, board)
    ports = accel.scale_up.ports if accel.scale_up else 0
    kind = board_kind(system)
    if kind == "pcie_switch":
        gen = accel.host.gen or 4
        return builders.pcie_switch(n, pcie_Bps(gen, accel.host.lanes))
    if kind == "fully_connected":
        return builders.fully_connected(n, port, links_per_pair(system))
    if kind == "switch":
        return builders.switch(n, ports * port, ports)
    if kind == "torus":
        dims = system.torus_dims
        assert dims is not None
        return builders.torus(dims, torus_link_Bps(system))
    return _fixed_board(system, kind, port)


def torus_link_Bps(system: System) -> tuple[float, ...]:
    """Per-direction bandwidth of one link along each dimension of the system's torus:
    the board's ``torus_link_bandwidth`` for that dimension, capped at the module's port
    rate on the board (:func:`chip_port_Bps`); the port rate where the board gives none."""
    dims = system.torus_dims
    assert dims is not None
    port = chip_port_Bps(system.accelerator, system.baseboard)
    rates = system.baseboard.torus_link_bandwidth
    if rates is None:
        return tuple(port for _ in dims)
    assert len(rates) == len(dims), "resolve_system checks a slice keeps the board's rank"
    return tuple(min(port, r) for r in rates)


def _fixed_board(system: System, kind: str, port: float) -> nx.Graph:
    """The boards of fixed shape (8 or 16 slots), cut down to their populated slots."""
    n = system.chips_per_server
    if kind in ("hybrid_cube_mesh_6", "hybrid_cube_mesh_8"):
        return _populated(builders.hybrid_cube_mesh(port, 6 if kind.endswith("6") else 8), n)
    if kind == "almost_fully_connected":
        return _populated(builders.almost_fully_connected(port), n)
    if kind == "hypercube_4d":
        return _populated(builders.hypercube(4, port, system.baseboard.links_per_pair), n)
    raise AssertionError(f"unhandled topology {kind}")


def _populated(graph: nx.Graph, n: int) -> nx.Graph:
    """A fixed-shape board graph cut down to its first ``n`` (populated) slots."""
    keep = [v for v, d in graph.nodes(data=True) if d["kind"] != "chip" or v < n]
    return graph if len(keep) == graph.number_of_nodes() else graph.subgraph(keep).copy()


# ---- graph size: predicted from the system's numbers, before anything is built -------

#: Most nodes ocplan puts into one networkx graph. networkx keeps a dict per node and
#: per edge (about 0.5 KB per edge with ocplan's four attributes, several times that
#: while a max-flow runs), and measuring a graph (max-flow bisection, shortest paths) is
#: superlinear in pure Python. Measured on the 2-core, 24 GB development machine (CPU
#: seconds; wall time was 2-2.5x that under parallel jobs), 8-GPU rail-optimized fat
#: trees of 18 nodes per server: 49,836 nodes (2,740 servers, 201,648 edges) build in
#: 1.4 s into 0.10 GB and summarize on the graph in 16 s and 0.31 GB. Without the bound
#: 131,072 chips (297,984 nodes, 2.9 M edges) took 102 s and 4.95 GB, and 8 M chips ran
#: out of memory at 7.8 GB after 74 s. Beyond it summarize() works without the graph.
MAX_GRAPH_NODES = 50_000
#: Most edges in one graph: five per node allowed, above the four of the 8-GPU trees
#: above, so that a whole TPU v5p pod (6,144-chip torus with 1,536 CPUs and 3,072 NICs,
#: its 3,072 rail leaves joined to 48 spines: 13,872 nodes, 181,248 edges; built in
#: 1.2 s into 0.08 GB) still fits, and a denser graph is refused at the same cost.
MAX_GRAPH_EDGES = 250_000


@dataclass(frozen=True)
class GraphSize:
    """Size of a topology graph, counted exactly as networkx would after building it."""

    nodes: int
    edges: int
    links: int
    """Parallel ports summed over the edges (the ``links`` attributes)."""
    chips: int
    """Nodes of kind ``"chip"``."""


def check_graph_size(size: GraphSize, what: str) -> None:
    """Refuse, with Infeasible("size"), a graph beyond MAX_GRAPH_NODES or MAX_GRAPH_EDGES:
    say how big it would be and what the limits are. ``what`` names the graph."""
    if size.nodes > MAX_GRAPH_NODES or size.edges > MAX_GRAPH_EDGES:
        raise Infeasible("size", f"{what} would have {size.nodes:,} nodes and {size.edges:,} "
                                 f"edges; ocplan builds graphs of at most {MAX_GRAPH_NODES:,} "
                                 f"nodes and {MAX_GRAPH_EDGES:,} edges (the topology summary "
                                 "measures larger systems without building the graph)")


def board_size(system: System) -> GraphSize:
    """Nodes, edges and links of :func:`board_graph`, without building it.

    With n modules: fully connected with l ports per pair: n nodes, n(n-1)/2 edges of l
    links; switch plane (p ports per module): n + 1 nodes, n edges of p links; PCIe
    switches: n modules + 2 switches + the host, n + 2 single-link edges; torus of sizes
    d_i with P = prod d_i modules: P nodes and, per dimension, P edges (d_i > 2), P / 2
    (d_i = 2: the wrap-around is the direct link) or none (d_i = 1). The fixed 8- and
    16-slot boards are built and counted (at most 16 nodes).
    """
    n = system.chips_per_server
    kind = board_kind(system)
    if kind == "pcie_switch":
        return GraphSize(n + 3, n + 2, n + 2, n)
    if kind == "fully_connected":
        pairs = n * (n - 1) // 2
        return GraphSize(n, pairs, pairs * links_per_pair(system), n)
    if kind == "switch":
        ports = system.accelerator.scale_up.ports if system.accelerator.scale_up else 0
        return GraphSize(n + 1, n, n * ports, n)
    if kind == "torus":
        dims = system.torus_dims
        assert dims is not None
        chips = math.prod(dims)
        edges = sum(chips if d > 2 else chips // 2 if d == 2 else 0 for d in dims)
        return GraphSize(chips, edges, edges, chips)
    graph = _fixed_board(system, kind, 1.0)
    chips = sum(1 for _, d in graph.nodes(data=True) if d["kind"] == "chip")
    links = sum(d["links"] for _, _, d in graph.edges(data=True))
    return GraphSize(graph.number_of_nodes(), graph.number_of_edges(), links, chips)


def cluster_size(system: System) -> GraphSize:
    """Nodes, edges and links of :func:`cluster_graph`, without building it.

    Per server (S servers, n modules, c CPU sockets in use (:func:`used_sockets`), N
    scale-out NICs): the board (see
    :func:`board_size`); unless the board is PCIe-only, c CPUs and n single-link
    chip-CPU edges; with a scale-out network, N NICs, max(N, n) single-link chip-NIC
    edges (one chip per NIC when N >= n, else one NIC per chip) and N NIC-leaf edges of
    round(NIC bandwidth / fabric link bandwidth) links (at least 1). Fabric: R rail groups
    of ceil(E / down_per_leaf) leaves with E endpoints per rail (R = ceil(N /
    rails_per_leaf), E = S rail-optimized; R = 1, E = S N otherwise), and every leaf
    joined to each of the k spines by round(up_per_leaf / k) links (at least 1). Module
    slots with a host or NIC edge but no board slot become plain nodes, as networkx adds
    them.
    """
    board = board_size(system)
    servers, n = system.num_servers, system.chips_per_server
    pcie_only = board_kind(system) == "pcie_switch"
    shape = scale_out_shape(system)
    nodes, edges, links = board.nodes, board.edges, board.links
    if not pcie_only:
        nodes += used_sockets(system)
        edges += n
        links += n
    if not pcie_only or shape is not None:
        nodes += max(0, n - board.chips)
    fabric_nodes = fabric_edges = fabric_links = 0
    if shape is not None:
        assert system.fabric is not None
        nics, nic_bw = nic_Bps(system)
        nodes += nics
        edges += max(nics, n) + nics
        links += max(nics, n) + nics * endpoint_links(nic_bw, system.fabric.link_bandwidth)
        rails, per_rail = leaves_per_rail_used(system, shape)
        leaves = rails * per_rail
        fabric_nodes = leaves + shape.spines
        if shape.spines:
            fabric_edges = leaves * shape.spines
            fabric_links = fabric_edges * max(1, round(shape.up_per_leaf / shape.spines))
    return GraphSize(servers * nodes + fabric_nodes, servers * edges + fabric_edges,
                     servers * links + fabric_links, servers * board.chips)


def _server_hosts(system: System, chips: int) -> int:
    """Hosts of one server that ``chips`` of its chip places use: ``ceil(n / (N / H))``
    for ``n`` of its ``N`` places on ``H`` hosts, at most ``H`` (a one-host server: 1)."""
    hosts = system.server.hosts
    places = system.server.accelerators or system.baseboard.slots
    return min(hosts, -(-chips * hosts // places))


def host_share(system: System) -> float:
    """Share of a server's hosts its populated chips use (:func:`_server_hosts`); 1 for a
    one-host server (its host runs whatever is populated)."""
    return _server_hosts(system, system.chips_per_server) / system.server.hosts


def hosts_for_chips(system: System, chips: int) -> int:
    """Host nodes that ``chips`` chips of ``system`` attach to, filling servers in order:
    every host each full server uses, and of a server they fill in part the hosts those
    chips need (a 64-chip slice of a TPU v5p pod runs on 16 of its 1,536 hosts)."""
    full, rest = divmod(chips, system.chips_per_server)
    used = full * _server_hosts(system, system.chips_per_server)
    return max(1, used + (_server_hosts(system, rest) if rest else 0))


def used_sockets(system: System) -> int:
    """CPU sockets of a server that its populated chips attach to: all of them, or for a
    slice of a multi-host server (a TPU pod) the sockets of the hosts it uses
    (:func:`host_share`)."""
    sockets = system.server.host.sockets
    return max(1, round(sockets * host_share(system)))


def nic_Bps(system: System) -> tuple[int, float]:
    """(scale-out endpoints per server, per-direction bandwidth of each endpoint).

    Server NICs when the server has them, else the accelerators' integrated ports. A NIC
    port faster than the fabric's links trains down to the link rate. A multi-host server
    populated in part (a TPU slice of a pod) reaches the network through the NICs of the
    hosts its chips attach to (:func:`host_share`), not the whole server's.
    """
    link = system.fabric.link_bandwidth if system.fabric is not None else math.inf
    nics = system.nics_per_server
    if nics and system.nic is not None:
        nics = max(1, round(nics * host_share(system)))
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
    """Endpoints a leaf serves (each with :attr:`ports_per_endpoint` leaf ports)."""
    up_per_leaf: int
    """Ports a leaf gives to the spine tier."""
    leaves_per_rail: int
    spines: int
    tiers: int
    rails_per_leaf: int
    """Rails that share one leaf: a rail of fewer endpoints than a leaf's down ports (a
    rack-scale server's 72 NICs are 72 rails of one endpoint per rack) shares its leaf
    with the next rails, each still reaching its own rail on that leaf."""
    ports_per_endpoint: int = 1
    """Fabric links of one endpoint: a NIC or a chip with several ports at the fabric's
    link rate (a Gaudi 3's three 200G ports on a 200G fabric) takes that many leaf ports."""

    @property
    def leaf_groups(self) -> int:
        """Groups of rails that share leaves (the rails when no leaf is shared)."""
        return -(-self.rails // self.rails_per_leaf)

    @property
    def switches(self) -> int:
        return self.leaf_groups * self.leaves_per_rail + self.spines


def fat_tree_shape(endpoints: int, rails: int, radix: int,
                   oversubscription: float = 1.0, ports: int = 1) -> FatTreeShape:
    """Leaves and spines for ``endpoints`` NICs (of ``ports`` fabric links each) spread
    over ``rails`` rails.

    A leaf gives at most ``radix * o / (1 + o)`` ports to endpoints, so serves that many
    over ``ports`` endpoints, and gives ``ceil(served ports / o)`` ports to the spines
    (o = oversubscription, 1 = non-blocking; session 42: a multi-port endpoint had taken
    one leaf port, so a Gaudi 3 tree's leaves ran 3:1 oversubscribed and its switches and
    bisection were a third of the non-blocking tree's).
    Rails with fewer endpoints than that share leaves, as many whole rails per leaf as
    fit (NVIDIA's GB200 SuperPOD puts 8 racks' rails on shared leaves, not 72 rails on
    72 leaves). Everything on one switch needs no spines. The spine tier is one level
    while every spine can reach every leaf (leaves <= radix); beyond that a third tier is
    needed, as a non-blocking two-tier tree holds radix**2 / 2 endpoints (hardware.md §7).
    """
    assert endpoints >= 1
    assert rails >= 1
    assert radix >= 2
    assert ports >= 1
    per_rail = -(-endpoints // rails)
    if rails * per_rail * ports <= radix:
        return FatTreeShape(rails, endpoints, radix, per_rail, 0, 1, 0, 1, rails, ports)
    max_down = max(1, int(radix * oversubscription / (1 + oversubscription)) // ports)
    group = max(1, min(rails, max_down // per_rail))
    leaves = -(-per_rail // max_down)
    down = -(-per_rail // leaves)
    up = max(1, math.ceil(group * down * ports / oversubscription))
    groups = -(-rails // group)
    spines = max(1, -(-(groups * leaves * up) // radix))
    tiers = 2 if groups * leaves <= radix else 3
    return FatTreeShape(rails, endpoints, radix, down, up, leaves, spines, tiers, group,
                        ports)


def rail_optimized(system: System) -> bool:
    """Whether the scale-out tree is rail-optimized (NIC k of every server on rail k);
    the default when the system names no topology."""
    spec = system.spec.scale_out
    return spec is None or spec.topology == "rail-optimized-fat-tree"


def scale_out_shape(system: System) -> FatTreeShape | None:
    """The fat tree that joins the system's NICs, or None when it has no scale-out network
    (no fabric, no NICs, or ``topology: none``). Rail-optimized trees have one rail per NIC
    of a server."""
    spec = system.spec.scale_out
    fabric = system.fabric
    endpoints, each = nic_Bps(system)
    if fabric is None or endpoints == 0 or (spec is not None and spec.topology == "none"):
        return None
    return fat_tree_shape(endpoints * system.num_servers,
                          endpoints if rail_optimized(system) else 1,
                          fabric.switch.radix, spec.oversubscription if spec else 1.0,
                          endpoint_links(each, fabric.link_bandwidth))


def endpoint_links(endpoint_Bps: float, link_Bps: float) -> int:
    """Fabric links one endpoint of ``endpoint_Bps`` uses on links of ``link_Bps`` (at
    least 1): its ports, each trained to the link rate (:func:`nic_Bps`)."""
    return max(1, round(endpoint_Bps / link_Bps))


def cpu_of_chip(i: int, n: int, sockets: int) -> int:
    """CPU socket whose PCIe root module ``i`` of ``n`` hangs off: the modules split
    evenly over the ``sockets``, in slot order."""
    return i * sockets // n


def nic_chips(k: int, n: int, nics: int) -> range:
    """Modules that NIC ``k`` of a server's ``nics`` serves (of ``n`` modules): one module,
    floor(k n / N), when there are at least as many NICs as modules (one NIC per module
    on rail-optimized boxes), else the modules i with floor(i N / n) = k, i.e.
    ceil(k n / N) <= i < ceil((k + 1) n / N)."""
    if nics >= n:
        first = k * n // nics
        return range(first, first + 1)
    return range(-(-k * n // nics), -(-(k + 1) * n // nics))


def leaf_of_nic(server: int, k: int, nics: int, shape: FatTreeShape,
                rail_opt: bool) -> tuple[int, int]:
    """(rail group, index) of the leaf that NIC ``k`` of ``server`` plugs into.
    Rail-optimized: rail k, in the group of ``rails_per_leaf`` rails that share leaves,
    servers in consecutive groups of ``down_per_leaf``; otherwise one rail, the endpoints
    numbered server * nics + k in consecutive groups of ``down_per_leaf``."""
    down = max(1, shape.down_per_leaf)
    if rail_opt:
        return k // shape.rails_per_leaf, server // down
    return 0, (server * nics + k) // down


def leaves_per_rail_used(system: System, shape: FatTreeShape) -> tuple[int, int]:
    """(rail groups, leaves per group) that NICs actually plug into: R groups of
    ceil(E / down_per_leaf) leaves, E endpoints per rail (R = ceil(N / rails_per_leaf)
    for N NICs per server and E = S servers when rail-optimized, else R = 1 and
    E = S N)."""
    nics, _ = nic_Bps(system)
    down = max(1, shape.down_per_leaf)
    if rail_optimized(system):
        return shape.leaf_groups, -(-system.num_servers // down)
    return 1, -(-system.num_servers * nics // down)


#: Latency of one scale-up link traversal (NVLink / xGMI / ICI port to port): sub-
#: microsecond on every fabric in the catalog; 0.5 us is taken (assumption, no datasheet
#: figure is published per port).
SCALE_UP_LINK_LATENCY_S = 0.5e-6
#: Latency of a PCIe hop between a device and its host or NIC (root complex or switch):
#: about 0.5 us round trip-free (assumption).
PCIE_HOP_LATENCY_S = 0.5e-6


def cluster_graph(system: System) -> nx.Graph:
    """The whole system: every server's board, host CPUs, NICs and the scale-out fat tree.

    Every edge has ``bandwidth_Bps`` (per direction), ``links`` and ``latency_s``. Raises
    Infeasible ("size") instead of building a graph beyond MAX_GRAPH_NODES or
    MAX_GRAPH_EDGES (:func:`cluster_size` predicts it exactly).
    """
    check_graph_size(cluster_size(system), f"the cluster graph of {system.num_servers:,} "
                                           f"servers x {system.chips_per_server:,} chips")
    import networkx as nx  # where a graph is built (ocplan.topology.builders says why)

    graph = nx.Graph()
    board = board_graph(system)
    acc = system.accelerator
    host_Bps = acc.host.bandwidth or pcie_Bps(acc.host.gen or 4, acc.host.lanes)
    sockets = used_sockets(system)
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
            graph.add_edge(("chip", s, i), ("cpu", s, cpu_of_chip(i, n, sockets)), links=1,
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
    rail_opt = rail_optimized(system)
    port_Bps = system.fabric.link_bandwidth
    for s in range(system.num_servers):
        for k in range(nics):
            nic = ("nic", s, k)
            graph.add_node(nic, kind="nic")
            # Spread NICs evenly over chips (one NIC per chip on rail-optimized boxes).
            for i in nic_chips(k, n, nics):
                graph.add_edge(("chip", s, i), nic, links=1, bandwidth_Bps=nic_bw,
                               latency_s=PCIE_HOP_LATENCY_S, tier="host")
            leaf = ("leaf", *leaf_of_nic(s, k, nics, shape, rail_opt))
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
