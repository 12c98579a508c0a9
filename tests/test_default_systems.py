"""Every catalog accelerator's default system passes its own compliance checks.

``ocplan estimate --chip X --chips N`` composes a system from the chip's default server
(or the generic host of its form factor) and refuses to estimate it when a check fails.
A catalog chip whose default system fails is a catalog error: the entry names a server
the module does not fit (power, cooling, ports, host lanes, scale-out). This test builds
the default system of every accelerator at 8, 64 and 512 chips, where that many can be
built, and asserts that no check refuses it.

Chips still waiting for data carry the reason in ``KNOWN_GAPS`` and are expected to fail
(strict: a gap that closes makes the test fail until its entry is removed here).
"""

from __future__ import annotations

import pytest

from ocplan.api import refused_reason
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.fields import MAX_CHIPS
from ocplan.catalog.schema import Nic
from ocplan.catalog.system import System, system_for_chip
from ocplan.errors import SpecError
from ocplan.topology.builders import ports_needed
from ocplan.topology.cluster import chip_scale_out_Bps

CATALOG = load_catalog()
CHIPS = sorted(a.id for a in CATALOG.all("accelerator"))
SIZES = (8, 64, 512)

#: Chips whose default system cannot pass yet, and why (see the lead's report).
KNOWN_GAPS: dict[str, str] = {
    "br100": "550 W needs a liquid-cooled OAM host (none sourced; the air-cooled OAI "
             "reference host takes 450 W); BLink lane count and SerDes rate unpublished",
}


def _default_system(chip: str, n: int) -> System | None:
    """The system ``--chip chip --chips n`` builds, or None when n chips cannot be built
    (more than ``MAX_CHIPS`` in all, or refused as input)."""
    try:
        system = system_for_chip(CATALOG, chip, n)
    except SpecError:
        return None
    return system if system.num_chips <= MAX_CHIPS else None


def _cases() -> list[object]:
    cases: list[object] = []
    for chip in CHIPS:
        marks = ([pytest.mark.xfail(reason=KNOWN_GAPS[chip], strict=True)]
                 if chip in KNOWN_GAPS else [])
        cases.extend(pytest.param(chip, n, marks=marks, id=f"{chip}-{n}") for n in SIZES)
    return cases


@pytest.mark.parametrize(("chip", "n"), _cases())
def test_default_system_passes_its_checks(chip: str, n: int) -> None:
    system = _default_system(chip, n)
    if system is None:
        pytest.skip(f"{n} x {chip} cannot be built")
    assert system.num_chips >= n
    assert refused_reason(system, allow_invalid=False) is None


def test_known_gaps_name_catalog_chips() -> None:
    """A gap listed for a chip the catalog no longer has would hide nothing; drop it."""
    assert set(KNOWN_GAPS) <= set(CHIPS)


def test_every_chip_gets_a_default_system_at_eight() -> None:
    """Eight chips fit in one server (or one torus slice) for every catalog chip, so the
    pass/fail test above never skips them."""
    for chip in CHIPS:
        system = _default_system(chip, 8)
        assert system is not None, chip
        assert system.num_chips >= 8, chip


def test_tpu_pod_hosts_have_two_sockets_each() -> None:
    """Google's 8-chip v5e/v6e VMs span two NUMA nodes (two sockets per host);
    ``host.sockets`` counts every socket of the pod, so it is twice the host count, and
    each host's DCN NICs are listed once (2 x 100 Gb/s per v5e host, 4 x 200 Gb/s per v6e
    host: 6.4 and 25.6 Tb/s per pod in Google's specification tables)."""
    for server_id, nics_per_host, pod_Bps in (("tpu-v5e-pod", 2, 6.4e12 / 8),
                                              ("tpu-v6e-pod", 4, 25.6e12 / 8)):
        server = CATALOG.server(server_id, "test", "server")
        assert server.host.sockets == 2 * server.hosts, server_id
        assert sum(slot.count for slot in server.nics) == nics_per_host * server.hosts
        total = sum(slot.count * CATALOG.get(Nic, slot.nic, "test", "nic").port_bandwidth
                    for slot in server.nics)
        assert total == pytest.approx(pod_Bps), server_id


def test_mlu290_board_fits_its_six_ports() -> None:
    """The MLU290-M5's six MLU-Link ports cannot wire eight modules fully connected
    (seven each); its default board's topology needs no more ports than it has."""
    acc = CATALOG.accelerator("mlu290-m5", "test", "chip")
    assert acc.scale_up is not None
    system = system_for_chip(CATALOG, "mlu290-m5", 8)
    board = system.baseboard
    assert ports_needed("fully_connected", 8) > acc.scale_up.ports
    assert ports_needed(board.topology, board.slots, board.links_per_pair, None,
                        acc.scale_up.ports) <= acc.scale_up.ports


def test_hl225b_scales_out_through_host_nics() -> None:
    """The HL-225B has no integrated scale-out ports, so its default server must carry
    NICs for systems of more than one server."""
    acc = CATALOG.accelerator("gaudi2-hl225b", "test", "chip")
    assert acc.integrated_nic is None
    system = system_for_chip(CATALOG, "gaudi2-hl225b", 64)
    assert system.num_servers > 1
    assert system.nics_per_server > 0


@pytest.mark.parametrize(("chip", "n", "per_chip_bps"), [
    ("tpu-v5p", 2048, 50e9),   # v5p table: DCN bandwidth per chip 50 Gbps
    ("tpu-v5e", 256, 25e9),    # 2 x 100 Gbps per 8-chip host
    ("tpu-v6e", 256, 100e9),   # 4 x 200 Gbps per 8-chip host
])
def test_tpu_slice_dcn_rate_per_chip(chip: str, n: int, per_chip_bps: float) -> None:
    """A slice reaches the DCN through the NICs of the hosts its chips attach to: a
    2048-chip v5p slice of the 6144-chip pod server has a third of the pod's NICs, so
    each chip keeps Google's 50 Gb/s, not the whole pod's NICs spread over the slice."""
    system = system_for_chip(CATALOG, chip, n)
    assert system is not None
    assert chip_scale_out_Bps(system) == pytest.approx(per_chip_bps / 8)
