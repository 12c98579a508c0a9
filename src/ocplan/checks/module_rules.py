"""Compliance rules for CPU compute modules (catalog kind ``compute-module``).

The OCM (Open Compute Module) specification has no public technical text, so each rule
borrows its limit from a published analogue and says which: the CPU vendor's own limits
(channels, DIMMs per channel, 2DPC speed, PCIe lanes, sockets, TDP, all from the CPU's
catalog entry and its sources), the OCP DC-MHS M-PnP descriptor fields (``ChannelCount``,
``SlotsPerChannel``) and the DC-SCM model of one management controller per host processor
module. Rule codes follow ``shared/reference/ocm_platform.md`` §1.4 (OCM-2 memory, OCM-3
lanes, OCM-5 power, OCM-6 management).

A value the CPU vendor does not publish is never guessed: the rule that needs it reports a
warning saying it could not check, and the bandwidth it would feed is marked as an upper
bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.schema import DDR_BYTES_PER_TRANSFER, ComputeModule, Cpu
from ocplan.checks.finding import Finding, Severity
from ocplan.errors import SpecError
from ocplan.units import format_quantity

__all__ = [
    "MemoryBandwidth",
    "ModuleLanes",
    "ModulePower",
    "module_findings",
    "module_lanes",
    "module_memory",
    "module_memory_bandwidth_Bps",
    "module_power",
]

#: Where the rules' limits come from (``Finding.section``).
MEMORY_SECTION = "OCM-2 memory population: DC-MHS M-PnP MemorySubsystems " \
                 "(ChannelCount, SlotsPerChannel) against the CPU's published limits"
LANES_SECTION = "OCM-3 host lanes: CPU PCIe lanes per socket less the lanes its " \
                "socket-to-socket links take (EPYC xGMI; Intel UPI and NVLink-C2C take none)"
POWER_SECTION = "OCM-5 module power: sockets x CPU TDP + DIMMs x sourced DIMM power + " \
                "the module's other allowance"
MGMT_SECTION = "OCM-6 management: one DC-SCM (or equivalent) controller per host processor " \
               "module, attached over DC-SCI (OCP DC-MHS / DC-SCM 2.x)"

Limit = Literal["cpu-1dpc", "cpu-2dpc", "cpu-mrdimm", "dimm-rating", "soldered",
                "unpublished"]
#: The CPU catalog field (:class:`~ocplan.catalog.schema.Cpu`) that sets a channel's
#: speed, by :attr:`MemoryBandwidth.limited_by`: the speed a finding cites.
CPU_SPEED_FIELDS: dict[Limit, str] = {"cpu-1dpc": "memory_mts", "cpu-2dpc": "memory_mts_2dpc",
                                      "cpu-mrdimm": "memory_mts_mrdimm"}
#: What each of those fields is the CPU's speed for.
CPU_SPEED_CASES: dict[Limit, str] = {"cpu-1dpc": "one DIMM per channel",
                                     "cpu-2dpc": "two DIMMs per channel",
                                     "cpu-mrdimm": "MRDIMMs"}


@dataclass(frozen=True)
class MemoryBandwidth:
    """Theoretical memory bandwidth of a module after the DIMMs-per-channel derate.

    ``bandwidth_Bps = sockets x channels x effective_mts x 1e6 x 8 B``; for soldered memory
    the vendor's per-socket figure times sockets. ``limited_by`` names what set the speed;
    ``upper_bound`` is true when a limit the vendor does not publish (the 2DPC speed) may be
    lower than the speed used.
    """

    sockets: int
    channels: int
    effective_mts: int | None
    bandwidth_Bps: float
    limited_by: Limit
    upper_bound: bool


@dataclass(frozen=True)
class ModuleLanes:
    """Lanes the module's CPUs offer against the lanes it exports (all sockets)."""

    available: int | None
    """sockets x (pcie_lanes - socket_link_lanes); None when the CPU's lane count is not
    published."""
    link_lanes_per_socket: int | None
    exported: int
    cxl_exported: int


@dataclass(frozen=True)
class ModulePower:
    """The module's power demand at TDP, by part, against its budget."""

    cpu_W: float | None
    """sockets x TDP; None when the vendor publishes no TDP."""
    dimm_W: float
    other_W: float
    budget_W: float

    @property
    def demand_W(self) -> float | None:
        return None if self.cpu_W is None else self.cpu_W + self.dimm_W + self.other_W

    @property
    def dominant(self) -> str:
        """The largest known part of the demand."""
        parts = {"cpu": self.cpu_W or 0.0, "dimms": self.dimm_W, "other": self.other_W}
        return max(parts, key=lambda k: parts[k])


