"""Redfish resource trees of composed systems: :func:`redfish_tree` for an accelerator
system, :func:`cpu_node_tree` for a CPU node, :func:`service_tree` for several at once.

A tree shows **one server** of the system, as that server's management controller
would: a cluster's servers are identical, and each has its own controller. The system
``{id}`` is ``/redfish/v1/Systems/{id}``; its server is ``/redfish/v1/Chassis/{id}``,
which contains the accelerator baseboard ``/redfish/v1/Chassis/{id}_Baseboard``.

Every system also gets an event log with one entry (the service created the system's
resources: ResourceEvent.1.4 ResourceCreated), one firmware inventory item per
processor (version ``null``) and a power metric report definition listing the power
sensors it would report, with an empty report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ocplan.catalog.system import System
from ocplan.errors import SpecError
from ocplan.redfish.accelerators import accelerator_resources
from ocplan.redfish.chassis import baseboard_chassis, server_chassis
from ocplan.redfish.host import CpuNode, cpu_resources, host_of, nic_resources
from ocplan.redfish.lanes import root_ports
from ocplan.redfish.odata import (
    MANAGER,
    ROOT,
    Tree,
    collection,
    gibibytes,
    link,
    resource,
    unknown_status,
)
from ocplan.redfish.service import link_up, service_resources
from ocplan.topology.power import power_budget

__all__ = ["SYSTEM_ID", "cpu_node_tree", "redfish_tree", "service_tree"]

#: A system id: a URI path segment of letters, digits, dots and hyphens (no ``_``, which
#: joins an id to the names of its parts, as in ``{id}_Baseboard``).
SYSTEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$")
#: The registry message logged when the service composes a system (DSP8011
#: ResourceEvent 1.4: "The resource was created successfully.", severity OK).
_CREATED = ("ResourceEvent.1.4.ResourceCreated", "The resource was created successfully.")


def _check_id(system_id: str) -> None:
    if not SYSTEM_ID.match(system_id):
        raise SpecError.one("redfish", "system_id", "a Redfish system id is 1-63 letters, "
                            "digits, '.' or '-', starting with a letter or digit", system_id)


def _system(node: CpuNode, system_id: str, description: str, processors: list[str],
            sensors: list[str]) -> Tree:
    """The ComputerSystem, its collections, event log, firmware items and power report."""
    uri = f"{ROOT}/Systems/{system_id}"
    log = f"{uri}/LogServices/EventLog"
    entry = f"{log}/Entries/1"
    cpu = node.cpu
    memory: dict[str, float] = {}
    if node.dimms_per_socket and node.dimm_capacity_bytes is not None:
        memory["TotalSystemMemoryGiB"] = gibibytes(node.sockets * node.dimms_per_socket
                                                   * node.dimm_capacity_bytes)
    tree: Tree = {
        uri: resource(
            uri, "ComputerSystem", node.name, SystemType="Physical",
            Description=description, Manufacturer=node.manufacturer, Model=node.model,
            SerialNumber=None, UUID=None, PowerState=None,
            ProcessorSummary={"Count": node.sockets, "CoreCount": node.sockets * cpu.cores,
                              "LogicalProcessorCount": node.sockets * cpu.threads,
                              "Model": cpu.name},
            **({"MemorySummary": memory} if memory else {}),
            Processors=link(f"{uri}/Processors"), Memory=link(f"{uri}/Memory"),
            LogServices=link(f"{uri}/LogServices"),
            Links={"Chassis": [link(f"{ROOT}/Chassis/{system_id}")],
                   "ManagedBy": [link(MANAGER)]},
            Status=unknown_status()),
        f"{uri}/Processors": collection(f"{uri}/Processors", "Processor", "Processors"),
        f"{uri}/Memory": collection(f"{uri}/Memory", "Memory", "Memory"),
        f"{uri}/LogServices": collection(f"{uri}/LogServices", "LogService", "Log services",
                                         Description=f"Logs of {node.name}"),
        log: resource(log, "LogService", "Event log", Description=f"Events of {node.name}",
                      Entries=link(f"{log}/Entries"), OverWritePolicy="NeverOverWrites"),
        f"{log}/Entries": collection(f"{log}/Entries", "LogEntry", "Event log entries",
                                     Description=f"Events of {node.name}"),
        entry: resource(entry, "LogEntry", "System composed", EntryType="Event",
                        Description=description, MessageId=_CREATED[0], Message=_CREATED[1],
                        MessageArgs=[], Severity="OK", Resolution="None.",
                        AdditionalDataURI=None, Links={"OriginOfCondition": link(uri)}),
    }
    for pid in processors:
        item = f"{ROOT}/UpdateService/FirmwareInventory/{system_id}_{pid.rsplit('/', 1)[1]}"
        tree[item] = resource(item, "SoftwareInventory", f"Firmware of {pid}", Version=None,
                              Updateable=None, WriteProtected=None, RelatedItem=[link(pid)],
                              Status=unknown_status())
    definition = f"{ROOT}/TelemetryService/MetricReportDefinitions/{system_id}_Power"
    report = f"{ROOT}/TelemetryService/MetricReports/{system_id}_Power"
    power_sensors = [key for key in sensors if key.endswith("_Power")]
    tree[definition] = resource(
        definition, "MetricReportDefinition", f"Power of {node.name}",
        MetricReportDefinitionType="OnRequest", ReportUpdates="Overwrite",
        MetricProperties=[f"{sensor}#/Reading" for sensor in power_sensors],
        MetricReport=link(report), Status={"State": "Disabled", "Health": None})
    tree[report] = resource(report, "MetricReport", f"Power of {node.name}",
                            MetricReportDefinition=link(definition), MetricValues=[],
                            Timestamp=None)
    return tree


def _node(node: CpuNode, system_id: str, description: str, boards: Tree,
          board_uris: list[str]) -> Tree:
    """The resources of one node (``boards``: the baseboards' resources, if any)."""
    system_uri = f"{ROOT}/Systems/{system_id}"
    chassis_uri = f"{ROOT}/Chassis/{system_id}"
    parts = (cpu_resources(node, system_uri, chassis_uri) | nic_resources(node, chassis_uri)
             | root_ports(node, chassis_uri))
    parts |= server_chassis(node, system_id, system_uri, parts, board_uris)
    parts |= boards
    processors = [key for key, value in parts.items()
                  if value.get("@odata.type", "").startswith("#Processor.")]
    sensors = [key for key in parts if "/Sensors/" in key]
    tree = service_resources() | _system(node, system_id, description, processors, sensors)
    return tree | parts


def redfish_tree(system: System, system_id: str) -> Tree:
    """The Redfish resource tree of one server of ``system``, keyed by URI.

    Parameters
    ----------
    system
        A resolved system (:func:`ocplan.catalog.system.load_system`).
    system_id
        Its Redfish id, a URI path segment (:data:`SYSTEM_ID`).

    Returns
    -------
    dict
        ``{uri: resource}`` for ``/redfish/v1`` and everything below it.

    Raises
    ------
    SpecError
        ``system_id`` is not a valid id.
    """
    return link_up(_accelerator_node(system, system_id))


def _accelerator_node(system: System, system_id: str) -> Tree:
    """The resources of one server of ``system``, collections not yet filled."""
    _check_id(system_id)
    # the server's nameplate power, when the catalog gives the power of all its parts
    # (the budget's other unknowns, the fabric's switches, are outside the server)
    known = system.cpu.tdp is not None and all(nic.power is not None
                                               for nic, _, _ in system.server_nics)
    node = host_of(system, power_budget(system).server_W if known else None)
    system_uri = f"{ROOT}/Systems/{system_id}"
    board_uri = f"{ROOT}/Chassis/{system_id}_Baseboard"
    modules = accelerator_resources(system, system_uri, board_uri)
    modules |= baseboard_chassis(system, f"{system_id}_Baseboard", system_uri,
                                 f"{ROOT}/Chassis/{system_id}", modules)
    servers = system.num_servers
    description = (f"Server {system.server.id} with {system.chips_per_server} x "
                   f"{system.accelerator.id}" + (f", one of the {servers} identical servers"
                                                 " of the system" if servers > 1 else ""))
    return _node(node, system_id, description, modules, [board_uri])


def cpu_node_tree(node: CpuNode, system_id: str) -> Tree:
    """The Redfish resource tree of a CPU node (no accelerators), keyed by URI.

    Raises
    ------
    SpecError
        ``system_id`` is not a valid id.
    """
    return link_up(_cpu_node(node, system_id))


def _cpu_node(node: CpuNode, system_id: str) -> Tree:
    _check_id(system_id)
    description = f"{node.sockets} x {node.cpu.id} ({node.form})"
    if node.entry_id is not None:
        description = f"Compute module {node.entry_id}: {description}"
    return _node(node, system_id, description, {}, [])


def service_tree(systems: Mapping[str, System | CpuNode]) -> Tree:
    """One Redfish service holding every system of ``systems`` (id -> system).

    Raises
    ------
    SpecError
        An id is not valid, or there is no system.
    """
    if not systems:
        raise SpecError.one("redfish", "systems", "a Redfish service needs a system")
    tree: Tree = {}
    shared = service_resources().keys()
    for system_id, member in systems.items():
        part = (_cpu_node(member, system_id) if isinstance(member, CpuNode)
                else _accelerator_node(member, system_id))
        for uri, body in part.items():
            # Only the service's own resources repeat from part to part: ids differ, and
            # '_' (which joins an id to its parts' names) cannot occur in one.
            assert uri not in tree or uri in shared, uri
            tree.setdefault(uri, body)
    return link_up(tree)
