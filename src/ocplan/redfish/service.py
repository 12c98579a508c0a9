"""The service around the systems: service root, manager, update, telemetry and session
services, and :func:`link_up`, which fills every collection and the manager's links.

The manager is this ocplan service itself (ManagerType ``Service``: "a software-based
service that provides management functions", Manager schema), not the BMC a real server
would have: it serves a design and changes nothing. So the update, telemetry and
session services are present but disabled (``ServiceEnabled`` false): nothing can be
pushed, collected or logged in to. The one software item is ocplan at its version.

``UpdateService.MultipartHttpPushUri`` is mandatory in the OCP UBB profile and its schema
allows no ``null``: it names a URI where, as everywhere in this service, a POST is
answered 405 Method Not Allowed.
"""

from __future__ import annotations

import uuid
from typing import Any

from ocplan.redfish.odata import MANAGER, ROOT, Tree, collection, link, links, resource
from ocplan.version import __version__

__all__ = ["REDFISH_VERSION", "SERVICE_UUID", "link_up", "metadata_xml", "service_document",
           "service_resources"]

#: The Redfish Specification version the service follows: DSP0266 1.21.0 (2024-08-01).
REDFISH_VERSION = "1.21.0"
#: The service's UUID: a name-based (version 5) UUID of "ocplan Redfish view", fixed, so
#: clients see one identity across restarts.
SERVICE_UUID = str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:ocplan:redfish-view"))
#: Where a firmware push would go if the (disabled) update service took one.
PUSH_URI = f"{ROOT}/UpdateService/update-multipart"
_DISABLED = {"State": "Disabled", "Health": None}


def service_resources() -> Tree:
    """The resources of the service that do not depend on the systems served."""
    update = f"{ROOT}/UpdateService"
    telemetry = f"{ROOT}/TelemetryService"
    sessions = f"{ROOT}/SessionService"
    ocplan_sw = f"{update}/SoftwareInventory/ocplan"
    return {
        ROOT: resource(ROOT, "ServiceRoot", "ocplan Redfish view", Id="RootService",
                       RedfishVersion=REDFISH_VERSION, UUID=SERVICE_UUID, Product="ocplan",
                       Systems=link(f"{ROOT}/Systems"), Chassis=link(f"{ROOT}/Chassis"),
                       Managers=link(f"{ROOT}/Managers"), UpdateService=link(update),
                       TelemetryService=link(telemetry), SessionService=link(sessions),
                       Links={"Sessions": link(f"{sessions}/Sessions")}),
        f"{ROOT}/Systems": collection(f"{ROOT}/Systems", "ComputerSystem", "Systems"),
        f"{ROOT}/Chassis": collection(f"{ROOT}/Chassis", "Chassis", "Chassis"),
        f"{ROOT}/Managers": collection(f"{ROOT}/Managers", "Manager", "Managers"),
        MANAGER: resource(
            MANAGER, "Manager", "ocplan", ManagerType="Service",
            Description="The ocplan service that serves these designed systems read-only",
            FirmwareVersion=__version__, ServiceEntryPointUUID=SERVICE_UUID,
            Status={"State": "Enabled", "Health": "OK"},
            Links={"ManagerForServers": [], "ManagerForChassis": []}),
        update: resource(update, "UpdateService", "Update service", ServiceEnabled=False,
                         FirmwareInventory=link(f"{update}/FirmwareInventory"),
                         SoftwareInventory=link(f"{update}/SoftwareInventory"),
                         MultipartHttpPushUri=PUSH_URI, Status=_DISABLED),
        f"{update}/FirmwareInventory": collection(f"{update}/FirmwareInventory",
                                                  "SoftwareInventory", "Firmware inventory"),
        f"{update}/SoftwareInventory": collection(f"{update}/SoftwareInventory",
                                                  "SoftwareInventory", "Software inventory"),
        ocplan_sw: resource(ocplan_sw, "SoftwareInventory", "ocplan", Version=__version__,
                            Updateable=False, WriteProtected=True,
                            Status={"State": "Enabled", "Health": "OK"}),
        telemetry: resource(telemetry, "TelemetryService", "Telemetry service",
                            ServiceEnabled=False, MaxReports=None, MinCollectionInterval=None,
                            MetricReportDefinitions=link(f"{telemetry}/MetricReportDefinitions"),
                            MetricReports=link(f"{telemetry}/MetricReports"),
                            Status=_DISABLED),
        f"{telemetry}/MetricReportDefinitions": collection(
            f"{telemetry}/MetricReportDefinitions", "MetricReportDefinition",
            "Metric report definitions"),
        f"{telemetry}/MetricReports": collection(f"{telemetry}/MetricReports", "MetricReport",
                                                 "Metric reports"),
        sessions: resource(sessions, "SessionService", "Session service", ServiceEnabled=False,
                           Sessions=link(f"{sessions}/Sessions"), Status=_DISABLED),
        f"{sessions}/Sessions": collection(f"{sessions}/Sessions", "Session", "Sessions"),
    }


def link_up(tree: Tree) -> Tree:
    """Fill, in place, every collection's ``Members`` with the resources one path
    segment below it, and the manager's links with every system and chassis; return
    ``tree``.

    Members keep the order in which the resources were added to ``tree``.
    """
    children: dict[str, list[str]] = {}
    for uri in tree:
        children.setdefault(uri.rsplit("/", 1)[0], []).append(uri)
    for uri, body in tree.items():
        if "Members" in body:
            members = children.get(uri, [])
            body["Members"] = links(members)
            body["Members@odata.count"] = len(members)
    manager_links = tree[MANAGER]["Links"]
    manager_links["ManagerForServers"] = links(children.get(f"{ROOT}/Systems", []))
    manager_links["ManagerForChassis"] = links(children.get(f"{ROOT}/Chassis", []))
    return tree


def service_document(tree: Tree) -> dict[str, Any]:
    """The OData service document (``/redfish/v1/odata``): the service root and the
    resources it links to."""
    entries = [{"name": "Service", "kind": "Singleton", "url": f"{ROOT}/"}]
    entries += [{"name": name, "kind": "Singleton", "url": value["@odata.id"]}
                for name, value in tree[ROOT].items()
                if isinstance(value, dict) and set(value) == {"@odata.id"}]
    return {"@odata.context": f"{ROOT}/$metadata", "value": entries}


def metadata_xml(tree: Tree) -> str:
    """The OData metadata document (``/redfish/v1/$metadata``, CSDL XML): a reference to
    the DMTF schema file of every namespace the tree's ``@odata.type`` values use."""
    namespaces: dict[str, set[str]] = {}
    for body in tree.values():
        qualified = body["@odata.type"].lstrip("#").rsplit(".", 1)[0]
        namespaces.setdefault(qualified.split(".")[0], set()).add(qualified)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">']
    for namespace in sorted(namespaces):
        lines.append(f'  <edmx:Reference Uri="http://redfish.dmtf.org/schemas/v1/'
                     f'{namespace}_v1.xml">')
        lines += [f'    <edmx:Include Namespace="{included}"/>'
                  for included in sorted(namespaces[namespace] | {namespace})]
        lines.append("  </edmx:Reference>")
    root_type = tree[ROOT]["@odata.type"].lstrip("#").rsplit(".", 1)[0]
    lines += ["  <edmx:DataServices>",
              '    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="Service">',
              f'      <EntityContainer Name="Service" Extends="{root_type}.ServiceContainer"/>',
              "    </Schema>", "  </edmx:DataServices>", "</edmx:Edmx>", ""]
    return "\n".join(lines)
