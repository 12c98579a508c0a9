"""The workbench web app: a FastAPI thin client of :mod:`ocplan.api` and the stores.

No formulas or constants live here: every number comes from the Python API. JSON API
under ``/api`` (OpenAPI at ``/docs``), pages and static files (Plotly served by the app
itself, so the page works offline) under ``/``.

Safety: :func:`create_app` takes a ``token``; when set, every request must carry it
(``Authorization: Bearer TOKEN`` or ``?token=TOKEN``). Request bodies over
``max_body_bytes`` get 413. Bad specs get 422 with the same one-line messages the CLI
prints (``{"detail": ["file: field = value: message", ...]}``).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from ocplan import api
from ocplan.catalog.catalog import load_catalog
from ocplan.catalog.fields import Spec
from ocplan.catalog.loader import validate_as
from ocplan.catalog.schema import KINDS
from ocplan.errors import SpecError
from ocplan.reports import figures as figures_
from ocplan.store.scenarios import open_scenarios
from ocplan.web.jobs import JobRunner

__all__ = ["MAX_BODY_BYTES", "create_app", "plotly_js_path"]

STATIC = Path(__file__).parent / "static"
#: Largest request body accepted (a system file or request is a few kB).
MAX_BODY_BYTES = 256 * 1024


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly Python package (no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _bad(exc: SpecError) -> JSONResponse:
    return JSONResponse({"detail": [p.line() for p in exc.problems]}, status_code=422)


async def _json_body(request: Request, source: str) -> Any:
    body = await request.body()
    try:
        return json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError.one(source, "", f"request body is not JSON: {exc}") from None


def create_app(db_url: str | None = None, token: str | None = None,
               catalog_dirs: tuple[str, ...] = (), max_body_bytes: int = MAX_BODY_BYTES,
               job_workers: int = 2) -> FastAPI:
    """Build the app. ``db_url`` is the scenarios database (default ``sqlite:///ocplan.db``)."""
    scenarios = open_scenarios(db_url)
    jobs = JobRunner(workers=job_workers)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.shutdown()

    app = FastAPI(title="ocplan workbench", version="0.1.0", lifespan=lifespan,
                  description="Compose open-standard AI systems, check them against the "
                              "OAM/UBB/OCM specs, estimate and search LLM training layouts.")
    app.state.jobs = jobs

    def catalog() -> Any:
        return load_catalog(catalog_dirs)

    @app.middleware("http")
    async def guard(request: Request,
                    call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is not None:
            header = request.headers.get("authorization", "")
            given = header.removeprefix("Bearer ").strip() or request.query_params.get(
                "token", "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return JSONResponse({"detail": ["missing or wrong token"]}, status_code=401)
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body_bytes:
            return JSONResponse({"detail": [f"request body over {max_body_bytes} bytes"]},
                                status_code=413)
        if request.method in ("POST", "PUT", "PATCH") and length is None:
            body = await request.body()
            if len(body) > max_body_bytes:
                return JSONResponse({"detail": [f"request body over {max_body_bytes} bytes"]},
                                    status_code=413)
        try:
            return await call_next(request)
        except SpecError as exc:
            return _bad(exc)

    @app.exception_handler(SpecError)
    async def spec_error(_request: Request, exc: SpecError) -> JSONResponse:
        return _bad(exc)

    # ---- catalog, check, topology ---------------------------------------------------

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/catalog")
    def catalog_list(kind: str | None = None) -> list[dict[str, Any]]:
        if kind is not None and kind not in KINDS:
            raise SpecError.one("kind", "kind", f"unknown kind; expected one of "
                                                f"{', '.join(KINDS)}", kind)
        return [e.model_dump(mode="json", exclude_none=True) for e in catalog().all(kind)]

    @app.get("/api/catalog/{entry_id}")
    def catalog_show(entry_id: str) -> dict[str, Any]:
        entry = catalog().find(entry_id)
        data: dict[str, Any] = entry.model_dump(mode="json", exclude_none=True)
        return data

    @app.post("/api/check")
    async def check(request: Request) -> dict[str, Any]:
        system = api.system_from_mapping(await _json_body(request, "system"), catalog())
        findings = api.check_system(system)
        return {"system": system.spec.name, "chips": system.num_chips,
                "errors": sum(f.severity == "error" for f in findings),
                "warnings": sum(f.severity == "warning" for f in findings),
                "findings": [f.as_dict() for f in findings]}

    @app.post("/api/topology")
    async def topology(request: Request) -> dict[str, Any]:
        system = api.system_from_mapping(await _json_body(request, "system"), catalog())
        report = api.topology_report(system)
        figs = {"topology": figures_.topology_figure(report)}
        if report["cluster"]["nodes"]:
            figs["cluster"] = figures_.cluster_figure(report)
        return report | {"figures": figs}

    # ---- estimate and search ---------------------------------------------------------

    @app.post("/api/estimate")
    async def estimate(request: Request) -> dict[str, Any]:
        req = validate_as(api.EstimateRequest, await _json_body(request, "request"),
                          "request")
        result, system, workload = api.run_estimate(catalog(), req)
        timeline = api.pipeline_timeline(result, workload)
        figures = {}
        if result.feasible:
            figures = {"breakdown": figures_.breakdown_figure(result),
                       "memory": figures_.memory_figure(result),
                       "timeline": figures_.timeline_figure(timeline)}
        return result.as_dict() | {"system": system.spec.name, "timeline": timeline,
                                   "figures": figures}

    @app.post("/api/search", status_code=202)
    async def start_search(request: Request) -> dict[str, Any]:
        req = validate_as(api.SearchRequest, await _json_body(request, "request"), "request")
        cat = catalog()
        api.job_system(cat, req.chip, req.system, req.chips)  # bad input fails now, not later

        def work(progress: Callable[[int, int], None]) -> dict[str, Any]:
            found = api.run_search(cat, req, progress=progress).as_json()
            return found | {"figures": {"pareto": figures_.pareto_figure(found)}}

        def on_error(exc: Exception) -> list[str] | None:
            if isinstance(exc, SpecError):
                return [p.line() for p in exc.problems]
            return None

        job = jobs.submit(work, on_error)
        return job.as_dict()

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
    async def save_scenario(request: Request) -> dict[str, Any]:
        body = validate_as(_ScenarioIn, await _json_body(request, "scenario"), "scenario")
        return scenarios.save(body.name, body.kind, body.request, body.result).as_dict()

    @app.get("/api/scenarios")
    def list_scenarios() -> list[dict[str, Any]]:
        return [s.as_dict() for s in scenarios.all()]

    @app.get("/api/scenarios/{scenario_id}")
    def get_scenario(scenario_id: str) -> Response:
        found = scenarios.get(scenario_id)
        if found is None:
            return JSONResponse({"detail": [f"no scenario {scenario_id}"]}, status_code=404)
        return JSONResponse(found.as_dict())

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

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    return app


class _ScenarioIn(Spec):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["estimate", "search", "system"]
    request: dict[str, Any]
    result: dict[str, Any]
