"""How the workbench's routes answer: the ``{"detail": [...]}`` error form, a worker's
answer, a started job, and the body a request must send. Shared by the app and its
routers (:mod:`ocplan.web.app`), so that every route answers errors alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ocplan.errors import SpecError
from ocplan.jsonio import MAX_JSON_DEPTH, parse_json
from ocplan.web.jobs import JobRunner, spec_problems
from ocplan.web.workers import Answer

__all__ = ["BadBody", "BodyOf", "computed", "detail", "json_body", "not_found", "spec_error",
           "submitted"]

#: Reads a request's JSON body, naming its ``source`` in the problems of a bad one.
BodyOf = Callable[[Request, str], Awaitable[Any]]


class BadBody(Exception):
    """A request body that is not JSON (answered 400; a schema error is a 422)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def detail(lines: Iterable[str], status: int) -> JSONResponse:
    """The error form of every answer: ``{"detail": [line, ...]}`` with ``status``."""
    return JSONResponse({"detail": list(lines)}, status_code=status)


def spec_error(exc: SpecError) -> JSONResponse:
    """422 with the one-line problems the CLI prints."""
    return detail((p.line() for p in exc.problems), 422)


def not_found(what: str) -> JSONResponse:
    """404 naming what was not found (``job ID``, ``scenario ID``)."""
    return detail([f"no {what}"], 404)


async def json_body(request: Request, source: str, max_bytes: int) -> Any:
    """The parsed JSON body, bounded in size and depth; :class:`BadBody` if not JSON."""
    try:
        return parse_json(await request.body(), source, max_bytes=max_bytes,
                          max_depth=MAX_JSON_DEPTH)
    except SpecError as exc:
        raise BadBody([p.line() for p in exc.problems]) from None


def submitted(jobs: JobRunner, work: Callable[[Callable[[int, int], None]], dict[str, Any]]
              ) -> JSONResponse:
    """Start ``work`` as a background job with progress; 202 with the job's state."""
    job = jobs.submit(work, spec_problems)
    return JSONResponse(job.as_dict(), status_code=202)


def computed(answer: Answer, status: int = 200) -> Response:
    """A worker's answer as a response: its JSON text, or 422 with its problems."""
    if answer.problems:
        return detail(answer.problems, 422)
    assert answer.body is not None
    return Response(answer.body, status_code=status, media_type="application/json")
