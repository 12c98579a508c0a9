"""The workbench web app: a FastAPI thin client of :mod:`ocplan.api` and the stores.

No formulas or constants live here: every number comes from the Python API. JSON API
under ``/api`` (OpenAPI at ``/docs``), pages and static files (Plotly served by the app
itself, so the page works offline) under ``/``.

Answers. Bad specs get 422 with the same one-line messages the CLI prints
(``{"detail": ["file: field = value: message", ...]}``); a body that is not JSON (bad
syntax, not UTF-8, nested deeper than :data:`~ocplan.jsonio.MAX_JSON_DEPTH` levels, an
integer of thousands of digits, ``NaN``) gets 400 in the same form. Every error answer,
500 included, is JSON of that form: an unexpected exception is logged and answered 500
(a safety net, never an answer the API means to give).

Limits. The computations (check, topology, estimate, and the input check of a search)
run in a pool of ``pool_workers`` processes (:mod:`ocplan.web.workers`), never on the
event loop, so a slow request does not hold up others (``/api/health`` answers while a
topology of thousands of servers is computed). At most ``pool_workers + pool_queue``
computations run or wait at once; one more gets 503. A computation not answered within
``request_timeout_s`` (waiting included) gets 504 and is stopped, its worker process
killed. Searches are jobs on ``job_workers`` threads with progress and cancellation; at
most ``job_workers + job_queue`` run or wait, one more gets 503. Request bodies over
``max_body_bytes`` get 413.

Safety (:mod:`ocplan.web.guard`, in front of every route). A request whose ``Host`` is
not one of ``allowed_hosts`` (default 127.0.0.1, localhost and [::1], any port) gets 400:
no DNS-rebinding page can reach a loopback server. When a ``token`` is set every request
must carry it (``Authorization: Bearer TOKEN`` or ``?token=TOKEN``), else 401. POST,
PUT, PATCH and DELETE must be ``Content-Type: application/json`` (else 415) and from this
origin (an ``Origin`` other than the ``Host``, or ``Sec-Fetch-Site: cross-site`` or
``same-site``, gets 403), so no page of another site can save or start anything. Every
answer carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``,
``Referrer-Policy: no-referrer``, ``Cross-Origin-Opener-Policy: same-origin``,
``Cross-Origin-Resource-Policy: same-origin`` and a Content-Security-Policy allowing
this server's own scripts, styles and requests only (the page has no inline script or
style; ``/docs``, whose Swagger UI is served from ``/docs-assets``, also allows inline
style, which Swagger UI sets on its elements).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import swagger_ui
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from ocplan import api
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.errors import SpecError
from ocplan.reports.html import plotly_js_path
from ocplan.store.db import open_store
from ocplan.store.scenarios import open_scenarios
from ocplan.units import DEFAULT_CURRENCY
from ocplan.web.answers import BadBody, detail, json_body, spec_error
from ocplan.web.guard import DEFAULT_ALLOWED_HOSTS, Guard
from ocplan.web.job_routes import job_router
from ocplan.web.jobs import DEFAULT_JOB_QUEUE, JobRunner, JobsBusy
from ocplan.web.match_routes import match_router
from ocplan.web.redfish_routes import Managed, redfish_router
from ocplan.web.scenario_routes import scenario_router
from ocplan.web.sweep_routes import SweepFile, sweep_router
from ocplan.web.system_routes import system_router
from ocplan.web.workers import (
    DEFAULT_QUEUE,
    DEFAULT_TIMEOUT_S,
    DEFAULT_WORKERS,
    PoolBusy,
    PoolFailure,
    PoolTimeout,
    WorkerPool,
)

__all__ = ["DEFAULT_ALLOWED_HOSTS", "MAX_BODY_BYTES", "create_app", "plotly_js_path"]

STATIC = Path(__file__).parent / "static"
#: Where the Swagger UI files of the API docs page are served, and where they come from.
DOCS_ASSETS = "/docs-assets"
SWAGGER_UI = Path(swagger_ui.__file__).parent / "static"
#: Largest request body accepted (a system file or request is a few kB).
MAX_BODY_BYTES = 256 * 1024


def create_app(db_url: str | None = None, token: str | None = None,
               catalog_dirs: tuple[str, ...] = (), max_body_bytes: int = MAX_BODY_BYTES,
               job_workers: int = 2, *, job_queue: int = DEFAULT_JOB_QUEUE,
               pool_workers: int = DEFAULT_WORKERS, pool_queue: int = DEFAULT_QUEUE,
               request_timeout_s: float = DEFAULT_TIMEOUT_S,
               allowed_hosts: Iterable[str] = DEFAULT_ALLOWED_HOSTS,
               redfish_systems: Sequence[Managed] = (),
               currency: str = DEFAULT_CURRENCY) -> FastAPI:
    """Build the app. ``db_url`` is the database of scenarios and of stored results, sweeps
    among them (default ``sqlite:///ocplan.db``).

    ``pool_workers``, ``pool_queue`` and ``request_timeout_s`` size the computation pool;
    ``job_workers`` and ``job_queue`` the search jobs; ``allowed_hosts`` are the host
    names (no port) the ``Host`` header may give, ``"*"`` for any. See the module
    docstring for what each limit answers. ``redfish_systems`` are served read-only under
    ``/redfish/v1`` (:mod:`ocplan.web.redfish_routes`; none: the catalog's OAM modules).
    ``currency`` labels the prices of requests (``ocplan --currency X serve``): every
    answer holding a cost carries it as ``currency``, as the CLI's JSON answers do.
    """
    scenarios = open_scenarios(db_url)
    results = open_store(db_url)
    jobs = JobRunner(workers=job_workers, queue=job_queue)
    pool = WorkerPool(catalog_dirs, workers=pool_workers, queue=pool_queue,
                      timeout_s=request_timeout_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await pool.start()
        try:
            yield
        finally:
            try:
                jobs.shutdown()
                await run_in_threadpool(pool.shutdown)
            finally:
                # closing the last connection folds SQLite's write-ahead log into the file
                scenarios.close()
                results.close()

    app = FastAPI(title="ocplan workbench", version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Compose open-standard AI systems, check them against the "
                              "OAM/UBB/OCM specs, estimate and search LLM training layouts.")
    app.state.jobs = jobs
    app.state.pool = pool
    app.add_middleware(Guard, token=token, max_body_bytes=max_body_bytes,
                       allowed_hosts=allowed_hosts)
    # read-only Redfish view (ocplan.web.redfish_routes); no systems: the catalog's OAMs
    app.include_router(redfish_router(redfish_systems, catalog_dirs))

    def catalog() -> Catalog:
        return load_catalog(catalog_dirs)

    async def body_of(request: Request, source: str) -> Any:
        return await json_body(request, source, max_body_bytes)

    # CPU platform matching and its page (ocplan.web.match_routes)
    app.include_router(match_router(catalog_dirs, body_of))

    # the results store's sweeps, shown and run (ocplan.web.sweep_routes)
    app.include_router(sweep_router(results, jobs, catalog, body_of, pool_workers))

    @app.exception_handler(SpecError)
    async def bad_spec(_request: Request, exc: SpecError) -> JSONResponse:
        return spec_error(exc)

    @app.exception_handler(BadBody)
    async def bad_body(_request: Request, exc: BadBody) -> JSONResponse:
        return detail(exc.lines, 400)

    @app.exception_handler(PoolBusy)
    @app.exception_handler(JobsBusy)
    async def busy(_request: Request, exc: Exception) -> JSONResponse:
        return detail([str(exc)], 503)

    @app.exception_handler(PoolTimeout)
    async def timed_out(_request: Request, exc: PoolTimeout) -> JSONResponse:
        return detail([str(exc)], 504)

    @app.exception_handler(PoolFailure)
    async def failed(_request: Request, exc: PoolFailure) -> JSONResponse:
        return detail([str(exc)], 500)

    # catalog, check and topology (ocplan.web.system_routes); estimates, serving, search
    # jobs and the declarations of their forms (ocplan.web.job_routes); saved scenarios
    # (ocplan.web.scenario_routes)
    app.include_router(system_router(catalog, body_of, pool))
    app.include_router(job_router(catalog, body_of, pool, jobs, currency))
    app.include_router(scenario_router(scenarios, body_of))

    # ---- pages -----------------------------------------------------------------------

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="application/javascript")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Swagger UI 5 (OpenAPI 3.1) from the swagger-ui-py package, so /docs works offline
    # (FastAPI's default page loads it from a CDN)
    app.mount(DOCS_ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        return FileResponse(STATIC / "docs.html", media_type="text/html")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            app.openapi_schema = with_request_bodies(schema, request_models())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def request_models() -> dict[str, type[BaseModel]]:
    """The model each JSON endpoint validates its body as. The endpoints read their body
    themselves (size and depth are bounded before parsing: ocplan.web.guard), so FastAPI
    cannot see it; /openapi.json (and /docs) show these."""
    from ocplan.catalog.system import SystemSpec
    from ocplan.matching.match import MatchRequest

    return {"/api/check": SystemSpec, "/api/system.yaml": SystemSpec,
            "/api/topology": SystemSpec, "/api/estimate": api.EstimateRequest,
            "/api/infer": api.InferRequest, "/api/infer/compare": api.InferCompareRequest,
            "/api/search": api.SearchRequest,
            "/api/compare": api.CompareRequest, "/api/match": MatchRequest,
            "/api/sweeps": SweepFile}


def with_request_bodies(schema: dict[str, Any], models: dict[str, type[BaseModel]]
                        ) -> dict[str, Any]:
    """``schema`` (an OpenAPI document) with each path's POST request body described by
    its model's JSON schema (in ``components.schemas``)."""
    mode: Literal["validation"] = "validation"
    pairs = [(m, mode) for m in dict.fromkeys(models.values())]
    refs, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    schema.setdefault("components", {}).setdefault("schemas", {}).update(
        defs.get("$defs", {}))
    for path, model in models.items():
        operation = schema["paths"][path]["post"]
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(model, mode)]}}}
    return schema
