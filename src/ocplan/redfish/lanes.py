"""The lanes a CPU node exports on its connectors, as the CPUs' PCIe root ports.

A compute module's ``io`` entries give lanes per group (``128 x PCIe Gen5 on M-XIO``),
all sockets together. In Redfish a PCIe device's link is at most 32 lanes wide
(``PCIeInterface.MaxLanes``, PCIeDevice schema v1_21_0), and what sits behind a connector
is unknown until something is plugged in. So each group is shown as the root ports that
drive it: ``RootPort0``, ``RootPort1``... of at most :data:`ROOT_PORT_LANES` lanes each,
PCI class ``Bridge``, with the group's generation as ``MaxPCIeType``, and the connector
as the port's ``Slot`` location. How a port bifurcates, which socket drives it, its
negotiated width and speed and its PCI IDs are the firmware's and the controller's: not
stated (``null`` where the schema allows it, else left out).
"""

from __future__ import annotations

from ocplan.catalog.schema import ModuleLink
from ocplan.redfish.host import CpuNode
from ocplan.redfish.odata import Tree, pcie_type
from ocplan.redfish.parts import pcie_device

__all__ = ["ROOT_PORT_LANES", "port_widths", "root_ports"]

#: Widest root port a CPU drives: server CPUs group their lanes in x16 ports that
#: bifurcate down to narrower links (AMD EPYC 7002: "8 x16 PCIe 4.0 links ... split up
#: among up to 8 devices per PCIe root", AnandTech, "AMD Rome Second Generation EPYC
#: Review", page 3 "PCIe 4.0", https://www.anandtech.com/show/14694/amd-rome-epyc-2nd-gen/3).
ROOT_PORT_LANES = 16
#: How a link kind is written in names.
_KIND = {"pcie": "PCIe", "cxl": "CXL"}


def port_widths(lanes: int) -> list[int]:
    """Widths of the root ports that drive ``lanes`` lanes: full x16 ports, then one
    port of the rest (``40 -> [16, 16, 8]``)."""
    assert lanes >= 1, lanes
    full, rest = divmod(lanes, ROOT_PORT_LANES)
    return [ROOT_PORT_LANES] * full + ([rest] if rest else [])


def _port_name(group: ModuleLink, width: int, index: int) -> str:
    where = f" on {group.connector}" if group.connector else ""
    return f"Root port {index}: {_KIND[group.kind]} Gen{group.gen} x{width}{where}"


def root_ports(node: CpuNode, chassis_uri: str) -> Tree:
    """``{chassis_uri}/PCIeDevices/RootPort{k}`` for every exported lane of ``node``."""
    cpu = node.cpu
    tree: Tree = {}
    index = 0
    for group in node.links:
        for width in port_widths(group.lanes):
            port_id = f"RootPort{index}"
            part = pcie_device(chassis_uri, port_id, _port_name(group, width, index),
                               cpu.vendor, f"{cpu.name} {_KIND[group.kind]} root port",
                               group.gen, width, device_class="Bridge")
            uri = f"{chassis_uri}/PCIeDevices/{port_id}"
            label = f"{group.connector or 'connector'} lanes of root port {index}"
            part[uri]["Slot"] = {"Lanes": width, "PCIeType": pcie_type(group.gen),
                                 "Location": {"PartLocation": {
                                     "ServiceLabel": label, "LocationType": "Connector",
                                     "LocationOrdinalValue": index}}}
            tree |= part
            index += 1
    return tree
