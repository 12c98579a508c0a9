"""The catalog and the system routes of the workbench: ``/api/health``, the catalog
(``/api/catalog``, ``/api/catalog/{id}``), and a system checked against the specs
(``/api/check``), written as a system file (``/api/system.yaml``) and summarized as a
topology (``/api/topology``). A thin client of :mod:`ocplan.api`; the check and the
topology run in the computation pool (:mod:`ocplan.web.workers`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ocplan import api
from ocplan.catalog.catalog import Catalog
from ocplan.catalog.display import human_fields
from ocplan.catalog.schema import KINDS
from ocplan.errors import SpecError
from ocplan.web import workers
from ocplan.web.answers import BodyOf, computed
from ocplan.web.workers import WorkerPool

__all__ = ["system_router"]


def system_router(catalog: Callable[[], Catalog], body_of: BodyOf, pool: WorkerPool
                  ) -> APIRouter:
    """The routes of the catalog and of system files (``catalog``: the server's
    catalog, its extra folders included)."""
    router = APIRouter()

    @router.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/api/catalog")
    def catalog_list(kind: str | None = None) -> list[dict[str, Any]]:
        if kind is not None and kind not in KINDS:
            raise SpecError.one("kind", "kind", f"unknown kind; expected one of "
                                                f"{', '.join(KINDS)}", kind)
        return [e.model_dump(mode="json", exclude_none=True) for e in catalog().all(kind)]

    @router.get("/api/catalog/{entry_id}")
    def catalog_show(entry_id: str, display: bool = False) -> dict[str, Any]:
        """The entry; with ``display`` also ``display``: every field as text with its
        unit (what people read)."""
        entry = catalog().find(entry_id)
        data: dict[str, Any] = entry.model_dump(mode="json", exclude_none=True)
        if display:
            data["display"] = human_fields(entry, skip=("sources",))
        return data

    @router.post("/api/check")
    async def check(request: Request) -> Response:
        return computed(await pool.run(workers.check_task, await body_of(request, "system")))

    @router.post("/api/system.yaml")
    async def system_yaml(request: Request) -> Response:
        """The system mapping as a system YAML file (validated and resolved first, so the
        file loads back with ``ocplan check FILE``)."""
        body = await body_of(request, "system")
        api.system_from_mapping(body, catalog())  # SpecError -> 422 with the lines
        text = api.system_yaml(body)
        return Response(text, media_type="application/yaml",
                        headers={"Content-Disposition": 'attachment; filename="system.yaml"'})

    @router.post("/api/topology")
    async def topology(request: Request) -> Response:
        return computed(await pool.run(workers.topology_task,
                                       await body_of(request, "system")))

    return router