def _cpu(module: ComputeModule, catalog: Catalog) -> Cpu:
    return catalog.get(Cpu, module.cpu, source=f"compute-module {module.id}", field_name="cpu")


def _channels(module: ComputeModule, cpu: Cpu) -> int:
    channels = module.memory.channels or cpu.memory_channels
    if channels is None:
        raise SpecError.one(f"compute-module {module.id}", "memory.channels",
                            f"{cpu.id} publishes no memory channel count; give memory.channels")
    return channels


def module_memory(module: ComputeModule, catalog: Catalog) -> MemoryBandwidth:
    """Theoretical memory bandwidth of ``module``, in B/s, after the 2DPC derate.

    Speed of a channel = min(DIMM rating, the CPU's speed at the population): the CPU's
    1DPC speed (``memory_mts``), its published 2DPC speed (``memory_mts_2dpc``) or its MRDIMM
    speed. Bandwidth = sockets x channels x MT/s x 8 B (64-bit DDR channel, JEDEC
    JESD79-5). Soldered memory uses the vendor's per-socket figure. Where the 2DPC speed is
    not published the 1DPC speed is used and the result is an upper bound.

    Raises
    ------
    SpecError
        When the CPU id is unknown, or when neither the module nor the CPU gives the channel
        count (or, for soldered memory, the CPU gives no bandwidth).
    """
    cpu, mem = _cpu(module, catalog), module.memory
    if mem.module_type == "soldered":
        if cpu.memory_bandwidth is None:
            raise SpecError.one(f"compute-module {module.id}", "memory.module_type",
                                f"{cpu.id} publishes no memory bandwidth for soldered memory")
        return MemoryBandwidth(module.sockets, cpu.memory_channels or 0, cpu.memory_mts,
                               module.sockets * cpu.memory_bandwidth, "soldered", False)
    channels = _channels(module, cpu)
    assert mem.rated_mts is not None  # the schema requires it for DIMMs
    limit: Limit
    cpu_mts: int | None
    upper = False
    if mem.module_type == "mrdimm":
        cpu_mts, limit = cpu.memory_mts_mrdimm, "cpu-mrdimm"
    elif mem.dimms_per_channel >= 2 and cpu.memory_mts_2dpc is not None:
        cpu_mts, limit = cpu.memory_mts_2dpc, "cpu-2dpc"
    else:
        cpu_mts, limit = cpu.memory_mts, "cpu-1dpc"
        upper = mem.dimms_per_channel >= 2
    if cpu_mts is None:
        cpu_mts, limit, upper = mem.rated_mts, "unpublished", True
    mts = min(cpu_mts, mem.rated_mts)
    if mem.rated_mts < cpu_mts:
        limit = "dimm-rating"
    bandwidth = module.sockets * channels * mts * 1e6 * DDR_BYTES_PER_TRANSFER
    return MemoryBandwidth(module.sockets, channels, mts, bandwidth, limit, upper)


def module_memory_bandwidth_Bps(module: ComputeModule, catalog: Catalog) -> float:
    """Effective theoretical memory bandwidth of the whole module, B/s (see
    :func:`module_memory`)."""
    return module_memory(module, catalog).bandwidth_Bps


def module_lanes(module: ComputeModule, catalog: Catalog) -> ModuleLanes:
    """Lanes available = sockets x (PCIe lanes - lanes per socket on socket links), the
    links counting only when sockets > 1; exported = sum of the module's links."""
    cpu = _cpu(module, catalog)
    link = 0 if module.sockets == 1 else (module.socket_link_lanes
                                          if module.socket_link_lanes is not None
                                          else cpu.socket_link_lanes)
    available = None
    if cpu.pcie_lanes is not None:
        available = module.sockets * (cpu.pcie_lanes - (link or 0))
    exported = sum(x.lanes for x in module.io)
    cxl = sum(x.lanes for x in module.io if x.kind == "cxl")
    return ModuleLanes(available, link, exported, cxl)


