"""``/redfish``: the Redfish view of composed systems, served read-only.

:func:`redfish_router` serves the tree of :func:`ocplan.redfish.service_tree` for the
systems it is given: accelerator systems, and CPU nodes such as compute modules
(:func:`ocplan.redfish.module_node`; :func:`ocplan.redfish.read_managed` reads either
from a file). With none, it serves the catalog's OAM modules, each filling its
default server (or the generic OAM host, :data:`ocplan.catalog.system.GENERIC_SERVERS`):
the UBB servers the OCP profile is about, known without any file. The tree is built at
the first request and kept.

Protocol (DMTF DSP0266): ``GET``/``HEAD`` of a resource answer its JSON with
``OData-Version: 4.0`` and ``Allow: GET, HEAD``; a URI with or without its trailing slash
is the same resource; ``/redfish`` answers ``{"v1": "/redfish/v1/"}`` and
``/redfish/v1/odata`` and ``/redfish/v1/$metadata`` the OData service and metadata
documents. ``POST``, ``PUT``, ``PATCH`` and ``DELETE`` answer 405 and an unknown URI 404,
each with a Redfish error body (Base registry 1.22 messages ``OperationNotAllowed`` and
``ResourceMissingAtURI``). The workbench's guard applies as to every route (host check,
token, same-origin JSON for state-changing methods, so a cross-origin or non-JSON POST
gets its 403 or 415 first). With a token set, a Redfish client passes it as
``?token=`` or ``Authorization: Bearer``; HTTP Basic credentials are not accepted.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.schema import Accelerator
from ocplan.catalog.system import System, system_for_chip
from ocplan.redfish import ROOT, CpuNode, Tree, service_tree
from ocplan.redfish.service import metadata_xml, service_document

__all__ = ["REDFISH_HEADERS", "Managed", "default_systems", "redfish_router", "system_ids"]

#: What the service can show: an accelerator system or a CPU node (a compute module).
Managed = System | CpuNode

#: Headers on every Redfish answer.
REDFISH_HEADERS = {"OData-Version": "4.0", "Allow": "GET, HEAD"}
#: Base message registry version of the error bodies (DSP8011, Base.1.22.1).
_BASE = "Base.1.22"
_WRITES = ["POST", "PUT", "PATCH", "DELETE"]
_NOT_ID = re.compile(r"[^A-Za-z0-9.-]+")


def default_systems(catalog: Catalog) -> list[System]:
    """One server of every OAM module of ``catalog``, filled with it: the module's
    default server, else the generic OAM host."""
    found: list[System] = []
    for entry in catalog.all("accelerator"):
        assert isinstance(entry, Accelerator)
        if entry.form_factor != "oam":
            continue
        probe = system_for_chip(catalog, entry.id, 1)
        slots = probe.server.accelerators or probe.baseboard.slots
        found.append(system_for_chip(catalog, entry.id, slots))
    return found


def _fallback_id(system: Managed) -> str:
    """The id of a system not read from a file."""
    if isinstance(system, CpuNode):
        return system.entry_id or system.name
    return f"{system.accelerator.id}-{system.server.id}"


def system_ids(systems: Sequence[Managed]) -> dict[str, Managed]:
    """A Redfish id for each system: its file's name without extension when it was read
    from one, else ``{accelerator}-{server}`` (a CPU node: its catalog id, else its
    name); characters an id cannot hold become ``-``, and a repeated id gets ``-2``,
    ``-3``..."""
    named: dict[str, Managed] = {}
    for system in systems:
        source = Path(system.source)
        base = (source.stem if source.suffix in (".yaml", ".yml", ".json")
                else _fallback_id(system))
        base = _NOT_ID.sub("-", base).strip("-.")[:60] or "system"
        candidate, n = base, 1
        while candidate in named:
            n += 1
            candidate = f"{base}-{n}"
        named[candidate] = system
    return named


def _error(status: int, key: str, message: str, resolution: str) -> JSONResponse:
    """A Redfish error response: the Base message ``key`` as code and extended info."""
    info = {"@odata.type": "#Message.v1_3_0.Message", "MessageId": f"{_BASE}.{key}",
            "Message": message, "MessageSeverity": "Critical", "Resolution": resolution}
    body = {"error": {"code": f"{_BASE}.{key}", "message": message,
                      "@Message.ExtendedInfo": [info]}}
    return JSONResponse(body, status_code=status, headers=REDFISH_HEADERS)


def redfish_router(systems: Sequence[Managed] = (),
                   catalog_dirs: tuple[str, ...] = ()) -> APIRouter:
    """The read-only Redfish routes for ``systems`` (none: :func:`default_systems` of
    the catalog with ``catalog_dirs``)."""
    router = APIRouter(include_in_schema=False)
    lock = threading.Lock()
    built: list[Tree] = []

    def make() -> Tree:
        chosen: list[Managed] = list(systems)
        if not chosen:
            chosen.extend(default_systems(load_catalog(catalog_dirs)))
        return service_tree(system_ids(chosen))

    def tree() -> Tree:
        with lock:
            if not built:
                built.append(make())
            return built[0]

    def answer(path: str) -> Response:
        uri = ROOT + ("/" + path.strip("/") if path.strip("/") else "")
        found = tree()
        if uri == f"{ROOT}/odata":
            return JSONResponse(service_document(found), headers=REDFISH_HEADERS)
        if uri == f"{ROOT}/$metadata":
            return Response(metadata_xml(found), media_type="application/xml",
                            headers=REDFISH_HEADERS)
        if uri not in found:
            return _error(404, "ResourceMissingAtURI",
                          f"The resource at the URI '{uri}' was not found.",
                          "Place a valid resource at the URI or correct the URI and "
                          "resubmit the request.")
        return JSONResponse(found[uri], headers=REDFISH_HEADERS)

    def refuse(_request: Request) -> JSONResponse:
        return _error(405, "OperationNotAllowed",
                      "The HTTP method is not allowed on this resource.", "None.")

    get_methods = ["GET", "HEAD"]

    @router.api_route("/redfish", methods=get_methods)
    @router.api_route("/redfish/", methods=get_methods)
    def versions() -> JSONResponse:
        return JSONResponse({"v1": f"{ROOT}/"}, headers=REDFISH_HEADERS)

    @router.api_route("/redfish/v1", methods=get_methods)
    def service_root() -> Response:
        return answer("")

    @router.api_route("/redfish/v1/{path:path}", methods=get_methods)
    def member(path: str) -> Response:
        return answer(path)

    for pattern in ("/redfish", "/redfish/", "/redfish/v1", "/redfish/v1/{path:path}"):
        router.add_api_route(pattern, refuse, methods=_WRITES)
    return router
