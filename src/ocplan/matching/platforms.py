"""Platforms a CPU workload can be matched to: every compute module of the catalog, and
every CPU of the catalog as a generic module of each socket count it supports up to two
(1S always; 2S where its ``max_sockets`` allows).

A generic module is composed the way the catalog's illustrative OCM modules are: all
memory channels populated with one DIMM each at the CPU's rated speed, the CPU's lanes
exported, a management endpoint, and the module power of its parts
(:func:`ocplan.checks.module_rules.module_power`). Each platform also carries the
configuration row the CPU performance model predicts from: the columns of
``cpu_dev.csv`` (sockets, cores, clocks, TDP, memory channels, type and speed as
populated), so a platform is predicted exactly as a published result of it would be.

A platform whose CPU does not publish what its power or bandwidth needs (TDP, memory
speed, memory channels) is not modelled rather than guessed: it is an
:class:`Unmodelled` entry naming the missing fields (:func:`unmodelled_platforms`), so
that a match lists every platform of the catalog.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.schema import ComputeModule, Cpu
from ocplan.checks.finding import Finding
from ocplan.checks.module_rules import module_findings, module_memory, module_power

__all__ = ["GENERIC_DIMM", "GENERIC_MAX_SOCKETS", "Platform", "Unmodelled", "catalog_platforms",
           "config_row", "either", "generic_socket_counts", "unmodelled_platforms"]

#: DIMM a generic module populates each channel with: 64 GB RDIMM, one per channel at
#: the CPU's rated speed (the population the catalog's illustrative modules use).
GENERIC_DIMM = {"capacity": "64 GB", "module_type": "rdimm", "dimm_power": "12 W"}
#: Power a generic module reserves for everything but CPUs and DIMMs (regulator loss,
#: management controller, fans), per socket: the catalog's illustrative modules reserve
#: 150 W for two sockets.
GENERIC_OTHER_W_PER_SOCKET = 75.0
#: Most sockets of a generic module: the catalog's illustrative OCM modules (DC-MHS
#: M-FLW / M-DNO host processor modules) hold one or two; a 4- or 8-socket system is
#: not a module of that kind and is not composed.
GENERIC_MAX_SOCKETS = 2


@dataclass(frozen=True)
class Platform:
    """A CPU platform as the matcher sees it."""

    id: str
    kind: str
    """``module`` (a catalog compute module) or ``cpu`` (a generic module of a CPU)."""
    module: ComputeModule
    cpu: Cpu
    memory_Bps: float
    memory_bytes: float
    power_max_W: float
    """Module power at full load: CPUs at TDP, DIMMs, the rest (``module_power``)."""
    lanes: int
    """PCIe and CXL lanes the module exports."""
    row: dict[str, str]
    """The configuration as a row of ``cpu_dev.csv`` (what the performance model reads)."""
    findings: tuple[Finding, ...] = ()
    lanes_upper_bound: bool = False
    """The lane count is an upper bound: a multi-socket module whose socket links'
    lanes no source gives (nor the module file), so none are taken off."""

    @property
    def cores(self) -> int:
        return self.cpu.cores * self.module.sockets


@dataclass(frozen=True)
class Unmodelled:
    """A platform of the catalog the matcher cannot model: its CPU does not publish a
    value its power or memory bandwidth needs, and none is guessed."""

    id: str
    kind: str
    """``module`` or ``cpu``, as :attr:`Platform.kind`."""
    cpu: Cpu
    sockets: int
    missing: tuple[str, ...]
    """What is not published, e.g. ``("TDP", "memory speed")``."""

    @property
    def reason(self) -> str:
        """``not modelled: no published TDP`` (the missing values joined by "or")."""
        return f"not modelled: no published {either(self.missing)}"


def either(values: Sequence[object]) -> str:
    """Alternatives in words: ``1``, ``1 or 2``, ``TDP, memory speed or channels``."""
    *head, last = (str(v) for v in values)
    return f"{', '.join(head)} or {last}" if head else last


def generic_socket_counts(cpu: Cpu) -> tuple[int, ...]:
    """The socket counts a generic module of ``cpu`` is composed with: every count from
    one to the CPU's ``max_sockets`` (the schema's "most sockets one coherent system may
    hold", so any smaller count is a valid system too), at most
    :data:`GENERIC_MAX_SOCKETS`; one socket only when the CPU publishes no socket count
    (a second socket would be unchecked)."""
    return tuple(range(1, min(cpu.max_sockets or 1, GENERIC_MAX_SOCKETS) + 1))


def _generic_id(cpu: Cpu, sockets: int) -> str:
    return f"generic-{cpu.id}-{sockets}s"


def _cpu_missing(cpu: Cpu) -> tuple[str, ...]:
    """What a generic module of ``cpu`` needs and the CPU does not publish."""
    needs = (("memory channel count", cpu.memory_channels), ("memory speed", cpu.memory_mts),
             ("TDP", cpu.tdp))
    return tuple(name for name, value in needs if value is None)


def _module_missing(module: ComputeModule, catalog: Catalog) -> tuple[str, ...]:
    """What the platform of a catalog module needs and its CPU does not publish: the TDP
    (its power) and the memory speed (the performance model's input)."""
    missing = []
    if module_power(module, catalog).demand_W is None:
        missing.append("TDP")
    if module_memory(module, catalog).effective_mts is None:
        missing.append("memory speed")
    return tuple(missing)


def _num(value: float | None, scale: float = 1.0) -> str:
    return "" if value is None else f"{value / scale:g}"


def config_row(cpu: Cpu, module: ComputeModule, memory_mts: float) -> dict[str, str]:
    """The configuration of a module as a ``cpu_dev.csv`` row (unknowns empty)."""
    channels = cpu.memory_channels
    dimms = (module.memory.dimms_per_channel * (channels or 0) * module.sockets
             if channels else None)
    boost_kind = "all_core" if cpu.all_core_clock is not None else "max_turbo"
    boost = cpu.all_core_clock if cpu.all_core_clock is not None else cpu.boost_clock
    mem_type = (cpu.memory_type or "").split("-")[0].upper() or ""
    if module.memory.module_type == "mrdimm":
        mem_type = "MRDIMM"
    return {
        "cpu": cpu.id, "vendor": cpu.vendor, "family": cpu.family or "", "isa": cpu.isa,
        "sockets": str(module.sockets), "cores_per_socket": str(cpu.cores),
        "threads_per_core": str(cpu.threads // cpu.cores),
        "base_ghz": _num(cpu.base_clock, 1e9), "boost_ghz": _num(boost, 1e9),
        "boost_kind": boost_kind if boost is not None else "",
        "max_boost_ghz": _num(cpu.boost_clock, 1e9), "tdp_w": _num(cpu.tdp),
        "memory_channels_per_socket": _num(channels), "memory_type": mem_type,
        "memory_mts": _num(memory_mts),
        "memory_gb": _num(module.memory.capacity * (dimms or 0), 1e9),
        "dimms_total": "" if dimms is None else str(dimms),
    }


def _generic(cpu: Cpu, sockets: int) -> ComputeModule | None:
    """A generic ``sockets``-socket module of ``cpu``, every channel populated once; None
    when the CPU does not publish enough to compose (and predict) it."""
    if cpu.memory_channels is None or cpu.memory_mts is None or cpu.tdp is None:
        return None
    link = 0 if sockets == 1 else (cpu.socket_link_lanes or 0)
    lanes = sockets * max(0, (cpu.pcie_lanes or 0) - link)
    demand = sockets * (cpu.tdp + cpu.memory_channels * 12.0 + GENERIC_OTHER_W_PER_SOCKET)
    return ComputeModule.model_validate({
        "kind": "compute-module", "id": _generic_id(cpu, sockets),
        "name": f"generic {sockets}S {cpu.name} module", "vendor": "ocplan",
        "form_factor": "dc-mhs-m-flw", "illustrative": True, "cpu": cpu.id,
        "sockets": sockets,
        "memory": {**GENERIC_DIMM, "slots_per_channel": 1, "dimms_per_channel": 1,
                   "rated_mts": int(cpu.memory_mts)},
        "io": [{"kind": "pcie", "gen": cpu.pcie_gen or 5, "lanes": max(1, lanes)}],
        "management": [{"kind": "dc-scm", "count": 1}],
        "power_budget": f"{demand:.0f} W",
        "other_power": f"{GENERIC_OTHER_W_PER_SOCKET * sockets:.0f} W",
        "sources": [{"title": "ocplan generic composition (platforms.py)",
                     "covers": ["*"]}]})


def _platform(module: ComputeModule, cpu: Cpu, kind: str,
              catalog: Catalog) -> Platform | None:
    """The platform of a module; None when its CPU publishes no TDP or memory speed (its
    power or bandwidth would be a guess)."""
    memory = module_memory(module, catalog)
    power = module_power(module, catalog).demand_W
    if power is None or memory.effective_mts is None:
        return None
    mem = module.memory
    if mem.module_type == "soldered":
        capacity = mem.capacity * module.sockets
    else:
        channels = mem.channels or cpu.memory_channels or 0
        capacity = mem.capacity * mem.dimms_per_channel * channels * module.sockets
    return Platform(
        id=module.id, kind=kind, module=module, cpu=cpu, memory_Bps=memory.bandwidth_Bps,
        memory_bytes=capacity, power_max_W=power,
        lanes=sum(link.lanes for link in module.io),
        row=config_row(cpu, module, memory.effective_mts),
        findings=tuple(module_findings(module, catalog)),
        lanes_upper_bound=module.sockets > 1 and module.socket_link_lanes is None
        and cpu.socket_link_lanes is None)


def catalog_platforms(catalog: Catalog) -> list[Platform]:
    """Every compute module of the catalog, then a generic module of every CPU that
    publishes its channels, memory speed and TDP, of each socket count it supports
    (:func:`generic_socket_counts`), in id order. The others are
    :func:`unmodelled_platforms`."""
    out: list[Platform] = []
    for entry in catalog.all("compute-module"):
        assert isinstance(entry, ComputeModule)
        found = _platform(entry, catalog.get(Cpu, entry.cpu), "module", catalog)
        if found is not None:
            out.append(found)
    for entry in catalog.all("cpu"):
        assert isinstance(entry, Cpu)
        for sockets in generic_socket_counts(entry):
            module = _generic(entry, sockets)
            found = None if module is None else _platform(module, entry, "cpu", catalog)
            if found is not None:
                out.append(found)
    return out


def unmodelled_platforms(catalog: Catalog) -> list[Unmodelled]:
    """The platforms :func:`catalog_platforms` leaves out, each with what its CPU does not
    publish: compute modules whose CPU has no TDP or memory speed, and the generic
    modules of CPUs without a channel count, memory speed or TDP."""
    out: list[Unmodelled] = []
    for entry in catalog.all("compute-module"):
        assert isinstance(entry, ComputeModule)
        missing = _module_missing(entry, catalog)
        if missing:
            out.append(Unmodelled(entry.id, "module", catalog.get(Cpu, entry.cpu),
                                  entry.sockets, missing))
    for entry in catalog.all("cpu"):
        assert isinstance(entry, Cpu)
        missing = _cpu_missing(entry)
        if missing:
            out.extend(Unmodelled(_generic_id(entry, n), "cpu", entry, n, missing)
                       for n in generic_socket_counts(entry))
    return out
