"""``/api/match`` and the Match page: which CPU platform serves a workload mix best.

A thin client of :func:`ocplan.api.run_match`; no formula or model constant lives here.

- ``GET /api/match/form``: what the page builds its form from: the archetypes of a mix
  (:data:`ocplan.matching.ARCHETYPES`, each with its benchmark and unit), the
  constraint and cost fields of :class:`~ocplan.matching.MatchRequest` as declarations
  (name, kind, default, bounds, choices, unit), the platforms a price can name, and the
  example mix ``examples/cloud-mix.yaml`` when the source tree has it.
- ``POST /api/match/parse``: ``{"name": FILE, "text": YAML or JSON}``, an uploaded mix,
  read and checked as a request; answered with the mapping as written (units kept as
  typed, so the form shows ``20 kW``), or 422 with the one-line problems.
- ``POST /api/match``: a match request (the mapping of a mix file); answered with
  :meth:`~ocplan.matching.MatchResult.as_json` (every platform: those that serve the
  mix, those that cannot and those not modelled, each with its reason) plus
  ``figures.pareto``, the performance per kW against performance per million of price
  chart of the ``ocplan match --report`` page
  (:func:`ocplan.reports.figures.match_figure`; without points it says why).
- ``GET /match``: the page (``static/match.html``, ``static/match.js``).

Bodies that are not JSON get 400, bad requests 422, as on the other routes of the
workbench (its guard and exception handlers apply). A match over the whole catalog takes
0.1-0.4 s with the catalog's loading (measured on the 37 platforms of the catalog; about
0.1 s on its 85, generic 1- and 2-socket modules and those not modelled included), so it
runs on a worker thread of the server rather than in the computation pool.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge, Gt, Le, Lt
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response
from pydantic import Field
from pydantic.fields import FieldInfo
from starlette.concurrency import run_in_threadpool

from ocplan import api
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.fields import Spec, dimension_of
from ocplan.catalog.loader import parse_yaml, validate_as
from ocplan.errors import SpecError
from ocplan.jsonio import dumps
from ocplan.matching import ARCHETYPES, MatchRequest, catalog_platforms
from ocplan.matching.match import MatchConstraints
from ocplan.reports.figures import match_figure
from ocplan.web.answers import BodyOf

__all__ = ["EXAMPLE_MIX", "SETTINGS", "field_declaration", "match_router"]

STATIC = Path(__file__).parent / "static"
#: The example mix of a source checkout (absent from an installed package).
EXAMPLE_MIX = Path(__file__).resolve().parents[3] / "examples" / "cloud-mix.yaml"
#: The request fields the page shows under "costs and sizing", in order (the mix's
#: name, demand, constraints and prices have their own parts of the form).
SETTINGS = ("objective", "currency", "electricity_per_kwh", "pue", "horizon_years",
            "target_utilization", "idle_fraction")
#: Largest uploaded mix file, characters (a mix is well under a kilobyte or two).
MAX_UPLOAD_CHARS = 64 * 1024


class _Upload(Spec):
    name: Annotated[str, Field(min_length=1, max_length=200)] = "upload"
    text: Annotated[str, Field(max_length=MAX_UPLOAD_CHARS)]


def _unwrap(annotation: Any) -> tuple[Any, list[Any], bool]:
    """(type, its metadata, optional) of a field annotation: ``X | None`` and
    ``Annotated[X, ...]`` peeled off."""
    optional = False
    meta: list[Any] = []
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation, *extra = typing.get_args(annotation)
            meta += extra
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            optional = True
            annotation = args[0]
        else:
            return annotation, meta, optional


def _bounds(meta: list[Any]) -> tuple[float | None, float | None]:
    """(lowest, highest) value the constraints in ``meta`` allow (open or closed)."""
    low: Any = None
    high: Any = None
    for item in meta:
        inner = item.metadata if isinstance(item, FieldInfo) else [item]
        for bound in inner:
            if isinstance(bound, Ge | Gt):
                low = bound.ge if isinstance(bound, Ge) else bound.gt
            elif isinstance(bound, Le | Lt):
                high = bound.le if isinstance(bound, Le) else bound.lt
    return (None if low is None else float(low)), (None if high is None else float(high))


def field_declaration(name: str, info: FieldInfo) -> dict[str, Any]:
    """One request field as the form needs it.

    ``kind`` is ``choice`` (one of ``choices``), ``choices`` (any of them), ``ints``
    (a comma-separated list), ``quantity`` (a number with ``unit``, typed as ``20 kW``),
    ``int``, ``float`` or ``text``; ``low`` and ``high`` are the bounds (SI units).
    """
    tp, meta, optional = _unwrap(info.annotation)
    meta = meta + list(info.metadata)
    choices: list[Any] = []
    unit = None
    if typing.get_origin(tp) is Literal:
        kind, choices = "choice", list(typing.get_args(tp))
    elif typing.get_origin(tp) is tuple:
        item, item_meta, _ = _unwrap(typing.get_args(tp)[0])
        if typing.get_origin(item) is Literal:
            kind, choices = "choices", list(typing.get_args(item))
        else:
            assert item is int, (name, item)
            kind, meta = "ints", meta + item_meta
    else:
        dimension = dimension_of(meta)
        if dimension is not None:
            kind, unit = "quantity", dimension.si_unit
        else:
            kind = {int: "int", float: "float", str: "text"}[tp]
    low, high = _bounds(meta)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    return {"name": name, "label": name.replace("_", " "), "kind": kind,
            "default": default, "optional": optional, "choices": choices, "unit": unit,
            "low": low, "high": high}


def _form(catalog: Catalog) -> dict[str, Any]:
    fields = MatchRequest.model_fields
    example = None
    if EXAMPLE_MIX.is_file():  # as written: the form shows its units ("20 kW")
        example = parse_yaml(EXAMPLE_MIX.read_text(encoding="utf-8"), str(EXAMPLE_MIX))
    return {
        "archetypes": [{"id": a.id, "benchmark": a.benchmark, "metric": a.metric,
                        "unit": a.unit, "summary": a.summary, "slots": a.slots}
                       for a in ARCHETYPES.values()],
        "constraints": [field_declaration(n, f)
                        for n, f in MatchConstraints.model_fields.items()],
        "settings": [field_declaration(n, fields[n]) for n in SETTINGS],
        "platforms": [{"id": p.id, "kind": p.kind, "cpu": p.cpu.id, "isa": p.cpu.isa,
                       "sockets": p.module.sockets} for p in catalog_platforms(catalog)],
        "example": example,
    }


def _match(catalog: Catalog, body: Any) -> str:
    if not isinstance(body, dict):
        raise SpecError.one("request", "", "expected a JSON object: a match request")
    found = api.run_match(catalog, body).as_json()
    return dumps(found | {"figures": {"pareto": match_figure(found)}})


def _parse(body: Any) -> Any:
    upload = validate_as(_Upload, body, "upload")
    data = parse_yaml(upload.text, upload.name)  # JSON is YAML
    if not isinstance(data, dict):
        raise SpecError.one(upload.name, "", "expected a mapping: a workload mix")
    validate_as(MatchRequest, data, upload.name)  # its problems now, as one-line errors
    return data


def match_router(catalog_dirs: tuple[str, ...], body_of: BodyOf) -> APIRouter:
    """The match routes, on the catalog with ``catalog_dirs``, reading bodies with the
    app's ``body_of`` (bounded in size and depth; not JSON: a 400, as on every route)."""
    router = APIRouter()

    @router.get("/api/match/form")
    def form() -> Response:
        """Archetypes, constraint and cost fields, platforms and the example mix: what
        the Match page builds its form from."""
        return Response(dumps(_form(load_catalog(catalog_dirs))),
                        media_type="application/json")

    @router.post("/api/match/parse")
    async def parse(request: Request) -> Response:
        """An uploaded mix file (``{"name", "text"}``) as a request mapping."""
        body = await body_of(request, "request")
        return Response(dumps(await run_in_threadpool(_parse, body)),
                        media_type="application/json")

    @router.post("/api/match")
    async def run(request: Request) -> Response:
        """Rank every CPU platform of the catalog for a workload mix (a mix file's
        mapping): fleet, power at load, TCO, binding constraint, findings, and the
        perf/kW against perf/cost figure."""
        body = await body_of(request, "request")
        text = await run_in_threadpool(lambda: _match(load_catalog(catalog_dirs), body))
        return Response(text, media_type="application/json")

    @router.get("/match", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "match.html", media_type="text/html")

    return router

