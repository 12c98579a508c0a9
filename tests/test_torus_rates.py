"""Tori whose dimensions are wired at different rates (a Trn2 UltraServer: four 4x4
servers joined by Z rings at half the in-server link rate).

Expected values are worked by hand from the catalog YAML: 128 GB/s per direction per
link inside a server (X, Y), 64 GB/s across servers (Z), 4 x 4 x 4 chips with Z the
slowest-varying coordinate, the ring efficiency of :mod:`ocplan.collectives.fabric`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ocplan.catalog.catalog import BUILTIN_DIR, Catalog, load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.catalog.schema import Baseboard
from ocplan.catalog.system import load_system, system_for_chip
from ocplan.checks import run_rules
from ocplan.collectives.fabric import RING_EFFICIENCY, comm_fabric
from ocplan.errors import SpecError
from ocplan.topology.analysis import summarize
from ocplan.topology.builders import torus

GB = 1e9
IN_SERVER, ACROSS = 128 * GB, 64 * GB


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog(use_env=False)


def _board_yaml(entry_id: str) -> dict[str, Any]:
    data = yaml.safe_load((BUILTIN_DIR / "baseboards" / f"{entry_id}.yaml").read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_torus_builder_gives_each_dimension_its_rate() -> None:
    # 3 x 4 x 2, row-major: 24 nodes; dimension 0 (size 3) and 1 (size 4) are rings of
    # 24 edges each, dimension 2 (size 2) has one edge per pair, 12.
    graph = torus((3, 4, 2), (1.0, 2.0, 3.0))
    by_rate: dict[float, int] = {}
    for _, _, d in graph.edges(data=True):
        by_rate[d["bandwidth_Bps"]] = by_rate.get(d["bandwidth_Bps"], 0) + 1
    assert by_rate == {1.0: 24, 2.0: 24, 3.0: 12}
    # Node 0's neighbours: 8 and 16 along dimension 0 (stride 8), 2 and 6 along
    # dimension 1 (stride 2), 1 along dimension 2.
    assert {n: graph[0][n]["bandwidth_Bps"] for n in graph[0]} == {
        8: 1.0, 16: 1.0, 2: 2.0, 6: 2.0, 1: 3.0}
    # One rate for all dimensions is the same graph as before.
    uniform = torus((3, 4, 2), 5.0)
    assert {d["bandwidth_Bps"] for _, _, d in uniform.edges(data=True)} == {5.0}


def test_baseboard_rates_need_one_value_per_dimension() -> None:
    data = _board_yaml("trn2-ultraserver-4x4x4")
    bad = copy.deepcopy(data)
    bad["torus_link_bandwidth"] = ["64 GB/s", "128 GB/s"]
    with pytest.raises(SpecError) as err:
        validate_as(Baseboard, bad, "board.yaml")
    assert "torus_link_bandwidth has 2 values" in str(err.value)
    flat = _board_yaml("hgx-h100-8")
    flat["torus_link_bandwidth"] = ["64 GB/s"]
    with pytest.raises(SpecError) as err:
        validate_as(Baseboard, flat, "board.yaml")
    assert "torus_link_bandwidth is only for topology 'torus'" in str(err.value)
    board = validate_as(Baseboard, data, "board.yaml")
    assert board.torus_link_bandwidth == (ACROSS, IN_SERVER, IN_SERVER)


def test_ultraserver_summary_counts_the_slow_ring(builtin: Catalog) -> None:
    us = system_for_chip(builtin, "trainium2", 64, server_id="trn2-ultraserver")
    summary = summarize(us)
    # Per chip: 4 in-server links at 128 GB/s and 2 Z links at 64 GB/s.
    assert summary.scale_up_Bps_per_chip == pytest.approx(4 * IN_SERVER + 2 * ACROSS)
    # The cheapest halving cuts every Z ring twice: 16 rings x 2 links x 64 GB/s; cutting
    # X or Y instead costs 16 x 2 x 128 GB/s.
    assert summary.board_bisection_Bps == pytest.approx(16 * 2 * ACROSS)
    # The Trn2 server's 4x4 torus has one rate: 4 rings cut twice at 128 GB/s.
    server = summarize(system_for_chip(builtin, "trainium2", 16))
    assert server.board_bisection_Bps == pytest.approx(4 * 2 * IN_SERVER)
    assert server.scale_up_Bps_per_chip == pytest.approx(4 * IN_SERVER)


def test_ultraserver_groups_across_servers_run_at_the_ring_rate(builtin: Catalog) -> None:
    fabric = comm_fabric(system_for_chip(builtin, "trainium2", 64,
                                         server_id="trn2-ultraserver"))
    # Four consecutive chips: one Y ring inside a server, two 128 GB/s links each.
    assert fabric.up_Bps(4, 1) == pytest.approx(2 * IN_SERVER * RING_EFFICIENCY)
    # The same position in the four servers (stride 16): one Z ring, two 64 GB/s links.
    assert fabric.up_Bps(4, 16) == pytest.approx(2 * ACROSS * RING_EFFICIENCY)
    # Chips two servers apart (stride 32) meet over two Z hops: 2 x 64 / 2 GB/s.
    assert fabric.up_Bps(2, 32) == pytest.approx(ACROSS * RING_EFFICIENCY)
    # Two X-hops apart inside a server (stride 8): 2 x 128 / 2 GB/s.
    assert fabric.up_Bps(2, 8) == pytest.approx(IN_SERVER * RING_EFFICIENCY)


def test_slices_fill_the_fast_dimensions_first(builtin: Catalog) -> None:
    # 16 chips of an UltraServer are one server's 4x4, 32 two servers'.
    assert system_for_chip(builtin, "trainium2", 16,
                           server_id="trn2-ultraserver").torus_dims == (1, 4, 4)
    assert system_for_chip(builtin, "trainium2", 32,
                           server_id="trn2-ultraserver").torus_dims == (2, 4, 4)
    # A pod whose links all run at one rate keeps its near-cubic slices.
    assert system_for_chip(builtin, "tpu-v5p", 64).torus_dims == (4, 4, 4)
    assert system_for_chip(builtin, "tpu-v5p", 32).torus_dims == (4, 4, 2)


def test_a_slice_must_keep_the_rated_boards_rank(tmp_path: Path, builtin: Catalog) -> None:
    path = tmp_path / "slice.yaml"
    path.write_text("name: bad slice\nserver: trn2-ultraserver\nservers: 1\n"
                    "slice_dims: [4, 8]\n", encoding="utf-8")
    with pytest.raises(SpecError) as err:
        load_system(path, builtin)
    text = str(err.value)
    assert "slice_dims" in text
    assert "give 3 slice dimensions" in text


def test_ultraserver_passes_its_checks(tmp_path: Path, builtin: Catalog) -> None:
    path = tmp_path / "us.yaml"
    path.write_text("name: two UltraServers\nserver: trn2-ultraserver\nservers: 2\n",
                    encoding="utf-8")
    findings = run_rules(load_system(path, builtin))
    errors = [f for f in findings if f.severity == "error"]
    assert errors == []
    # The 4x4x4 torus needs 6 ports per chip; the check would flag a 4-port module.
    assert not [f for f in findings if f.rule == "TOPOLOGY-PORTS"]


def test_a_pod_is_cut_across_its_longest_dimension(builtin: Catalog) -> None:
    # TPU v5p pod, 16 x 16 x 24 at one rate: halving the 24-long dimension cuts each of
    # its 16 x 16 rings twice (512 links); halving a 16-long one would cut 16 x 24 x 2
    # = 768, the split the chip order alone offered before.
    summary = summarize(system_for_chip(builtin, "tpu-v5p", 6144))
    assert summary.board_bisection_Bps == pytest.approx(16 * 16 * 2 * summary.scale_up_port_Bps)


def test_a_pod_slice_draws_only_the_hosts_it_uses(builtin: Catalog) -> None:
    # A 64-chip v5p slice of the 6,144-chip pod (1,536 hosts of 4 chips; the entry counts
    # one CPU node per host) runs on 16 hosts: 16 CPU nodes in its graph, not 1,536.
    from ocplan.topology.cluster import cluster_graph, cluster_size, used_sockets

    part = system_for_chip(builtin, "tpu-v5p", 64)
    graph = cluster_graph(part)
    cpus = [n for n, d in graph.nodes(data=True) if d["kind"] == "cpu"]
    assert len(cpus) == used_sockets(part) == 16
    assert cluster_size(part).nodes == graph.number_of_nodes()
    assert used_sockets(system_for_chip(builtin, "tpu-v5p", 6144)) == 1536


def test_topology_table_names_the_torus_and_its_rates(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from ocplan.cli.main import main

    path = tmp_path / "us.yaml"
    path.write_text("name: one UltraServer\nserver: trn2-ultraserver\nservers: 1\n",
                    encoding="utf-8")
    assert main(["topology", str(path)]) == 0
    assert "torus 4x4x4 (links 64 GB/s, 128 GB/s, 128 GB/s per dimension)" in \
        capsys.readouterr().out
    assert main(["topology", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["torus_dims"] == [4, 4, 4]
    assert data["torus_link_Bps"] == [ACROSS, IN_SERVER, IN_SERVER]
