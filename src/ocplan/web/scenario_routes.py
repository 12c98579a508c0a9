"""Saved scenarios of the workbench (``/api/scenarios``): a named request with its
result, kept in the server's database (:mod:`ocplan.store.scenarios`) to be listed,
shown again and deleted."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ocplan.catalog.fields import Spec
from ocplan.catalog.loader import validate_as
from ocplan.jsonio import dumps
from ocplan.store.scenarios import Scenario, ScenarioKind, ScenarioStore
from ocplan.web.answers import BodyOf, not_found

__all__ = ["scenario_router"]


class _ScenarioIn(Spec):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: ScenarioKind
    request: dict[str, Any]
    result: dict[str, Any]


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


def scenario_router(scenarios: ScenarioStore, body_of: BodyOf) -> APIRouter:
    """Save, list, show and delete the scenarios of ``scenarios``."""
    router = APIRouter()

    @router.post("/api/scenarios", status_code=201)
    async def save_scenario(request: Request) -> Response:
        body = validate_as(_ScenarioIn, await body_of(request, "scenario"), "scenario")
        saved = await run_in_threadpool(scenarios.save, body.name, body.kind, body.request,
                                        body.result)
        return Response(_scenario_json(saved), status_code=201,
                        media_type="application/json")

    @router.get("/api/scenarios")
    def list_scenarios() -> Response:
        # printed row by row: a row that cannot be read or printed is a stub with an
        # "error", never a failed list
        text = b"[" + b",".join(_scenario_json(s) for s in scenarios.all()) + b"]"
        return Response(text, media_type="application/json")

    @router.get("/api/scenarios/{scenario_id}")
    def get_scenario(scenario_id: str) -> Response:
        found = scenarios.get(scenario_id)
        if found is None:
            return not_found(f"scenario {scenario_id}")
        return Response(_scenario_json(found), media_type="application/json")

    @router.delete("/api/scenarios/{scenario_id}")
    def delete_scenario(scenario_id: str) -> Response:
        if not scenarios.delete(scenario_id):
            return not_found(f"scenario {scenario_id}")
        return JSONResponse({"deleted": scenario_id})

    return router
