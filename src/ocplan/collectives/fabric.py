"""What the collective model needs from a system: the two tiers of its network.

A parallel group of ``n`` ranks whose consecutive members are ``stride`` ranks apart
(Megatron orders ranks tp, cp, ep/dp, pp from the inside out) places ``n_in`` members in
each scale-up domain and spans ``n_out`` domains (:func:`placement`).

Scale-up bandwidth of a group is read off the board graph: the smallest, over the
group's members, of the bandwidth of the member's links to other members (a switch
plane gives each member its full scale-up bandwidth). That is what a ring, or a direct
exchange on a full mesh, can drive per rank. Members with no direct link to each other
(a torus group at stride > 1) use routed paths: twice the path's slowest link over its hop
count.

Protocol efficiencies are measured constants, each checked in tests against
``../shared/reference/hardware.md`` §8 (nccl-tests / rccl-tests all_reduce_perf busbw):

- :data:`RING_EFFICIENCY` = 0.80: NCCL ring busbw / per-GPU NVLink rate. H100 ring
  ~370 of 450 GB/s = 0.82 (NVIDIA, nccl-tests#212); A100 231.6 of 300 = 0.77 (Azure
  ND A100 v4).
- :data:`DIRECT_EFFICIENCY` = 0.94: RCCL on MI300X's 8-way xGMI mesh, 316.8 GB/s busbw
  of 7 x 48 = 336 GB/s usable (Azure ND MI300X v5; AMD ROCm blog).
- :data:`NVLS_EFFICIENCY` = 0.61: NVLink SHARP all-reduce on HGX H100, 478.9 GB/s busbw
  = 1.75 x 0.61 x 450 GB/s (Azure ND H100 v5). Checked on H200 (480.0) and H800 (215).
- scale-out: each fabric's ``achievable_fraction`` (catalog, measured per NIC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np

from ocplan.catalog.system import System
from ocplan.topology.cluster import (
    board_graph,
    board_kind,
    chip_port_Bps,
    chip_scale_out_Bps,
    links_per_pair,
    pcie_Bps,
    scale_out_shape,
)

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "DIRECT_EFFICIENCY",
    "NVLS_EFFICIENCY",
    "RING_EFFICIENCY",
    "SCALE_OUT_SOFTWARE_LATENCY_S",
    "SCALE_UP_STEP_LATENCY_S",
    "CommFabric",
    "comm_fabric",
    "placement",
]

RING_EFFICIENCY = 0.80
DIRECT_EFFICIENCY = 0.94
NVLS_EFFICIENCY = 0.61
#: Per-step latency of a scale-up collective (NCCL LL128/Simple on NVLink: a few us per
#: all-reduce at 8 ranks, nccl-tests small-message times); 1 us per step.
SCALE_UP_STEP_LATENCY_S = 1.0e-6
#: NIC, PCIe and proxy latency per scale-out ring step on top of the switch hop. Large
#: collectives pipeline chunks, so a step costs little: 248 nodes x 8 H200 reach ~350
#: of ~369 GB/s (nccl-tests#283), i.e. ~2.4 ms over 3,966 ring steps, ~0.6 us each
#: beyond the wire, which is what is taken.
SCALE_OUT_SOFTWARE_LATENCY_S = 0.6e-6

Num = Any


@dataclass(frozen=True)
class CommFabric:
    """Per-rank bandwidths and latencies of a system's scale-up and scale-out tiers."""

    domain: int
    """Chips in one scale-up domain."""
    topology: str
    up_group_Bps: dict[tuple[int, int], float] = field(repr=False)
    """(members in the domain, stride) -> per-rank busbw of the best ring/direct scheme."""
    up_chip_Bps: float
    """All scale-up bandwidth of one chip, per direction (after link efficiency)."""
    nvls_Bps: float
    """Per-rank all-reduce rate with in-switch reduction (0 when the board has none)."""
    up_alpha_s: float
    out_Bps: float
    """Scale-out bandwidth per chip, per direction, after the fabric's efficiency."""
    out_alpha_s: float
    out_host_staged: bool = False
    """Scale-out traffic is staged through host memory by host software (TPU slices over
    the data-center network, protocol ``dcn``) rather than moved chip to NIC by RDMA:
    each collective step then costs a host-side synchronisation
    (:func:`~ocplan.plan.comm_terms.dcn_steps_s`)."""

    def up_Bps(self, n_in: Num, stride: Num) -> Num:
        """Per-rank scale-up busbw for groups of ``n_in`` members ``stride`` apart."""
        n_arr, s_arr = np.broadcast_arrays(np.asarray(n_in), np.asarray(stride))
        if n_arr.ndim == 0:
            return self._lookup(int(n_arr), int(s_arr))
        # One lookup per distinct (n_in, stride) pair, scattered back by index.
        keys = n_arr.astype(np.int64).ravel() * (1 << 32) + s_arr.astype(np.int64).ravel()
        uniq, inverse = np.unique(keys, return_inverse=True)
        values = np.array([self._lookup(int(k >> 32), int(k & 0xFFFFFFFF)) for k in uniq])
        return values[inverse].reshape(n_arr.shape)

    def _lookup(self, n_in: int, stride: int) -> float:
        if n_in <= 1:
            return np.inf
        value = self.up_group_Bps.get((n_in, stride))
        if value is None:
            value = self.up_group_Bps.get((n_in, 1), self.up_chip_Bps)
        return float(value)


