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

from ocplan.catalog.schema import Cpu, Nic, PowerSupplies
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

__all__ = ["NIC_PROTOCOLS", "CpuNode", "cpu_resources", "dimm_device_type", "host_of",
           "nic_resources"]

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
class CpuNode:
    """A CPU node (server or OCM compute module) as its Redfish view needs it.

    ``dimms_per_socket`` DIMMs of ``dimm_capacity_bytes`` each (``None``: capacity not
    known) sit on each socket; ``nics`` are (NIC, count); ``max_power_W`` is the node's
    nameplate power, when the caller knows every part of it.
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

    def __post_init__(self) -> None:
        assert self.sockets >= 1, self
        assert self.dimms_per_socket >= 0, self


def host_of(system: System, max_power_W: float | None) -> CpuNode:
    """The host of one server of ``system``: its CPU sockets and compute NICs. The
    catalog gives no DIMM population for servers, so no DIMMs are listed."""
    server = system.server
    return CpuNode(name=system.spec.name, manufacturer=server.vendor, model=server.name,
                   cpu=system.cpu, sockets=server.host.sockets,
                   nics=tuple((nic, count) for nic, count, _ in system.server_nics),
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


def cpu_resources(node: CpuNode, system_uri: str, chassis_uri: str) -> Tree:
    """Processors ``CPU0``... of ``node`` under ``system_uri``, with their DIMMs (under
    ``system_uri``/Memory) and sensors (under ``chassis_uri``)."""
    cpu = node.cpu
    architecture, instruction_set = _ISA[cpu.isa]
    memory_kind, speeds = dimm_device_type(cpu)
    tree: Tree = {}
    for socket in range(node.sockets):
        uri = f"{system_uri}/Processors/CPU{socket}"
        dimms = [f"{system_uri}/Memory/CPU{socket}_DIMM{k}"
                 for k in range(node.dimms_per_socket)]
        for k, dimm in enumerate(dimms):
            tree[dimm] = resource(
                dimm, "Memory", f"CPU {socket} DIMM {k}", MemoryType="DRAM",
                MemoryDeviceType=memory_kind, AllowedSpeedsMHz=speeds,
                CapacityMiB=(None if node.dimm_capacity_bytes is None
                             else mebibytes(node.dimm_capacity_bytes)),
                ErrorCorrection=None, SerialNumber=None, PartNumber=None,
                Location={"PartLocation": {"ServiceLabel": f"CPU {socket} DIMM {k}",
                                           "LocationType": "Slot",
                                           "LocationOrdinalValue": k}},
                Metrics=link(f"{dimm}/MemoryMetrics"), Links={"Processors": [link(uri)]},
                Status=unknown_status())
            tree[f"{dimm}/MemoryMetrics"] = resource(
                f"{dimm}/MemoryMetrics", "MemoryMetrics", f"CPU {socket} DIMM {k} metrics",
                BandwidthPercent=None)
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

