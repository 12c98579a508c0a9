"""A Redfish management view of composed systems (DMTF DSP0266, schemas DSP8010 2025.4).

:func:`redfish_tree` turns a composed accelerator system into the resource tree a
Redfish service would serve for one of its servers: ServiceRoot, Systems, Chassis (the
server and its accelerator baseboard), Processors for CPUs and accelerators with their
slots, Memory (HBM, DIMMs), PCIe devices with lanes and generation, ports with line
rates, power and thermal subsystems with the catalog's limits, sensors, logs, firmware
inventory and telemetry. :func:`cpu_node_tree` does the same for a CPU-only node
(:class:`CpuNode`; :func:`module_node` fills one from an OCM-style compute module of the
catalog, its exported lanes shown as the CPUs' root ports), :func:`service_tree` for
several systems behind one service root, :func:`read_managed` reads a system or a
compute-module file to serve.
The functions are pure: no I/O, no clock; :mod:`ocplan.web.redfish_routes` serves their
output read-only under ``/redfish/v1``.

Values only a live management controller knows are never invented. The tree carries
them as ``null`` where the DMTF schema makes the property nullable: serial, part and SKU
numbers, UUIDs of hardware, every sensor reading and port counter, negotiated link
speed and width, PCI vendor and device IDs, firmware versions, certificate contents,
and ``Status.State``/``Status.Health`` of hardware (a design is neither enabled nor
healthy). Where the schema allows no ``null`` the property is left out (a port's
``ActiveWidth``, ``LinkStatus``), or a Redfish state says it: each processor's device
identity certificate slot is in State ``Absent``, the update, telemetry and session
services are ``Disabled``.

Conformance: the tree of every example system passes DMTF's redfish-interop-validator
against the OCP UBB Baseline Management profile 2.0.0 with no failure on a Mandatory
requirement (``tests/test_redfish.py``). :data:`PROFILE_GAPS` lists what is left out of
the profile's ``Supported`` requirements, and why. A compute module is not a UBB: the
profile's requirements apply to it except the resource types of
:data:`MODULE_NOT_APPLICABLE`, and it leaves out the ``Supported`` requirements of
:data:`MODULE_GAPS` besides :data:`PROFILE_GAPS` (``tests/test_redfish_module.py``).
"""

from ocplan.redfish.host import CpuNode, NodeMemory
from ocplan.redfish.module import module_node, read_managed
from ocplan.redfish.odata import ROOT, Tree
from ocplan.redfish.service import REDFISH_VERSION
from ocplan.redfish.tree import SYSTEM_ID, cpu_node_tree, redfish_tree, service_tree

__all__ = [
    "MODULE_GAPS",
    "MODULE_NOT_APPLICABLE",
    "PROFILE_GAPS",
    "REDFISH_VERSION",
    "ROOT",
    "SYSTEM_ID",
    "CpuNode",
    "NodeMemory",
    "Tree",
    "cpu_node_tree",
    "module_node",
    "read_managed",
    "redfish_tree",
    "service_tree",
]

#: (resource, property path) of the OCP UBB profile's ``Supported`` requirements the
#: tree does not meet, and why:
#:
#: - ``Sensor`` ``Thresholds``: a sensor's thresholds are set by its controller's
#:   firmware; the catalog knows none, and a threshold with no value would claim that
#:   one exists.
#: - ``LogEntry`` ``OriginOfCondition``: the profile asks for it at the top of the
#:   entry, where no LogEntry schema version (1.0.0 to 1.21.0) has it; the schema puts
#:   it in ``Links``, and so does the tree.
PROFILE_GAPS: tuple[tuple[str, str], ...] = (("Sensor", "Thresholds"),
                                             ("LogEntry", "OriginOfCondition"))

#: Resource types of the OCP UBB profile that do not apply to a CPU compute module, and
#: why. Every other requirement of the profile applies to it as to a UBB server.
#:
#: - ``Port`` (Mandatory for a UBB, whose accelerators have scale-up ports): a compute
#:   module has no accelerators and no NICs; the catalog does not model its CPUs'
#:   socket-to-socket links, and its exported lanes are PCIe root ports
#:   (``PCIeDevices``), not Redfish ports. ``PortMetrics`` (Supported) goes with it.
MODULE_NOT_APPLICABLE: tuple[str, ...] = ("Port", "PortMetrics")

#: (resource, property path) of the profile's ``Supported`` requirements a compute
#: module's tree leaves out besides :data:`PROFILE_GAPS`, and why:
#:
#: - ``Chassis`` ``Links/ContainedBy``: a module plugs into a host platform (an OCM or
#:   DC-MHS enclosure) that the catalog does not describe, so no chassis contains it; a
#:   UBB server's baseboard, contained by its server, meets it.
MODULE_GAPS: tuple[tuple[str, str], ...] = (("Chassis", "Links/ContainedBy"),)
