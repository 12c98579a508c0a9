"""Parts every builder reuses: sensors, ports, PCIe devices, certificate slots, and the
environment metrics of a processor.

A part is a small :data:`~ocplan.redfish.odata.Tree` of its own; builders merge them.
What only a live management controller knows (readings, serial and part numbers, link
state, PCI IDs, certificates) is ``null`` here, never a made-up value.
"""

from __future__ import annotations

from dataclasses import dataclass

from ocplan.redfish.odata import (
    Resource,
    Tree,
    collection,
    link,
    pcie_type,
    resource,
    unknown_status,
)

__all__ = [
    "PortSpec",
    "SensorSet",
    "certificate_slot",
    "environment_metrics",
    "pcie_device",
    "ports",
    "sensor_set",
]

#: Redfish ``ReadingUnits`` of each reading type (UCUM codes, as the Sensor schema asks).
_UNITS = {"Power": "W", "Temperature": "Cel", "EnergyJoules": "J"}


@dataclass(frozen=True)
class SensorSet:
    """URIs of the power, temperature and energy sensors of one part."""

    power: str
    temperature: str
    energy: str


def sensor_set(chassis_uri: str, prefix: str, device: str, context: str,
               related: str | None = None) -> tuple[SensorSet, Tree]:
    """Power (W), temperature (Cel) and energy (J) sensors of ``device`` under
    ``chassis_uri``/Sensors, ids ``{prefix}_Power`` and so on; readings ``null``.

    ``context`` is the Redfish PhysicalContext (``"GPU"``, ``"CPU"``, ``"Chassis"``...);
    ``related`` the URI of the part the sensor measures.
    """
    base = f"{chassis_uri}/Sensors/{prefix}"
    found = SensorSet(f"{base}_Power", f"{base}_Temperature", f"{base}_Energy")
    tree: Tree = {}
    for uri, kind in ((found.power, "Power"), (found.temperature, "Temperature"),
                      (found.energy, "EnergyJoules")):
        sensor = resource(uri, "Sensor", f"{device} {kind}", ReadingType=kind,
                          ReadingUnits=_UNITS[kind], Reading=None, PhysicalContext=context,
                          Status=unknown_status())
        if related is not None:
            sensor["RelatedItem"] = [link(related)]
        tree[uri] = sensor
    return found, tree


def environment_metrics(owner_uri: str, name: str, sensors: SensorSet,
                        power_limit_W: float | None = None,
                        allowable_max_W: float | None = None) -> Tree:
    """``{owner_uri}/EnvironmentMetrics``: excerpts of ``sensors`` (readings ``null``)
    and, when given, the power limit the design runs the part at (``SetPoint``) and the
    part's rated maximum (``AllowableMax``), in W."""
    uri = f"{owner_uri}/EnvironmentMetrics"
    metrics = resource(uri, "EnvironmentMetrics", f"{name} environment metrics",
                       TemperatureCelsius={"DataSourceUri": sensors.temperature,
                                           "Reading": None},
                       PowerWatts={"DataSourceUri": sensors.power, "Reading": None},
                       EnergyJoules={"DataSourceUri": sensors.energy, "Reading": None})
    if power_limit_W is not None or allowable_max_W is not None:
        # ControlMode (automatic, manual...) is firmware state, not a design value.
        metrics["PowerLimitWatts"] = {"SetPoint": power_limit_W,
                                      "AllowableMax": allowable_max_W,
                                      "ControlMode": None}
    return {uri: metrics}


@dataclass(frozen=True)
class PortSpec:
    """One port as the catalog describes it.

    ``protocol`` is a Redfish Protocol name (``"NVLink"``, ``"Ethernet"``, ``"OEM"``...);
    ``max_speed_Gbps`` the per-direction line rate in Gbit/s; ``width`` the lanes.
    """

    port_id: str
    name: str
    protocol: str
    max_speed_Gbps: float
    width: int | None = None
    technology: str | None = None