def module_power(module: ComputeModule, catalog: Catalog) -> ModulePower:
    """Power at TDP: sockets x TDP + DIMMs x DIMM power + other, against the budget, W."""
    cpu, mem = _cpu(module, catalog), module.memory
    dimms = 0 if mem.module_type == "soldered" else \
        module.sockets * _channels(module, cpu) * mem.dimms_per_channel
    cpu_W = None if cpu.tdp is None else module.sockets * cpu.tdp
    return ModulePower(cpu_W, dimms * (mem.dimm_power or 0.0), module.other_power,
                       module.power_budget)


def _f(rule: str, severity: Severity, message: str, section: str,
       module: ComputeModule) -> Finding:
    return Finding(rule, severity, f"{module.id}: {message}", section, module.id)


def _sockets(module: ComputeModule, cpu: Cpu) -> list[Finding]:
    section = f"{cpu.name}: most sockets per system (vendor scalability)"
    if module.sockets == 1:
        return []
    if cpu.max_sockets is None:
        return [_f("MODULE-SOCKETS", "warning", f"{cpu.id} publishes no socket count; "
                   f"{module.sockets} sockets not checked", section, module)]
    if module.sockets > cpu.max_sockets:
        return [_f("MODULE-SOCKETS", "error", f"{module.sockets} sockets but {cpu.id} scales to "
                   f"{cpu.max_sockets}", section, module)]
    return []


def _memory(module: ComputeModule, cpu: Cpu) -> list[Finding]:
    mem = module.memory
    out: list[Finding] = []
    if mem.module_type == "soldered":
        return out
    if cpu.memory_channels is None:
        out.append(_f("MODULE-MEM-CHANNELS", "warning", f"{cpu.id} publishes no channel count; "
                      "population not checked", MEMORY_SECTION, module))
    elif mem.channels is not None and mem.channels > cpu.memory_channels:
        out.append(_f("MODULE-MEM-CHANNELS", "error", f"{mem.channels} channels populated per "
                      f"socket; {cpu.id} has {cpu.memory_channels}", MEMORY_SECTION, module))
    if mem.dimms_per_channel > mem.slots_per_channel:
        out.append(_f("MODULE-MEM-SLOTS", "error", f"{mem.dimms_per_channel} DIMMs per channel "
                      f"in {mem.slots_per_channel} slot(s) per channel", MEMORY_SECTION, module))
    if cpu.dimms_per_channel_max is not None and mem.dimms_per_channel > cpu.dimms_per_channel_max:
        out.append(_f("MODULE-MEM-SLOTS", "error", f"{mem.dimms_per_channel} DIMMs per channel; "
                      f"{cpu.id} supports {cpu.dimms_per_channel_max}", MEMORY_SECTION, module))
    elif cpu.dimms_per_channel_max is None and mem.dimms_per_channel > 1:
        out.append(_f("MODULE-MEM-SLOTS", "warning", f"{cpu.id} publishes no DIMMs-per-channel "
                      f"limit; {mem.dimms_per_channel}DPC not checked", MEMORY_SECTION, module))
    if mem.module_type == "mrdimm" and cpu.memory_mts_mrdimm is None:
        out.append(_f("MODULE-MEM-TYPE", "error", f"MRDIMMs on {cpu.id}, which lists no MRDIMM "
                      "support", f"{cpu.name} memory types", module))
    return out


def _speed(module: ComputeModule, catalog: Catalog, cpu: Cpu) -> list[Finding]:
    mem = module.memory
    if mem.module_type == "soldered" or (cpu.memory_channels is None
                                         and mem.channels is None):
        return []
    bw = module_memory(module, catalog)
    section = f"{cpu.name}: memory speed by DIMMs per channel (its catalog sources)"
    if bw.limited_by == "cpu-2dpc":
        return [_f("MODULE-MEM-SPEED", "info", f"two DIMMs per channel run at {bw.effective_mts} "
                   f"MT/s instead of {cpu.memory_mts} MT/s: "
                   f"{format_quantity(bw.bandwidth_Bps, 'B/s')} in all", section, module)]
    if bw.upper_bound:
        return [_f("MODULE-MEM-SPEED", "warning", f"{cpu.id} publishes no speed for this "
                   f"population; {format_quantity(bw.bandwidth_Bps, 'B/s')} at "
                   f"{bw.effective_mts} MT/s is an upper bound", section, module)]
    rated, mts = mem.rated_mts, bw.effective_mts
    if rated is not None and mts is not None and rated > mts and bw.limited_by in CPU_SPEED_FIELDS:
        # Faster DIMMs are a valid build (they run down-clocked), but the speed they are
        # bought for is not the speed the bandwidth is computed at: say so, as the 2DPC
        # derate above does, rather than "no findings".
        return [_f("MODULE-MEM-SPEED", "info", f"DIMMs rated {rated:,} MT/s run at the CPU's "
                   f"{mts:,} MT/s ({cpu.id} {CPU_SPEED_FIELDS[bw.limited_by]}, its speed "
                   f"with {CPU_SPEED_CASES[bw.limited_by]}): "
                   f"{format_quantity(bw.bandwidth_Bps, 'B/s')} in all", section, module)]
    return []


