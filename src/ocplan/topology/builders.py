"""Scale-up topology builders: each returns a networkx graph, networkx style.

Nodes are integers ``0..n-1`` for accelerator slots (attribute ``kind="chip"``) plus, for
switched boards, switch nodes named ``"sw"`` (``kind="switch"``). Every edge carries

- ``links``: parallel ports on that edge (an int);
- ``bandwidth_Bps``: usable bandwidth of the edge per direction, ``links * port_Bps``.

The wiring of the OAM topologies follows the topology names of OAM v1.5 §9.2 (see
``../shared/reference/hardware.md`` §2.4); the exact port-to-peer maps of the spec figures
were not retrievable, so where a topology doubles some edges the doubling pattern is the
one that gives the published per-OAM port count and total link count.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx

# networkx takes ~0.25 s to import (it registers every algorithm with its backend
# dispatcher); it is imported where a graph is built, so commands that draw none (an
# estimate or search on a switch or fully connected board) start that much sooner.

__all__ = [
    "almost_fully_connected",
    "fully_connected",
    "hybrid_cube_mesh",
    "hypercube",
    "pcie_switch",
    "ports_needed",
    "switch",
    "torus",
]


def _chips(n: int) -> nx.Graph:
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(n), kind="chip")
    return graph


def fully_connected(n: int, port_Bps: float, links_per_pair: int = 1) -> nx.Graph:
    """K_n: every module has ``links_per_pair`` ports to each of the other ``n - 1``.

    OAM v1.5 §9.2.4 (8 modules, 7 x16 ports each); Gaudi boards use 3 ports per peer.
    """
    assert n >= 1
    assert links_per_pair >= 1
    graph = _chips(n)
    for a, b in itertools.combinations(range(n), 2):
        graph.add_edge(a, b, links=links_per_pair, bandwidth_Bps=links_per_pair * port_Bps)
    return graph


def hybrid_cube_mesh(port_Bps: float, ports: int = 6) -> nx.Graph:
    """8-module hybrid cube mesh: two fully connected quads joined as a cube.

    Modules 0-3 and 4-7 form the quads; module i is joined to i+4. With 6 ports per
    module (OAM v1.5 §9.2.1) the cross edges and the quad edges (0,1), (2,3) are doubled:
    4 peers per module, 16 distinct edges, 24 port pairs. With 8 ports (§9.2.3) every
    edge is doubled: 32 port pairs.
    """
    assert ports in (6, 8), "hybrid cube mesh is defined for 6 or 8 ports per module"
    graph = _chips(8)
    doubled_quad = {(0, 1), (2, 3)}
    for base in (0, 4):
        for a, b in itertools.combinations(range(4), 2):
            links = 2 if ports == 8 or (a, b) in doubled_quad else 1
            graph.add_edge(base + a, base + b, links=links, bandwidth_Bps=links * port_Bps)
    for i in range(4):
        graph.add_edge(i, i + 4, links=2, bandwidth_Bps=2 * port_Bps)
    return graph


def almost_fully_connected(port_Bps: float) -> nx.Graph:
    """K_8 minus the perfect matching {i, i+4}: 6 peers and 6 ports per module (§9.2.2)."""
    graph = fully_connected(8, port_Bps)
    graph.remove_edges_from((i, i + 4) for i in range(4))
    return graph


def hypercube(dims: int, port_Bps: float, links_per_edge: int = 1) -> nx.Graph:
    """A ``dims``-dimensional hypercube of 2**dims modules (OAM v1.5 §9.2.6, dims = 4)."""
    graph = _chips(2**dims)
    for node in range(2**dims):
        for d in range(dims):
            peer = node ^ (1 << d)
            if node < peer:
                graph.add_edge(node, peer, links=links_per_edge,
                               bandwidth_Bps=links_per_edge * port_Bps)
    return graph


def switch(n: int, chip_Bps: float, ports_per_chip: int) -> nx.Graph:
    """A non-blocking switch plane (NVSwitch, NVLink switch trays) as one node ``"sw"``.

    Each chip's edge carries all its scale-up ports: ``chip_Bps`` per direction.
    """
    graph = _chips(n)
    graph.add_node("sw", kind="switch")
    for i in range(n):
        graph.add_edge(i, "sw", links=ports_per_chip, bandwidth_Bps=chip_Bps)
    return graph


def torus(dims: Sequence[int], port_Bps: float | Sequence[float]) -> nx.Graph:
    """A wrap-around torus (TPU ICI, NeuronLink). Nodes are numbered 0..n-1 in row-major
    order (the first dimension varies slowest). ``port_Bps`` is one link's per-direction
    bandwidth, the same on every dimension or one value per dimension (a Trn2 UltraServer
    joins its servers by slower links than those inside one).

    A dimension of size 2 has one edge between its two nodes (the wrap-around coincides
    with the direct link); size 1 adds nothing (no self-loop).
    """
    n = math.prod(dims)
    graph = _chips(n)
    rates = [float(port_Bps)] * len(dims) if isinstance(port_Bps, (int, float)) \
        else [float(r) for r in port_Bps]
    assert len(rates) == len(dims), "one link rate per torus dimension"
    stride = n
    for size, rate in zip(dims, rates, strict=True):
        data = {"links": 1, "bandwidth_Bps": rate}
        stride //= size
        if size < 2:
            continue
        # Node v has coordinate c = (v // stride) % size along this dimension; its
        # neighbour one step up is v + stride, or v - (size - 1) * stride at the wrap.
        # For size 2 only the step from coordinate 0 is taken (one edge per pair).
        steps = 1 if size == 2 else size
        graph.add_edges_from(
            (v, v + stride if c < size - 1 else v - (size - 1) * stride, data)
            for v in range(n)
            if (c := (v // stride) % size) < steps)
    return graph


def pcie_switch(n: int, slot_Bps: float, switches: int = 2) -> nx.Graph:
    """Modules behind ``switches`` PCIe switches, which meet at the host (``"host"``).

    Peer traffic between modules on different switches crosses the host root complex;
    the switch-to-host link is modelled at one slot's bandwidth per module pair of ports
    (a x16 uplink per switch per 4 modules is typical).
    """
    graph = _chips(n)
    graph.add_node("host", kind="cpu")
    per_switch = -(-n // switches)
    for s in range(switches):
        name = f"pcie{s}"
        graph.add_node(name, kind="pcie-switch")
        graph.add_edge(name, "host", links=1, bandwidth_Bps=slot_Bps)
        for i in range(s * per_switch, min(n, (s + 1) * per_switch)):
            graph.add_edge(i, name, links=1, bandwidth_Bps=slot_Bps)
    return graph


def ports_needed(topology: str, n: int, links_per_pair: int = 1,
                 torus_dims: Sequence[int] | None = None, module_ports: int = 0) -> int:
    """Scale-up ports each module needs for ``topology`` with ``n`` modules.

    ``module_ports`` is only used by the combined FC / HCM board, which runs fully
    connected with 7-port modules and as a 6-port hybrid cube mesh otherwise.
    """
    if topology == "fully_connected":
        return (n - 1) * links_per_pair
    if topology in ("hybrid_cube_mesh_6", "almost_fully_connected"):
        return 6
    if topology == "hybrid_cube_mesh_8":
        return 8
    if topology == "fc_hcm_combined":
        return 7 if module_ports >= 7 else 6
    if topology == "hypercube_4d":
        return 4 * links_per_pair
    if topology == "torus":
        assert torus_dims is not None
        return sum(2 if d > 2 else 1 if d == 2 else 0 for d in torus_dims)
    if topology == "switch":
        return 1
    if topology == "pcie_switch":
        return 0
    raise AssertionError(f"unknown topology {topology}")
