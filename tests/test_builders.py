"""Scale-up topology builders: port counts, link counts and diameters of OAM v1.5 §9.2."""

import networkx as nx
import pytest

from ocplan.topology import builders

PORT = 100e9


def _ports(graph: nx.Graph, node: int) -> int:
    return sum(d["links"] for _, _, d in graph.edges(node, data=True))


def _port_pairs(graph: nx.Graph) -> int:
    return sum(d["links"] for _, _, d in graph.edges(data=True))


@pytest.mark.parametrize(
    ("graph", "ports", "pairs", "peers", "diameter"),
    [
        (builders.fully_connected(8, PORT), 7, 28, 7, 1),
        (builders.hybrid_cube_mesh(PORT, 6), 6, 24, 4, 2),
        (builders.hybrid_cube_mesh(PORT, 8), 8, 32, 4, 2),
        (builders.almost_fully_connected(PORT), 6, 24, 6, 2),
        (builders.hypercube(4, PORT), 4, 32, 4, 4),
    ],
    ids=["fc", "hcm6", "hcm8", "afc", "hypercube4d"],
)
def test_oam_topologies(graph: nx.Graph, ports: int, pairs: int, peers: int,
                        diameter: int) -> None:
    chips = [n for n, d in graph.nodes(data=True) if d["kind"] == "chip"]
    assert all(_ports(graph, c) == ports for c in chips)
    assert all(graph.degree(c) == peers for c in chips)
    assert _port_pairs(graph) == pairs
    assert nx.diameter(graph) == diameter


def test_hcm6_has_16_distinct_edges_8_doubled() -> None:
    graph = builders.hybrid_cube_mesh(PORT, 6)
    assert graph.number_of_edges() == 16
    assert sum(d["links"] == 2 for _, _, d in graph.edges(data=True)) == 8


def test_gaudi_three_ports_per_peer() -> None:
    graph = builders.fully_connected(8, 12.5e9, links_per_pair=3)
    assert _ports(graph, 0) == 21
    assert graph[0][1]["bandwidth_Bps"] == pytest.approx(37.5e9)


def test_torus_degree_and_wraparound() -> None:
    graph = builders.torus((4, 4, 4), PORT)
    assert graph.number_of_nodes() == 64
    assert all(deg == 6 for _, deg in graph.degree())
    assert nx.diameter(graph) == 6  # 2 + 2 + 2 with wrap-around


def test_torus_size_two_dimension_has_single_link() -> None:
    graph = builders.torus((2, 4), PORT)
    assert all(deg == 3 for _, deg in graph.degree())


def test_switch_star() -> None:
    graph = builders.switch(8, 450e9, 18)
    assert graph.degree("sw") == 8
    assert graph[0]["sw"]["bandwidth_Bps"] == 450e9


@pytest.mark.parametrize(
    ("topology", "n", "kwargs", "expected"),
    [
        ("fully_connected", 8, {}, 7),
        ("fully_connected", 8, {"links_per_pair": 3}, 21),
        ("hybrid_cube_mesh_6", 8, {}, 6),
        ("hybrid_cube_mesh_8", 8, {}, 8),
        ("almost_fully_connected", 8, {}, 6),
        ("fc_hcm_combined", 8, {"module_ports": 7}, 7),
        ("fc_hcm_combined", 8, {"module_ports": 6}, 6),
        ("torus", 64, {"torus_dims": (4, 4, 4)}, 6),
        ("torus", 16, {"torus_dims": (2, 8)}, 3),
        ("switch", 8, {}, 1),
        ("pcie_switch", 8, {}, 0),
    ],
)
def test_ports_needed(topology: str, n: int, kwargs: dict[str, object], expected: int) -> None:
    assert builders.ports_needed(topology, n, **kwargs) == expected  # type: ignore[arg-type]
