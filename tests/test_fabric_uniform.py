"""The group bandwidths the collective fabric takes without drawing the board (switch
planes, fully connected boards) equal the ones measured on the board graph, for every
server of the catalog and every group shape; and an estimate on such a board needs no
graph library at all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.schema import Server
from ocplan.catalog.system import System, system_for_chip
from ocplan.collectives.fabric import (
    DIRECT_EFFICIENCY,
    RING_EFFICIENCY,
    _group_Bps,
    _uniform_group_Bps,
)
from ocplan.topology.cluster import board_graph, board_kind


def _default_systems() -> list[System]:
    cat = load_catalog()
    out = []
    for server in cat.all("server"):
        assert isinstance(server, Server)
        if server.accelerator is None:
            continue
        system = system_for_chip(cat, server.accelerator, 8, "test", name=None)
        if system.server.id == server.id and system.accelerator.scale_up is not None:
            out.append(system)
    return out


SYSTEMS = _default_systems()


def test_the_catalog_has_both_uniform_kinds_and_others() -> None:
    kinds = {board_kind(s) for s in SYSTEMS}
    assert {"switch", "fully_connected"} <= kinds
    assert kinds - {"switch", "fully_connected"}  # routed boards stay on the graph


@pytest.mark.parametrize("system", SYSTEMS, ids=lambda s: s.server.id)
def test_uniform_group_bandwidth_equals_the_graphs(system: System) -> None:
    domain = system.chips_per_server
    topology = system.baseboard.topology
    eff = DIRECT_EFFICIENCY if topology == "fully_connected" else RING_EFFICIENCY
    uniform = board_kind(system) in ("switch", "fully_connected")
    board = board_graph(system)
    checked = 0
    for n_in in range(2, domain + 1):
        for stride in range(1, domain // n_in + 1):
            if domain % n_in or domain % stride:
                continue
            closed = _uniform_group_Bps(system, n_in, eff)
            if not uniform:
                assert closed is None
                continue
            assert closed is not None
            members = [i * stride for i in range(n_in)]
            assert closed == pytest.approx(_group_Bps(board, members, eff), rel=1e-12)
            checked += 1
    assert checked > 0 or not uniform


def test_an_estimate_on_a_switch_board_imports_no_graph_library() -> None:
    code = ("import sys\n"
            "from ocplan import api\n"
            "from ocplan.catalog.catalog import load_catalog\n"
            "req = api.EstimateRequest(model='llama3-8b', chip='h100-sxm-80gb', chips=8,\n"
            "                          global_batch=64, seq_len=4096)\n"
            "result, _, _ = api.run_estimate(load_catalog(), req)\n"
            "assert result.feasible\n"
            "print('networkx' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"