def ports(owner_uri: str, owner_name: str, specs: list[PortSpec]) -> Tree:
    """``{owner_uri}/Ports`` with one Port (and its PortMetrics) per spec.

    The current speed, the active width and the traffic counters are what a live link
    reports: ``null``, or left out where the schema allows no ``null``.
    """
    base = f"{owner_uri}/Ports"
    tree: Tree = {base: collection(base, "Port", f"{owner_name} ports")}
    for spec in specs:
        uri = f"{base}/{spec.port_id}"
        port = resource(uri, "Port", spec.name, PortProtocol=spec.protocol,
                        PortType="BidirectionalPort", MaxSpeedGbps=spec.max_speed_Gbps,
                        CurrentSpeedGbps=None, Metrics=link(f"{uri}/Metrics"),
                        Status=unknown_status())
        if spec.width is not None:
            port["Width"] = spec.width
        if spec.technology is not None:
            port["LinkNetworkTechnology"] = spec.technology
        tree[uri] = port
        tree[f"{uri}/Metrics"] = resource(f"{uri}/Metrics", "PortMetrics",
                                          f"{spec.name} metrics", RXBytes=None, TXBytes=None)
    return tree


def pcie_device(chassis_uri: str, device_id: str, name: str, manufacturer: str, model: str,
                gen: int | None, lanes: int, device_class: str | None = None) -> Tree:
    """``{chassis_uri}/PCIeDevices/{device_id}`` with its one function.

    The link's designed generation and width are ``MaxPCIeType`` and ``MaxLanes``; the
    negotiated ones (``PCIeType``, ``LanesInUse``) and the PCI IDs are ``null``.
    ``DeviceType`` (required, not nullable) is ``SingleFunction``: the view models one
    function per device. ``device_class`` is the PCI class when the kind of device
    fixes it (a NIC is a network controller); otherwise it is left out.
    """
    uri = f"{chassis_uri}/PCIeDevices/{device_id}"
    function_uri = f"{uri}/PCIeFunctions/0"
    device: Resource = resource(
        uri, "PCIeDevice", name, Manufacturer=manufacturer, Model=model,
        DeviceType="SingleFunction", SerialNumber=None, PartNumber=None, UUID=None,
        PCIeInterface={"MaxPCIeType": pcie_type(gen), "MaxLanes": lanes, "PCIeType": None,
                       "LanesInUse": None},
        PCIeFunctions=link(f"{uri}/PCIeFunctions"), Status=unknown_status())
    function = resource(function_uri, "PCIeFunction", f"{name} function 0", FunctionId=0,
                        FunctionType="Physical", DeviceId=None, VendorId=None,
                        SubsystemId=None, SubsystemVendorId=None, Status=unknown_status(),
                        Links={"PCIeDevice": link(uri)})
    if device_class is not None:
        function["DeviceClass"] = device_class
    return {uri: device,
            f"{uri}/PCIeFunctions": collection(f"{uri}/PCIeFunctions", "PCIeFunction",
                                               f"{name} functions"),
            function_uri: function}


def certificate_slot(owner_uri: str, owner_name: str) -> Tree:
    """``{owner_uri}/Certificates/DeviceIdentity``: the slot of the part's device
    identity certificate, in State ``Absent``.

    The certificate is burnt into the real part; a design has none to show. The Redfish
    ``Absent`` state says exactly that (no certificate present here); the certificate's
    string and type are ``null``, its usage is the slot's purpose (``Device``).
    """
    base = f"{owner_uri}/Certificates"
    uri = f"{base}/DeviceIdentity"
    slot = resource(uri, "Certificate", f"{owner_name} device identity certificate",
                    CertificateString=None, CertificateType=None,
                    CertificateUsageTypes=["Device"],
                    Status={"State": "Absent", "Health": None})
    return {base: collection(base, "Certificate", f"{owner_name} certificates"), uri: slot}