def _lanes(module: ComputeModule, catalog: Catalog, cpu: Cpu) -> list[Finding]:
    lanes = module_lanes(module, catalog)
    out: list[Finding] = []
    if lanes.available is None:
        return [_f("MODULE-LANES", "warning", f"{cpu.id} publishes no PCIe lane count; "
                   f"{lanes.exported} exported lanes not checked", LANES_SECTION, module)]
    if module.sockets > 1 and lanes.link_lanes_per_socket is None:
        out.append(_f("MODULE-LANES", "warning", f"lanes {cpu.id} gives to socket links are not "
                      "published; exported lanes checked against the full count",
                      LANES_SECTION, module))
    if lanes.exported > lanes.available:
        out.append(_f("MODULE-LANES", "error", f"{lanes.exported} lanes exported; "
                      f"{module.sockets} x {cpu.id} offer {lanes.available}"
                      f" ({lanes.link_lanes_per_socket or 0} per socket on socket links)",
                      LANES_SECTION, module))
    for link in module.io:
        if cpu.pcie_gen is not None and link.gen > cpu.pcie_gen:
            out.append(_f("MODULE-LANES-GEN", "error", f"{link.kind} Gen{link.gen} lanes on "
                          f"{cpu.id}, whose lanes are Gen{cpu.pcie_gen}", LANES_SECTION, module))
    if lanes.cxl_exported and cpu.cxl is None:
        out.append(_f("MODULE-CXL", "error", f"{lanes.cxl_exported} CXL lanes exported; "
                      f"{cpu.id} lists no CXL support", f"{cpu.name} CXL", module))
    elif cpu.cxl_lanes is not None and lanes.cxl_exported > module.sockets * cpu.cxl_lanes:
        out.append(_f("MODULE-CXL", "error", f"{lanes.cxl_exported} CXL lanes exported; "
                      f"{cpu.id} runs CXL on {cpu.cxl_lanes} lanes per socket",
                      f"{cpu.name} CXL", module))
    return out


def _power(module: ComputeModule, catalog: Catalog, cpu: Cpu) -> list[Finding]:
    power = module_power(module, catalog)
    demand = power.demand_W
    if demand is None:
        return [_f("MODULE-POWER", "warning", f"{cpu.id} publishes no TDP; the "
                   f"{format_quantity(power.budget_W, 'W')} budget is not checked",
                   POWER_SECTION, module)]
    if demand > power.budget_W:
        return [_f("MODULE-POWER", "error", f"demand {format_quantity(demand, 'W')} (CPUs "
                   f"{format_quantity(power.cpu_W or 0.0, 'W')}, DIMMs "
                   f"{format_quantity(power.dimm_W, 'W')}, other "
                   f"{format_quantity(power.other_W, 'W')}) exceeds the "
                   f"{format_quantity(power.budget_W, 'W')} budget", POWER_SECTION, module)]
    return []


def _management(module: ComputeModule) -> list[Finding]:
    count = sum(m.count for m in module.management)
    if count != 1:
        return [_f("MODULE-MGMT", "error", f"{count} management endpoints; a module has exactly "
                   "one", MGMT_SECTION, module)]
    return []


def module_findings(module: ComputeModule, catalog: Catalog) -> list[Finding]:
    """Every rule's findings for one compute module, errors first.

    Raises
    ------
    SpecError
        When the module names a CPU the catalog does not hold.
    """
    cpu = _cpu(module, catalog)
    findings = [*_sockets(module, cpu), *_memory(module, cpu), *_speed(module, catalog, cpu),
                *_lanes(module, catalog, cpu), *_power(module, catalog, cpu),
                *_management(module)]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (order[f.severity], f.rule))
