"""OData/Redfish building blocks: schema versions, resources, links, collections, units.

Every resource of a tree is a plain ``dict`` keyed by its Redfish property names, with
``@odata.id`` (its URI, without trailing slash), ``@odata.type`` (``#Namespace.vX_Y_Z.Type``
of a schema version published by DMTF), ``Id`` and ``Name``. A tree maps each URI to
its resource (:data:`Tree`). Collections are built with no members:
:func:`ocplan.redfish.service.link_up` lists as members every resource one path segment
below the collection, so a builder never keeps two lists in step.

Units. Redfish states quantities in its own units: W, Gbit/s, MiB, MHz. ocplan holds SI
floats (W, B/s, bytes, Hz); the conversions happen here and only here.
"""

from __future__ import annotations

from typing import Any

from ocplan.units import BINARY_PREFIXES, BITS_PER_BYTE, DECIMAL_PREFIXES

__all__ = [
    "MANAGER",
    "ROOT",
    "SCHEMAS",
    "Resource",
    "Tree",
    "collection",
    "dram_bytes",
    "gbit_per_s",
    "gibibytes",
    "link",
    "links",
    "mebibytes",
    "megahertz",
    "pcie_type",
    "resource",
    "unknown_status",
]

Resource = dict[str, Any]
Tree = dict[str, Resource]

#: The service root.
ROOT = "/redfish/v1"
#: The one manager: this ocplan service, which serves every system of the tree.
MANAGER = f"{ROOT}/Managers/ocplan"

#: Schema version of each resource type, the newest in DSP8010 2025.4 (DMTF Redfish
#: schema bundle, github.com/DMTF/Redfish-Publications, tag 2025.4, json-schema/). The
#: interop profile asks for at least 1.0.0 (UpdateService: 1.6.0).
SCHEMAS: dict[str, str] = {
    "Assembly": "v1_6_1",
    "Certificate": "v1_11_0",
    "Chassis": "v1_28_0",
    "ComputerSystem": "v1_27_0",
    "EnvironmentMetrics": "v1_5_0",
    "LogEntry": "v1_21_0",
    "LogService": "v1_9_0",
    "Manager": "v1_24_0",
    "Memory": "v1_23_0",
    "MemoryMetrics": "v1_8_0",
    "MetricReport": "v1_5_2",
    "MetricReportDefinition": "v1_4_7",
    "NetworkAdapter": "v1_14_0",
    "PCIeDevice": "v1_21_0",
    "PCIeFunction": "v1_7_0",
    "Port": "v1_18_0",
    "PortMetrics": "v1_8_1",
    "PowerSubsystem": "v1_1_3",
    "PowerSupply": "v1_6_0",
    "Processor": "v1_22_0",
    "Sensor": "v1_12_0",
    "ServiceRoot": "v1_20_0",
    "SessionService": "v1_2_0",
    "SoftwareInventory": "v1_13_0",
    "TelemetryService": "v1_4_1",
    "ThermalMetrics": "v1_3_2",
    "ThermalSubsystem": "v1_5_0",
    "UpdateService": "v1_17_0",
}

#: PCIe generations the Redfish ``PCIeTypes`` enumeration names (PCIeDevice schema).
_PCIE_TYPES = frozenset({1, 2, 3, 4, 5, 6})


def resource(uri: str, schema: str, name: str, **props: Any) -> Resource:
    """A resource of type ``schema`` (a key of :data:`SCHEMAS`) at ``uri``; its ``Id``
    is the last path segment."""
    assert uri.startswith(ROOT), uri
    assert not uri.endswith("/"), uri
    return {"@odata.id": uri, "@odata.type": f"#{schema}.{SCHEMAS[schema]}.{schema}",
            "Id": uri.rsplit("/", 1)[1], "Name": name, **props}


def collection(uri: str, member_schema: str, name: str, **props: Any) -> Resource:
    """An empty collection of ``member_schema`` resources; members are filled in by
    :func:`ocplan.redfish.service.link_up`."""
    assert uri.startswith(ROOT), uri
    assert not uri.endswith("/"), uri
    kind = f"{member_schema}Collection"
    return {"@odata.id": uri, "@odata.type": f"#{kind}.{kind}", "Name": name, **props,
            "Members": [], "Members@odata.count": 0}


def link(uri: str) -> dict[str, str]:
    """A reference to the resource at ``uri``."""
    return {"@odata.id": uri}


def links(uris: list[str]) -> list[dict[str, str]]:
    """References to each of ``uris``, in order."""
    return [link(u) for u in uris]


def unknown_status() -> dict[str, None]:
    """``Status`` of hardware that is designed, not running: State and Health ``null``.

    Both are nullable in DMTF's Resource schema (``Resource.json#/definitions/Status``);
    only a management controller watching the part knows them.
    """
    return {"State": None, "Health": None}


#: Bytes in one "GB" of memory capacity as DRAM is labelled: JEDEC JESD100B.01 ("Terms,
#: Definitions, and Letter Symbols for Microcomputers, Microprocessors, and Memory
#: Integrated Circuits") defines giga, as a prefix to units of semiconductor storage
#: capacity, as 2**30, so a "64 GB" RDIMM holds 64 GiB.
JEDEC_GIGA_BYTES = BINARY_PREFIXES["Gi"]


def dram_bytes(capacity_bytes: float) -> float:
    """The bytes a DRAM device (DIMM, soldered memory) holds, from its catalog capacity.

    Catalog and module files write memory as it is sold ("64 GB"), which the loader reads
    with the SI prefix (64e9 B, :mod:`ocplan.units`); the device holds the JEDEC value
    (64 x 2**30 B, :data:`JEDEC_GIGA_BYTES`), 7.4 % more. A capacity that is already a
    whole number of MiB was written in binary units ("64 GiB", "65536 MiB") and is kept:
    no sold size in decimal gigabytes is one (that needs a multiple of 2048 GB).

    >>> dram_bytes(64e9) == 64 * 2**30
    True
    >>> dram_bytes(64 * 2**30) == 64 * 2**30
    True
    """
    if capacity_bytes % BINARY_PREFIXES["Mi"] == 0:
        return capacity_bytes
    return capacity_bytes / DECIMAL_PREFIXES["G"] * JEDEC_GIGA_BYTES


def mebibytes(size_bytes: float) -> int:
    """Bytes as whole MiB (Redfish ``CapacityMiB``, ``TotalMemorySizeMiB``)."""
    return round(size_bytes / BINARY_PREFIXES["Mi"])


def gibibytes(size_bytes: float) -> float:
    """Bytes in GiB (Redfish ``TotalSystemMemoryGiB``, a decimal number)."""
    return size_bytes / BINARY_PREFIXES["Gi"]


def megahertz(frequency_Hz: float) -> int:
    """Hz as whole MHz (Redfish ``MaxSpeedMHz``)."""
    return round(frequency_Hz / DECIMAL_PREFIXES["M"])


def gbit_per_s(rate_Bps: float) -> float:
    """Bytes per second as Gbit/s (Redfish ``MaxSpeedGbps``), decimal prefixes."""
    return rate_Bps * BITS_PER_BYTE / DECIMAL_PREFIXES["G"]


def pcie_type(gen: int | None) -> str | None:
    """``"Gen5"`` for PCIe generation 5; ``None`` when the generation is unknown or has
    no Redfish name yet."""
    return f"Gen{gen}" if gen in _PCIE_TYPES else None
