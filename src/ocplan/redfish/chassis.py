"""Chassis: the server (or CPU node) with its power and thermal subsystems, and the
accelerator baseboard it contains.

Power subsystem: one PowerSupply per supply of the catalog entry, each with its rated
output (``PowerCapacityWatts``); ``CapacityWatts`` is what the supplies deliver with the
redundancy held in reserve (N+N: half of them); the redundancy group says how many are
needed; a node without supplies (a compute module, powered by its host) states what its
power input delivers (the module's power budget), when it is known. The chassis'
``MaxPowerWatts`` and the subsystem's ``RequestedWatts`` are the node's nameplate power,
when every part of it has a known power (else ``null``).
Thermal subsystem: the excerpts of the chassis' temperature sensors, readings ``null``.
"""

from __future__ import annotations

from ocplan.catalog.schema import PowerSupplies
from ocplan.catalog.system import System
from ocplan.redfish.host import CpuNode
from ocplan.redfish.odata import (
    MANAGER,
    ROOT,
    Resource,
    Tree,
    collection,
    link,
    links,
    resource,
    unknown_status,
)
from ocplan.redfish.parts import environment_metrics, sensor_set
from ocplan.topology.power import psu_capacity_W

__all__ = ["baseboard_chassis", "server_chassis"]


def _power_subsystem(uri: str, supplies: PowerSupplies | None, requested_W: float | None,
                     input_W: float | None = None) -> Tree:
    """``{uri}/PowerSubsystem`` with its supplies and their redundancy group; with no
    supplies its capacity is ``input_W``, what the node's power input delivers."""
    base = f"{uri}/PowerSubsystem"
    tree: Tree = {}
    capacity_W: float | None = input_W
    redundancy: list[Resource] = []
    if supplies is not None:
        capacity_W = psu_capacity_W(supplies.count, supplies.rating, supplies.redundancy)
        psus = [f"{base}/PowerSupplies/PSU{i}" for i in range(supplies.count)]
        tree[f"{base}/PowerSupplies"] = collection(f"{base}/PowerSupplies", "PowerSupply",
                                                   "Power supplies")
        for i, psu in enumerate(psus):
            tree[psu] = resource(psu, "PowerSupply", f"Power supply {i}",
                                 PowerCapacityWatts=supplies.rating, SerialNumber=None,
                                 PartNumber=None, Status=unknown_status(),
                                 Location={"PartLocation": {"ServiceLabel": f"PSU {i}",
                                                            "LocationType": "Bay",
                                                            "LocationOrdinalValue": i}})
        redundancy = [{
            "RedundancyType": "NotRedundant" if supplies.redundancy == "N" else "NPlusM",
            "MaxSupportedInGroup": supplies.count,
            "MinNeededInGroup": round(capacity_W / supplies.rating),
            "RedundancyGroup": links(psus), "RedundancyGroup@odata.count": len(psus),
            "Status": unknown_status()}]
    subsystem = resource(base, "PowerSubsystem", "Power subsystem", CapacityWatts=capacity_W,
                         Allocation={"RequestedWatts": requested_W},
                         Status=unknown_status())
    if supplies is not None:
        subsystem["PowerSupplies"] = link(f"{base}/PowerSupplies")
        subsystem["PowerSupplyRedundancy"] = redundancy
    tree[base] = subsystem
    return tree


def _thermal_subsystem(uri: str, temperature_sensors: list[tuple[str, str]]) -> Tree:
    """``{uri}/ThermalSubsystem`` and its ThermalMetrics: one excerpt per (sensor URI,
    device name) in ``temperature_sensors``."""
    base = f"{uri}/ThermalSubsystem"
    readings = [{"DataSourceUri": sensor, "DeviceName": device, "Reading": None}
                for sensor, device in temperature_sensors]
    return {
        base: resource(base, "ThermalSubsystem", "Thermal subsystem",
                       ThermalMetrics=link(f"{base}/ThermalMetrics"), Status=unknown_status()),
        f"{base}/ThermalMetrics": resource(
            f"{base}/ThermalMetrics", "ThermalMetrics", "Thermal metrics",
            TemperatureReadingsCelsius=readings,
            **{"TemperatureReadingsCelsius@odata.count": len(readings)}),
    }


def _assembly(uri: str, parts: list[dict[str, object]]) -> Tree:
    """``{uri}/Assembly`` listing ``parts`` (Name, Model, Vendor, PhysicalContext)."""
    assembly = f"{uri}/Assembly"
    entries = [{"@odata.id": f"{assembly}#/Assemblies/{i}", "MemberId": str(i), **part,
                "PartNumber": None, "SerialNumber": None, "Status": unknown_status()}
               for i, part in enumerate(parts)]
    return {assembly: resource(assembly, "Assembly", "Assemblies", Assemblies=entries,
                               **{"Assemblies@odata.count": len(entries)})}


