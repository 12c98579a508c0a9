"""The accelerator modules of a server as Redfish Processors, with their HBM as Memory,
their scale-up and integrated scale-out ports, their PCIe host links, power limits and
sensors; the baseboard (UBB, HGX...) that holds them as a Chassis.

Each module ``OAM0``, ``OAM1``... (``SXM0``..., by form factor) is a Processor of the
system, located in baseboard slot ``i`` (Location.PartLocation, as the OCP UBB profile
requires). Its HBM is one Memory resource; its power limit is the module power the
system runs it at (the air rating in an air-cooled system, else TDP) with the module's
TDP as the allowable maximum.
"""

from __future__ import annotations

from ocplan.catalog.schema import Accelerator
from ocplan.catalog.system import System
from ocplan.redfish.host import NIC_PROTOCOLS
from ocplan.redfish.odata import (
    Resource,
    Tree,
    gbit_per_s,
    link,
    mebibytes,
    megahertz,
    pcie_type,
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

__all__ = ["accelerator_resources", "hbm_device_type", "processor_type", "slot_prefix"]

#: Processor id prefix of a module's form factor.
_SLOT_PREFIX = {"oam": "OAM", "sxm": "SXM", "pcie": "PCIe", "tpu": "TPU",
                "npu-module": "NPU", "superchip": "GPU"}
#: Matrix units that belong to GPU shader arrays (NVIDIA SMs, AMD CUs): a chip built of
#: them is a Redfish ``GPU``; any other chip (or one whose units the catalog does not
#: name) is an ``Accelerator``, which is true of every module.
_GPU_UNITS = frozenset({"sm", "cu"})
#: Redfish Protocol of a scale-up fabric; the proprietary ones (xGMI, ICI, HCCS,
#: MLU-Link) are ``OEM``.
_SCALE_UP_PROTOCOLS = {"nvlink3": "NVLink", "nvlink4": "NVLink", "nvlink5": "NVLink",
                       "roce": "Ethernet", "ethernet": "Ethernet", "ualink": "UALink"}
#: Redfish MemoryDeviceType of a catalog ``hbm_type``. The Memory schema (2025.4) has no
#: HBM3E: HBM3E parts are the faster speed bins of JEDEC HBM3, so they map to HBM3.
_HBM_TYPES = {"HBM": "HBM", "HBM2": "HBM2", "HBM2E": "HBM2E", "HBM3": "HBM3",
              "HBM3E": "HBM3"}


def slot_prefix(accelerator: Accelerator) -> str:
    """``"OAM"`` for an OAM module: the prefix of its processor ids."""
    return _SLOT_PREFIX[accelerator.form_factor]


def processor_type(accelerator: Accelerator) -> str:
    """Redfish ProcessorType: ``GPU`` for chips of SMs or CUs, else ``Accelerator``."""
    units = accelerator.compute.unit_name if accelerator.compute else None
    return "GPU" if units in _GPU_UNITS else "Accelerator"


def hbm_device_type(hbm_type: str) -> str | None:
    """Redfish MemoryDeviceType of an ``hbm_type`` (``None`` if it has no name there)."""
    return _HBM_TYPES.get(hbm_type.strip().upper())


def _port_specs(accelerator: Accelerator, prefix: str) -> list[PortSpec]:
    """Scale-up ports, then integrated scale-out ports, with their line rates."""
    specs: list[PortSpec] = []
    up = accelerator.scale_up
    if up is not None:
        protocol = _SCALE_UP_PROTOCOLS.get(up.fabric.lower(), "OEM")
        specs += [PortSpec(f"ScaleUp{k}", f"{prefix} {up.fabric} port {k}", protocol,
                           gbit_per_s(up.port_bandwidth), up.lanes_per_port)
                  for k in range(up.ports)]
    nic = accelerator.integrated_nic
    if nic is not None:
        protocol = NIC_PROTOCOLS[nic.protocol]
        specs += [PortSpec(f"ScaleOut{k}", f"{prefix} {nic.protocol} port {k}", protocol,
                           gbit_per_s(nic.port_bandwidth), technology=protocol)
                  for k in range(nic.ports)]
    return specs


def accelerator_resources(system: System, system_uri: str, board_uri: str) -> Tree:
    """The modules of one server of ``system``: Processors and HBM Memory under
    ``system_uri``; PCIe devices and sensors under the baseboard chassis ``board_uri``."""
    accel = system.accelerator
    prefix = slot_prefix(accel)
    hbm_type = hbm_device_type(accel.memory.hbm_type)
    hbm_MiB = mebibytes(accel.memory.hbm_capacity)
    kind = processor_type(accel)
    context = "GPU" if kind == "GPU" else "Accelerator"
    tree: Tree = {}
    for slot in range(system.chips_per_server):
        pid = f"{prefix}{slot}"
        label = f"{prefix} {slot}"
        uri = f"{system_uri}/Processors/{pid}"
        hbm = f"{system_uri}/Memory/{pid}_HBM"
        tree[hbm] = resource(
            hbm, "Memory", f"{label} HBM", MemoryType="DRAM", MemoryMedia=["DRAM"],
            MemoryDeviceType=hbm_type, CapacityMiB=hbm_MiB,
            # the catalog states bandwidth, not the pin rate: no speed to list
            AllowedSpeedsMHz=[], ErrorCorrection=None, SerialNumber=None,
            Metrics=link(f"{hbm}/MemoryMetrics"), Links={"Processors": [link(uri)]},
            Status=unknown_status())
        tree[f"{hbm}/MemoryMetrics"] = resource(f"{hbm}/MemoryMetrics", "MemoryMetrics",
                                                f"{label} HBM metrics",
                                                BandwidthPercent=None)
        sensors, sensor_tree = sensor_set(board_uri, pid, label, context, related=uri)
        tree |= sensor_tree
        tree |= environment_metrics(uri, label, sensors, system.module_power,
                                    accel.power.tdp)
        specs = _port_specs(accel, label)
        tree |= ports(uri, label, specs)
        tree |= certificate_slot(uri, label)
        body: Resource = resource(
            uri, "Processor", f"{label}: {accel.name}", ProcessorType=kind,
            Manufacturer=accel.vendor, Model=accel.name, SerialNumber=None,
            PartNumber=None,
            Location={"PartLocation": {"ServiceLabel": label, "LocationType": "Slot",
                                       "LocationOrdinalValue": slot}},
            ProcessorMemory=[{"MemoryType": hbm_type, "CapacityMiB": hbm_MiB,
                              "IntegratedMemory": True}],
            MemorySummary={"TotalMemorySizeMiB": hbm_MiB,
                           "Metrics": link(f"{hbm}/MemoryMetrics")},
            EnvironmentMetrics=link(f"{uri}/EnvironmentMetrics"),
            Ports=link(f"{uri}/Ports"), Certificates=link(f"{uri}/Certificates"),
            Links={"Chassis": link(board_uri), "Memory": [link(hbm)]},
            Status=unknown_status())
        if accel.compute is not None:
            body["MaxSpeedMHz"] = megahertz(accel.compute.clock)
        host = accel.host
        if host.kind in ("pcie", "cxl"):
            # no PCI class: accelerators report 3D controller or processing accelerator,
            # and the catalog does not record which
            tree |= pcie_device(board_uri, pid, f"{label}: {accel.name}", accel.vendor,
                                accel.name, host.gen, host.lanes)
            body["Links"]["PCIeDevice"] = link(f"{board_uri}/PCIeDevices/{pid}")
            body["SystemInterface"] = {
                "InterfaceType": "PCIe" if host.kind == "pcie" else "CXL",
                "PCIe": {"MaxPCIeType": pcie_type(host.gen), "MaxLanes": host.lanes,
                         "PCIeType": None}}
        tree[uri] = body
    return tree
