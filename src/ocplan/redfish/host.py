"""The host side of a node: CPU sockets, their DIMMs and the NICs, as Redfish resources.

:class:`CpuNode` is what the Redfish view needs to know of a CPU node: the CPU entry,
its socket count, the DIMMs and NICs, the power supplies. An accelerator server's host
is one (:func:`host_of`); a CPU-only system or an OCM compute module is one on its own,
and :func:`ocplan.redfish.tree.cpu_node_tree` serves it. A new catalog kind for CPU
modules only needs a function that fills a :class:`CpuNode` from its entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ocplan.catalog.schema import Cpu, ModuleLink, Nic, PowerSupplies
from ocplan.catalog.system import System
from ocplan.redfish.odata import (
    Tree,
    collection,
    gbit_per_s,
    link,
    links,
    mebibytes,
    megahertz,
    resource,
    unknown_status,
)
from ocplan.redfish.parts import (
    PortSpec,
    certificate_slot,
    environment_metrics,
    pcie_device,
    ports,
    sensor_set,
)
from ocplan.topology.cluster import host_share, used_sockets

__all__ = ["NIC_PROTOCOLS", "CpuNode", "NodeMemory", "cpu_resources", "dimm_device_type",
           "host_of", "nic_resources"]

#: Redfish names of an ISA: (ProcessorArchitecture, InstructionSet) of the Processor
#: schema.
_ISA = {"x86-64": ("x86", "x86-64"), "arm64": ("ARM", "ARM-A64"),
        "riscv64": ("RISC-V", "RV64")}
#: Redfish Protocol and LinkNetworkTechnology of a NIC protocol. RoCE runs over Ethernet
#: and Slingshot is Ethernet-compatible, so their ports are Ethernet ports.
NIC_PROTOCOLS = {"infiniband": "InfiniBand", "ethernet": "Ethernet", "roce": "Ethernet",
                 "slingshot": "Ethernet"}
#: Redfish MemoryDeviceType of a DDR generation, by the catalog's ``memory_type`` prefix.
_DIMM_TYPES = {"DDR3": "DDR3", "DDR4": "DDR4", "DDR5": "DDR5", "LPDDR4": "LPDDR4_SDRAM",
               "LPDDR5": "LPDDR5_SDRAM"}
_MEMORY_TYPE = re.compile(r"^\s*((?:LP)?DDR\d)X?(?:-(\d+))?", re.IGNORECASE)


@dataclass(frozen=True)
class NodeMemory:
    """What a node's builder knows of its memory beyond the CPU entry.

    ``device_type`` and ``base_module_type`` are Redfish ``MemoryDeviceType`` and
    ``BaseModuleType`` names (``None``: not known, or no Redfish name); ``rated_mts`` is
    the speed grade of the devices (``AllowedSpeedsMHz``), ``operating_mts`` the speed the
    CPU runs them at in this population (``OperatingSpeedMhz``; both in MT/s, as the
    Memory schema asks for memory that transfers faster than its bus clock). Soldered
    memory is ``embedded``: one device per socket, located ``Embedded``.
    """

    device_type: str | None
    base_module_type: str | None
    rated_mts: int | None
    operating_mts: int | None
    embedded: bool = False


@dataclass(frozen=True)
class CpuNode:
    """A CPU node (server or OCM compute module) as its Redfish view needs it.

    ``dimms_per_socket`` DIMMs of ``dimm_capacity_bytes`` each (``None``: capacity not
    known) sit on each socket, described by ``memory`` when the builder knows more than
    the CPU entry; ``nics`` are (NIC, count); ``links`` the lanes the node exports on
    its connectors (shown as the CPUs' root ports, :mod:`ocplan.redfish.lanes`);
    ``max_power_W`` is the node's nameplate power, when the caller knows every part of
    it, and ``power_capacity_W`` what its power input delivers when it has no supplies
    of its own (a compute module's budget). ``source`` is the file the node was read
    from and ``entry_id`` its catalog id, if any (they name the node's Redfish id).
    """

    name: str
    manufacturer: str
    model: str
    cpu: Cpu
    sockets: int
    dimms_per_socket: int = 0
    dimm_capacity_bytes: float | None = None
    nics: tuple[tuple[Nic, int], ...] = ()
    power_supplies: PowerSupplies | None = None
    max_power_W: float | None = None
    form: Literal["socket", "ocm"] = "socket"
    memory: NodeMemory | None = None
    links: tuple[ModuleLink, ...] = ()
    power_capacity_W: float | None = None
    source: str = ""
    entry_id: str | None = None

    def __post_init__(self) -> None:
        assert self.sockets >= 1, self
        assert self.dimms_per_socket >= 0, self


def host_of(system: System, max_power_W: float | None) -> CpuNode:
    """The host of one server of ``system``: its CPU sockets and compute NICs, those of
    the hosts its chips use where it populates part of a multi-host server (a slice of a
    TPU pod: :func:`~ocplan.topology.cluster.host_share`). The catalog gives no DIMM
    population for servers, so no DIMMs are listed."""
    server = system.server
    share = host_share(system)
    return CpuNode(name=system.spec.name, manufacturer=server.vendor, model=server.name,
                   cpu=system.cpu, sockets=used_sockets(system),
                   nics=tuple((nic, max(1, round(count * share)) if count else 0)
                              for nic, count, _ in system.server_nics),
                   power_supplies=server.power_supplies, max_power_W=max_power_W,
                   form=server.host.form)


def dimm_device_type(cpu: Cpu) -> tuple[str | None, list[int]]:
    """Redfish MemoryDeviceType and AllowedSpeedsMHz of ``cpu``'s DIMMs (``DDR5-4800``
    -> ``("DDR5", [4800])``): the speed is ``memory_mts``, else the grade written in
    ``memory_type``, in MT/s as the Memory schema asks for memory that transfers faster
    than its bus clock; unknown: ``(None, [])``."""
    match = _MEMORY_TYPE.match(cpu.memory_type or "")
    kind = _DIMM_TYPES.get(match.group(1).upper()) if match else None
    if cpu.memory_mts is not None:
        return kind, [cpu.memory_mts]
    return kind, [int(match.group(2))] if match and match.group(2) else []


def _memory_kind(node: CpuNode) -> tuple[str | None, list[int]]:
    """MemoryDeviceType and AllowedSpeedsMHz of ``node``'s memory devices."""
    kind, speeds = dimm_device_type(node.cpu)
    if node.memory is None:
        return kind, speeds
    rated = [node.memory.rated_mts] if node.memory.rated_mts is not None else speeds
    return node.memory.device_type or kind, rated


def _memory_devices(node: CpuNode, socket: int, system_uri: str, cpu_uri: str) -> Tree:
    """The memory devices of one socket: its DIMMs ``CPU{s}_DIMM{k}`` in their slots, or
    its soldered memory ``CPU{s}_DRAM``, each with its metrics."""
    memory_kind, speeds = _memory_kind(node)
    extra: dict[str, object] = {}
    if node.memory is not None:
        if node.memory.base_module_type is not None:
            extra["BaseModuleType"] = node.memory.base_module_type
        if node.memory.operating_mts is not None:
            extra["OperatingSpeedMhz"] = node.memory.operating_mts
    embedded = node.memory is not None and node.memory.embedded
    tree: Tree = {}
    for k in range(node.dimms_per_socket):
        label = f"CPU {socket} memory" if embedded else f"CPU {socket} DIMM {k}"
        uri = f"{system_uri}/Memory/CPU{socket}_" + ("DRAM" if embedded else f"DIMM{k}")
        location: dict[str, object] = {"ServiceLabel": label,
                                       "LocationType": "Embedded" if embedded else "Slot"}
        if not embedded:
            location["LocationOrdinalValue"] = k
        tree[uri] = resource(
            uri, "Memory", label, MemoryType="DRAM", MemoryDeviceType=memory_kind,
            AllowedSpeedsMHz=speeds, **extra,
            CapacityMiB=(None if node.dimm_capacity_bytes is None
                         else mebibytes(node.dimm_capacity_bytes)),
            ErrorCorrection=None, SerialNumber=None, PartNumber=None,
            Location={"PartLocation": location},
            Metrics=link(f"{uri}/MemoryMetrics"), Links={"Processors": [link(cpu_uri)]},
            Status=unknown_status())
        tree[f"{uri}/MemoryMetrics"] = resource(
            f"{uri}/MemoryMetrics", "MemoryMetrics", f"{label} metrics",
            BandwidthPercent=None)
    return tree


def cpu_resources(node: CpuNode, system_uri: str, chassis_uri: str) -> Tree:
    """Processors ``CPU0``... of ``node`` under ``system_uri``, with their memory (under
    ``system_uri``/Memory) and sensors (under ``chassis_uri``)."""
    cpu = node.cpu
    architecture, instruction_set = _ISA[cpu.isa]
    tree: Tree = {}
    for socket in range(node.sockets):
        uri = f"{system_uri}/Processors/CPU{socket}"
        memory = _memory_devices(node, socket, system_uri, uri)
        tree |= memory
        dimms = [key for key, value in memory.items()
                 if value["@odata.type"].startswith("#Memory.")]
        sensors, sensor_tree = sensor_set(chassis_uri, f"CPU{socket}", f"CPU {socket}",
                                          "CPU", related=uri)
        tree |= sensor_tree
        tree |= environment_metrics(uri, f"CPU {socket}", sensors, cpu.tdp, cpu.tdp)
        # The catalog does not model a CPU's links (UPI, xGMI, PCIe root ports), so its
        # port collection is empty rather than guessed.
        tree |= ports(uri, f"CPU {socket}", [])
        tree |= certificate_slot(uri, f"CPU {socket}")
        tree[uri] = resource(
            uri, "Processor", f"CPU {socket}", ProcessorType="CPU",
            ProcessorArchitecture=architecture, InstructionSet=instruction_set,
            Manufacturer=cpu.vendor, Model=cpu.name, Socket=f"CPU {socket}",
            TotalCores=cpu.cores, TotalThreads=cpu.threads,
            MaxSpeedMHz=megahertz(cpu.boost_clock or cpu.base_clock),
            SerialNumber=None, PartNumber=None,
            Location={"PartLocation": {"ServiceLabel": f"CPU {socket}",
                                       "LocationType": "Socket",
                                       "LocationOrdinalValue": socket}},
            EnvironmentMetrics=link(f"{uri}/EnvironmentMetrics"),
            Ports=link(f"{uri}/Ports"), Certificates=link(f"{uri}/Certificates"),
            Links={"Chassis": link(chassis_uri), "Memory": links(dimms)},
            Status=unknown_status())
    return tree


def nic_resources(node: CpuNode, chassis_uri: str) -> Tree:
    """NICs ``NIC0``... of ``node``: a NetworkAdapter (with its ports and their line
    rates) and a PCIeDevice (with the host link's generation and lanes) each."""
    tree: Tree = {}
    index = 0
    for nic, count in node.nics:
        protocol = NIC_PROTOCOLS[nic.protocol]
        for _ in range(count):
            nic_id = f"NIC{index}"
            adapter = f"{chassis_uri}/NetworkAdapters/{nic_id}"
            pcie = f"{chassis_uri}/PCIeDevices/{nic_id}"
            tree |= pcie_device(chassis_uri, nic_id, f"{nic_id}: {nic.name}", nic.vendor,
                                nic.name, nic.host.gen, nic.host.lanes,
                                device_class="NetworkController")
            specs = [PortSpec(str(p), f"{nic_id} port {p}", protocol,
                              gbit_per_s(nic.port_bandwidth), technology=protocol)
                     for p in range(nic.ports)]
            tree |= ports(adapter, nic_id, specs)
            tree[adapter] = resource(
                adapter, "NetworkAdapter", f"{nic_id}: {nic.name}", Manufacturer=nic.vendor,
                Model=nic.name, SerialNumber=None, PartNumber=None,
                Ports=link(f"{adapter}/Ports"),
                Controllers=[{"ControllerCapabilities": {"NetworkPortCount": nic.ports},
                              "Links": {"PCIeDevices": [link(pcie)]}}],
                Status=unknown_status())
            index += 1
    if index:
        tree[f"{chassis_uri}/NetworkAdapters"] = collection(
            f"{chassis_uri}/NetworkAdapters", "NetworkAdapter", "Network adapters")
    return tree