def _common(uri: str, tree: Tree) -> Resource:
    """Links to the sub-collections of chassis ``uri`` that ``tree`` holds."""
    found: Resource = {}
    for name, schema in (("Sensors", "Sensor"), ("PCIeDevices", "PCIeDevice"),
                         ("NetworkAdapters", "NetworkAdapter")):
        sub = f"{uri}/{name}"
        if any(key.startswith(f"{sub}/") for key in tree):
            if sub not in tree:
                tree[sub] = collection(sub, schema, name)
            found[name] = link(sub)
    return found


def server_chassis(node: CpuNode, chassis_id: str, system_uri: str, parts: Tree,
                   contains: list[str]) -> Tree:
    """Chassis ``chassis_id`` of ``node``: power, thermal, environment, sensors and
    assembly; ``parts`` are the resources already built under it (CPU sensors, NICs),
    ``contains`` the URIs of the chassis inside it."""
    uri = f"{ROOT}/Chassis/{chassis_id}"
    sensors, tree = sensor_set(uri, "Chassis", node.name, "Chassis")
    tree |= environment_metrics(uri, node.name, sensors)
    tree |= _power_subsystem(uri, node.power_supplies, node.max_power_W,
                             node.power_capacity_W)
    own_parts = dict(parts) | tree
    temperatures = [(key, value["Name"]) for key, value in own_parts.items()
                    if key.startswith(f"{uri}/Sensors/")
                    and value.get("ReadingType") == "Temperature"]
    tree |= _thermal_subsystem(uri, temperatures)
    tree |= _assembly(uri, [{"Name": node.name, "Model": node.model,
                             "Vendor": node.manufacturer, "PhysicalContext": "Chassis"}])
    cpus = [f"{system_uri}/Processors/CPU{s}" for s in range(node.sockets)]
    chassis = resource(
        uri, "Chassis", node.name,
        ChassisType="Module" if node.form == "ocm" else "RackMount",
        Manufacturer=node.manufacturer, Model=node.model, SKU=None, PartNumber=None,
        SerialNumber=None, UUID=None, MaxPowerWatts=node.max_power_W, MinPowerWatts=None,
        PowerSubsystem=link(f"{uri}/PowerSubsystem"),
        ThermalSubsystem=link(f"{uri}/ThermalSubsystem"),
        EnvironmentMetrics=link(f"{uri}/EnvironmentMetrics"), Assembly=link(f"{uri}/Assembly"),
        Links={"ComputerSystems": [link(system_uri)], "Contains": links(contains),
               "ManagedBy": [link(MANAGER)], "Processors": links(cpus)},
        Status=unknown_status())
    merged = own_parts | tree
    chassis |= _common(uri, merged)
    merged[uri] = chassis
    return {key: value for key, value in merged.items() if key not in parts}


def baseboard_chassis(system: System, chassis_id: str, system_uri: str, server_uri: str,
                      parts: Tree) -> Tree:
    """Chassis ``chassis_id``: the accelerator baseboard of one server of ``system``,
    contained by ``server_uri``; ``parts`` are the resources built under it (the
    modules' PCIe devices and sensors)."""
    board = system.baseboard
    uri = f"{ROOT}/Chassis/{chassis_id}"
    modules = [key for key, value in parts.items()
               if key.startswith(f"{system_uri}/Processors/")
               and value.get("@odata.type", "").startswith("#Processor.")]
    tree = _assembly(uri, [{"Name": board.name, "Model": board.name, "Vendor": None,
                            "PhysicalContext": "Board"}]
                     + [{"Name": parts[m]["Name"], "Model": system.accelerator.name,
                         "Vendor": system.accelerator.vendor,
                         "PhysicalContext": "GPU" if parts[m]["ProcessorType"] == "GPU"
                         else "Accelerator"} for m in modules])
    # The catalog names the board's standard and version, not who made it.
    chassis = resource(
        uri, "Chassis", board.name, ChassisType="Module", Manufacturer=None,
        Model=board.name, SerialNumber=None, PartNumber=None,
        Assembly=link(f"{uri}/Assembly"),
        Links={"ComputerSystems": [link(system_uri)], "ContainedBy": link(server_uri),
               "ManagedBy": [link(MANAGER)], "Processors": links(modules)},
        Status=unknown_status())
    merged = dict(parts) | tree
    chassis |= _common(uri, merged)
    merged[uri] = chassis
    return {key: value for key, value in merged.items() if key not in parts}
