"""Power of servers, racks and clusters at nameplate (TDP) load.

Server power = modules x module TDP + CPU sockets x CPU TDP + NICs x NIC power + the
server's ``other_power`` (fans, drives, BMC, PCIe switches, conversion losses), all at
TDP: the envelope the power supplies, racks and facility must carry. Scale-out switch
power is counted per cluster from the fabric's switch entry.

A multi-host server populated in part (a TPU slice smaller than its pod: the pod is one
server of many hosts, each attached to a few chips) runs only the hosts its chips attach
to, so its host parts count in that share (:func:`host_share`).

NIC and switch figures are the vendors' typical power with passive copper (the catalog's
convention; pluggable optics are not counted). A NIC or switch without a figure counts the
estimate of :mod:`ocplan.topology.power_estimates` and is named in ``estimated``; a part
with neither a figure nor a law (a CPU without TDP) counts 0 W and is named in ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.catalog.system import System
from ocplan.memo import ByIdentity
from ocplan.topology.cluster import host_share, scale_out_shape
from ocplan.topology.power_estimates import PowerEstimate, estimate_nic, estimate_switch

__all__ = ["PowerBudget", "host_share", "power_budget", "psu_capacity_W"]


@dataclass(frozen=True)
class PowerBudget:
    """Nameplate power by part, watts."""

    modules_W: float
    cpus_W: float
    nics_W: float
    other_W: float
    server_W: float
    servers: int
    switches_W: float
    it_W: float
    """All servers plus scale-out switches."""
    facility_W: float
    """IT power times PUE."""
    unknown: tuple[str, ...]
    """Parts whose power the catalog does not give and no law estimates (counted as zero)."""
    estimated: tuple[PowerEstimate, ...] = ()
    """Parts without a published power, counted at the estimate of their class's law."""


def psu_capacity_W(count: int, rating_W: float, redundancy: str) -> float:
    """Power the supplies deliver with the redundancy held in reserve.

    N: all supplies; N+1 / N+2: one / two in reserve; N+N: half in reserve.
    """
    reserve = {"N": 0, "N+1": 1, "N+2": 2, "N+N": count // 2}[redundancy]
    return max(0, count - reserve) * rating_W


def power_budget(system: System) -> PowerBudget:
    """Nameplate power of one server, of all servers and of the whole cluster.

    O(1) in the number of servers: one server's parts times the server count, plus the
    switch count of the fat tree's shape (no graph is built); remembered per system
    object (:data:`_BUDGETS`).
    """
    return _BUDGETS(system)


def _power_budget(system: System) -> PowerBudget:
    unknown: list[str] = []
    estimated: list[PowerEstimate] = []
    modules = system.chips_per_server * system.module_power
    cpu_tdp = system.cpu.tdp
    if cpu_tdp is None:
        unknown.append(f"cpu {system.cpu.id}")
        cpu_tdp = 0.0
    share = host_share(system)
    cpus = system.server.host.sockets * cpu_tdp * share
    nics = 0.0
    for nic, count, _ in system.server_nics:
        nics += count * _part_W(nic.power, f"nic {nic.id}", estimate_nic(nic), unknown,
                                estimated)
    nics *= share
    other = system.server.other_power * share
    server = modules + cpus + nics + other
    switches = 0.0
    fabric = system.fabric
    shape = scale_out_shape(system) if system.num_servers > 1 else None
    if shape is not None and fabric is not None:
        switches = shape.switches * _part_W(fabric.switch.power,
                                            f"switch {fabric.switch.name}",
                                            estimate_switch(fabric), unknown, estimated)
    it = server * system.num_servers + switches
    return PowerBudget(modules, cpus, nics, other, server, system.num_servers, switches, it,
                       it * system.spec.facility.pue, tuple(unknown), tuple(estimated))


def _part_W(published_W: float | None, part: str, estimate: PowerEstimate | None,
            unknown: list[str], estimated: list[PowerEstimate]) -> float:
    """One part's power: the published figure, else the estimate, else 0 W (recorded)."""
    if published_W is not None:
        return published_W
    if estimate is None:
        unknown.append(part)
        return 0.0
    if estimate not in estimated:
        estimated.append(estimate)
    return estimate.power_W


#: Budgets already worked out, by system object: every estimate asks for its system's
#: budget, and the fat tree's switch count alone took about 30 us of a 42 us repeated
#: estimate.
_BUDGETS: ByIdentity[System, PowerBudget] = ByIdentity(_power_budget)