def placement(n: Num, stride: Num, domain: int) -> tuple[Num, Num]:
    """(members per scale-up domain, domains spanned) of a group of ``n`` ranks whose
    members are ``stride`` ranks apart, ranks filling domains of ``domain`` chips in
    order."""
    n = np.asarray(n)
    stride = np.asarray(stride)
    per_domain = np.where(stride < domain, np.maximum(domain // np.maximum(stride, 1), 1), 1)
    n_in = np.minimum(n, per_domain)
    n_out = np.ceil(n / n_in)
    return n_in, n_out


def _uniform_group_Bps(system: System, n_in: int, port_eff: float) -> float | None:
    """The group bandwidth of :func:`_group_Bps` on boards where it needs no graph: on a
    switch plane every member's one edge carries all its ports (ports x port rate); on
    a fully connected board every member has ``links_per_pair`` ports to each of the
    other n_in - 1 members, whatever the stride. None for the other boards (routed or
    partly connected), which are measured on the graph. Same value as on the graph
    (tested on every catalog server)."""
    accel, kind = system.accelerator, board_kind(system)
    port = chip_port_Bps(accel, system.baseboard)
    if kind == "switch":
        ports = accel.scale_up.ports if accel.scale_up else 0
        return float(ports * port * port_eff)
    if kind == "fully_connected":
        return float((n_in - 1) * links_per_pair(system) * port * port_eff)
    return None


def _group_Bps(board: nx.Graph, members: list[int], port_eff: float) -> float:
    """Bandwidth each member of a group reaches, measured on the board graph: the worst
    member's links to the other members (routed boards; :func:`_uniform_group_Bps`
    gives switch planes and fully connected boards without the graph)."""
    member_set = set(members)
    worst = np.inf
    for i, m in enumerate(members):
        total = sum(d["bandwidth_Bps"] for peer, d in board[m].items() if peer in member_set)
        if total == 0:
            # Members that are not neighbours (a torus group at stride > 1) talk over
            # routed paths: a bidirectional ring whose every hop crosses `hops` links,
            # each link shared by that many hops of the ring, at the path's slowest link
            # (a torus whose dimensions run at different rates).
            import networkx as nx  # a routed board (ocplan.topology.builders says why)

            nxt = members[(i + 1) % len(members)]
            path = nx.shortest_path(board, m, nxt)
            slowest = min(board[a][b]["bandwidth_Bps"] for a, b in pairwise(path))
            total = 2 * slowest / max(1, len(path) - 1)
        worst = min(worst, total)
    return float(worst * port_eff)


def comm_fabric(system: System) -> CommFabric:
    """Build (and cache per system) the two-tier view used by every collective."""
    return _comm_fabric_cached(system)


@lru_cache(maxsize=4096)
def _comm_fabric_cached(system: System) -> CommFabric:
    accel, board_spec = system.accelerator, system.baseboard
    domain = system.chips_per_server
    topology = board_spec.topology if accel.scale_up is not None else "pcie_switch"
    usable = accel.scale_up.usable_fraction if accel.scale_up else 1.0
    groups: dict[tuple[int, int], float] = {}
    if topology == "pcie_switch":
        # Peers meet through PCIe switches and the host: a ring runs at the slot rate,
        # halved because every hop of the ring crosses a shared switch uplink.
        gen = accel.host.gen or 4
        chip = pcie_Bps(gen, accel.host.lanes) * RING_EFFICIENCY / 2
        for n_in in _divisors(domain):
            for stride in _divisors(domain):
                if n_in * stride <= domain:
                    groups[(n_in, stride)] = chip
        up_chip, nvls = chip, 0.0
    else:
        board: nx.Graph | None = None
        eff = DIRECT_EFFICIENCY if topology == "fully_connected" else RING_EFFICIENCY
        for n_in in _divisors(domain):
            for stride in _divisors(domain):
                if n_in * stride <= domain and n_in > 1:
                    value = _uniform_group_Bps(system, n_in, eff * usable)
                    if value is None:
                        board = board if board is not None else board_graph(system)
                        members = [i * stride for i in range(n_in)]
                        value = _group_Bps(board, members, eff * usable)
                    groups[(n_in, stride)] = value
        ports = accel.scale_up.ports if accel.scale_up else 0
        raw_chip = ports * chip_port_Bps(accel, board_spec) * usable
        up_chip = raw_chip * eff
        nvls = raw_chip * NVLS_EFFICIENCY if board_spec.in_switch_reduction else 0.0
    fabric = system.fabric
    out_eff = fabric.achievable_fraction if fabric is not None else 1.0
    # Link sharing: a server's NICs are shared evenly by its chips (chip_scale_out_Bps),
    # and traffic leaving a leaf shares its uplinks: an oversubscribed tree divides the
    # per-chip rate by the oversubscription once the servers outgrow one leaf.
    shape = scale_out_shape(system)
    spec = system.spec.scale_out
    if shape is not None and spec is not None and shape.leaves_per_rail > 1:
        out_eff /= spec.oversubscription
    hops = 1  # a ring step stays on its rail: one leaf switch between neighbours
    out_alpha = SCALE_OUT_SOFTWARE_LATENCY_S + (fabric.hop_latency * hops if fabric else 0.0)
    return CommFabric(
        domain=domain,
        topology=topology,
        up_group_Bps=groups,
        up_chip_Bps=up_chip,
        nvls_Bps=nvls,
        up_alpha_s=SCALE_UP_STEP_LATENCY_S,
        out_Bps=chip_scale_out_Bps(system) * out_eff,
        out_alpha_s=out_alpha,
        out_host_staged=fabric is not None and fabric.protocol == "dcn",
    )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]
