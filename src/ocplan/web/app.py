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

import functools
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import swagger_ui
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool

from ocplan import api
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.display import human_fields
from ocplan.catalog.fields import Spec
from ocplan.catalog.loader import validate_as
from ocplan.catalog.schema import KINDS
from ocplan.errors import SpecError
from ocplan.jsonio import MAX_JSON_DEPTH, dumps, parse_json
from ocplan.reports import figures as figures_
from ocplan.reports import summary
from ocplan.reports.html import plotly_js_path
from ocplan.store.db import open_store
from ocplan.store.scenarios import Scenario, ScenarioKind, open_scenarios
from ocplan.units import DEFAULT_CURRENCY
from ocplan.web import workers
from ocplan.web.guard import DEFAULT_ALLOWED_HOSTS, Guard
from ocplan.web.jobs import DEFAULT_JOB_QUEUE, JobRunner, JobsBusy, spec_problems
from ocplan.web.match_routes import match_router
from ocplan.web.redfish_routes import Managed, redfish_router
from ocplan.web.sweep_routes import SweepFile, sweep_router
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


class BadBody(Exception):
    """A request body that is not JSON (answered 400; a schema error is a 422)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def _detail(lines: Iterable[str], status: int) -> JSONResponse:
    return JSONResponse({"detail": list(lines)}, status_code=status)


def _bad(exc: SpecError) -> JSONResponse:
    return _detail((p.line() for p in exc.problems), 422)


async def _json_body(request: Request, source: str, max_bytes: int) -> Any:
    """The parsed JSON body, bounded in size and depth; :class:`BadBody` if not JSON."""
    try:
        return parse_json(await request.body(), source, max_bytes=max_bytes,
                          max_depth=MAX_JSON_DEPTH)
    except SpecError as exc:
        raise BadBody([p.line() for p in exc.problems]) from None


def _submitted(jobs: JobRunner, work: Callable[[Callable[[int, int], None]], dict[str, Any]]
               ) -> JSONResponse:
    """Start ``work`` as a background job with progress; 202 with the job's state."""
    job = jobs.submit(work, spec_problems)
    return JSONResponse(job.as_dict(), status_code=202)


def _computed(answer: workers.Answer, status: int = 200) -> Response:
    """A worker's answer as a response: its JSON text, or 422 with its problems."""
    if answer.problems:
        return _detail(answer.problems, 422)
    assert answer.body is not None
    return Response(answer.body, status_code=status, media_type="application/json")


def _scenario_json(scenario: Scenario) -> bytes:
    """One scenario as UTF-8 JSON; one that cannot be printed (a lone surrogate, a
    non-finite number) as a stub naming why. The store refuses such values, so only a
    row written by other means gets here."""
    try:
        return dumps(scenario.as_dict()).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:  # UnicodeError is a ValueError
        stub = {"id": scenario.id, "name": scenario.name, "kind": scenario.kind,
                "request": None, "result": None, "created_at": scenario.created_at,
                "error": f"cannot be shown as JSON: {type(exc).__name__}"}
        return json.dumps(stub, ensure_ascii=True).encode("ascii")


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
    # CPU platform matching and its page (ocplan.web.match_routes)
    app.include_router(match_router(catalog_dirs, max_body_bytes))

    def catalog() -> Catalog:
        return load_catalog(catalog_dirs)

    async def body_of(request: Request, source: str) -> Any:
        return await _json_body(request, source, max_body_bytes)

    # the results store's sweeps, shown and run (ocplan.web.sweep_routes)
    app.include_router(sweep_router(results, jobs, catalog, body_of, pool_workers))

    @app.exception_handler(SpecError)
    async def spec_error(_request: Request, exc: SpecError) -> JSONResponse:
        return _bad(exc)

    @app.exception_handler(BadBody)
    async def bad_body(_request: Request, exc: BadBody) -> JSONResponse:
        return _detail(exc.lines, 400)

    @app.exception_handler(PoolBusy)
    @app.exception_handler(JobsBusy)
    async def busy(_request: Request, exc: Exception) -> JSONResponse:
        return _detail([str(exc)], 503)

    @app.exception_handler(PoolTimeout)
    async def timed_out(_request: Request, exc: PoolTimeout) -> JSONResponse:
        return _detail([str(exc)], 504)

    @app.exception_handler(PoolFailure)
    async def failed(_request: Request, exc: PoolFailure) -> JSONResponse:
        return _detail([str(exc)], 500)

    # ---- catalog, check, topology ---------------------------------------------------

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/settings")
    def settings() -> dict[str, object]:
        """How the server was started: ``currency``, the label of the prices requests
        give and of the costs answered (the page labels its price inputs with it);
        ``default_chips``, the chips a job without a count and without a system runs on
        (the page's Chips boxes say so); ``job_defaults``, what a training request takes
        for a number left out (:func:`ocplan.api.job_defaults`; the page shows them in its
        empty boxes); and ``objectives``, what a training search or comparison may rank by
        (:func:`ocplan.api.training_objectives`; the page's Objective selects list them)."""
        return {"currency": currency, "default_chips": api.DEFAULT_CHIPS,
                "job_defaults": api.job_defaults(),
                "objectives": api.training_objectives()}

    @app.get("/api/catalog")
    def catalog_list(kind: str | None = None) -> list[dict[str, Any]]:
        if kind is not None and kind not in KINDS:
            raise SpecError.one("kind", "kind", f"unknown kind; expected one of "
                                                f"{', '.join(KINDS)}", kind)
        return [e.model_dump(mode="json", exclude_none=True) for e in catalog().all(kind)]

    @app.get("/api/catalog/{entry_id}")
    def catalog_show(entry_id: str, display: bool = False) -> dict[str, Any]:
        """The entry; with ``display`` also ``display``: every field as text with its
        unit (what people read)."""
        entry = catalog().find(entry_id)
        data: dict[str, Any] = entry.model_dump(mode="json", exclude_none=True)
        if display:
            data["display"] = human_fields(entry, skip=("sources",))
        return data

    @app.post("/api/check")
    async def check(request: Request) -> Response:
        return _computed(await pool.run(workers.check_task, await body_of(request, "system")))

    @app.post("/api/system.yaml")
    async def system_yaml(request: Request) -> Response:
        """The system mapping as a system YAML file (validated and resolved first, so the
        file loads back with ``ocplan check FILE``)."""
        body = await body_of(request, "system")
        api.system_from_mapping(body, catalog())  # SpecError -> 422 with the lines
        text = api.system_yaml(body)
        return Response(text, media_type="application/yaml",
                        headers={"Content-Disposition": 'attachment; filename="system.yaml"'})

    @app.post("/api/topology")
    async def topology(request: Request) -> Response:
        return _computed(await pool.run(workers.topology_task,
                                        await body_of(request, "system")))

    # ---- estimate and search ---------------------------------------------------------

    @app.get("/api/choices")
    def choices() -> dict[str, list[str]]:
        """The values of the format fields (training precision, serving weight,
        activation, KV and recurrent-state formats): the workbench fills its selects
        with them."""
        return api.field_choices()

    @app.get("/api/training-options")
    def training_options() -> list[dict[str, object]]:
        """The options a training request takes (name, label, kind, default, bounds,
        choices, help): the workbench builds each training form's option inputs from
        them."""
        return api.training_option_fields()

    @app.get("/api/serving-options")
    def serving_options() -> list[dict[str, object]]:
        """The fields of a serving job (lengths, load, latency limits, formats,
        speculation), each with its label, kind, default, bounds, unit, choices and help:
        the workbench builds the serving form's job inputs from them."""
        return api.serving_option_json()

    @app.get("/api/layout")
    def layout_fields() -> list[dict[str, object]]:
        """The layout fields an estimate request takes (name, kind, default, bounds,
        choices, help): the workbench builds its layout form from them."""
        return api.layout_fields()

    @app.get("/api/search-layout")
    def search_layout_fields() -> list[dict[str, object]]:
        """The layout fields a search request takes (blank: searched, or the stack's
        default): the workbench builds its search form's layout inputs from them."""
        return api.search_layout_fields()

    @app.post("/api/estimate")
    async def estimate(request: Request) -> Response:
        return _computed(await pool.run(
            functools.partial(workers.estimate_task, currency=currency),
            await body_of(request, "request")))

    @app.get("/api/serving-layout")
    def serving_layout_fields() -> list[dict[str, object]]:
        """The serving layout fields an inference request takes."""
        return api.serving_layout_fields()

    @app.post("/api/infer")
    async def infer(request: Request) -> Response:
        return _computed(await pool.run(
            functools.partial(workers.infer_task, currency=currency),
            await body_of(request, "request")))

    @app.post("/api/infer/compare")
    async def infer_compare(request: Request) -> Response:
        """One serving job on several chips, each at its best serving layout."""
        return _computed(await pool.run(
            functools.partial(workers.infer_compare_task, currency=currency),
            await body_of(request, "request")))

    @app.post("/api/search", status_code=202)
    async def start_search(request: Request) -> Response:
        body = await body_of(request, "request")
        # bad input (a field, an unknown id, a system too small) fails now, not in the job
        checked = await pool.run(workers.search_check_task, body)
        if checked.problems:
            return _computed(checked)
        req = validate_as(api.SearchRequest, body, "request")
        cat = catalog()

        def work(progress: Callable[[int, int], None]) -> dict[str, Any]:
            found = api.run_search(cat, req, progress=progress).as_json()
            return (found | {"figures": {"pareto": figures_.pareto_figure(found)},
                             # the columns a person reads, as the CLI table and the report
                             "columns": summary.row_labels(summary.SEARCH_COLUMNS),
                             "job": api.job_json(req)}
                    | workers.priced(req.price_per_chip_hour, currency))

        return _submitted(jobs, work)

    @app.post("/api/compare", status_code=202)
    async def start_compare(request: Request) -> Response:
        """One training job on several systems, each at its best layout: a job whose
        progress counts the systems done."""
        body = await body_of(request, "request")
        checked = await pool.run(workers.compare_check_task, body)
        if checked.problems:
            return _computed(checked)
        req = validate_as(api.CompareRequest, body, "request")
        cat = catalog()

        def work(progress: Callable[[int, int], None]) -> dict[str, Any]:
            from ocplan.results.compare import budget_note

            result = api.run_compare(cat, req, progress=progress)
            found = result.as_json()
            return (found | {"figures": {
                "bars": figures_.compare_bars_figure(found, currency=currency),
                "pareto": figures_.compare_pareto_figure(found, currency)},
                             "budget_note": budget_note(result, currency),
                             # the rows a person reads, as the CLI table and the report
                             "rows": summary.row_labels(summary.COMPARE_ROWS),
                             "job": api.job_json(req)}
                    | workers.priced(req.price_per_chip_hour, currency))

        return _submitted(jobs, work)

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> Response:
        job = jobs.get(job_id)
        if job is None:
            return JSONResponse({"detail": [f"no job {job_id}"]}, status_code=404)
        return JSONResponse(job.as_dict())

    @app.delete("/api/jobs/{job_id}")
    def job_cancel(job_id: str) -> Response:
        job = jobs.cancel(job_id)
        if job is None:
            return JSONResponse({"detail": [f"no job {job_id}"]}, status_code=404)
        return JSONResponse(job.as_dict())

    # ---- saved scenarios -------------------------------------------------------------

    @app.post("/api/scenarios", status_code=201)
    async def save_scenario(request: Request) -> Response:
        body = validate_as(_ScenarioIn, await body_of(request, "scenario"), "scenario")
        saved = await run_in_threadpool(scenarios.save, body.name, body.kind, body.request,
                                        body.result)
        return Response(_scenario_json(saved), status_code=201,
                        media_type="application/json")

    @app.get("/api/scenarios")
    def list_scenarios() -> Response:
        # printed row by row: a row that cannot be read or printed is a stub with an
        # "error", never a failed list
        text = b"[" + b",".join(_scenario_json(s) for s in scenarios.all()) + b"]"
        return Response(text, media_type="application/json")

    @app.get("/api/scenarios/{scenario_id}")
    def get_scenario(scenario_id: str) -> Response:
        found = scenarios.get(scenario_id)
        if found is None:
            return JSONResponse({"detail": [f"no scenario {scenario_id}"]}, status_code=404)
        return Response(_scenario_json(found), media_type="application/json")

    @app.delete("/api/scenarios/{scenario_id}")
    def delete_scenario(scenario_id: str) -> Response:
        if not scenarios.delete(scenario_id):
            return JSONResponse({"detail": [f"no scenario {scenario_id}"]}, status_code=404)
        return JSONResponse({"deleted": scenario_id})

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


class _ScenarioIn(Spec):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: ScenarioKind
    request: dict[str, Any]
    result: dict[str, Any]
