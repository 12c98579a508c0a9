"""The estimate, serving and search routes of the workbench, and what builds their
forms.

- Declarations the page builds its forms from: ``/api/settings`` (how the server was
  started), ``/api/choices`` (format values), ``/api/training-options``,
  ``/api/serving-options``, ``/api/layout``, ``/api/search-layout`` and
  ``/api/serving-layout`` (each field with its label, kind, default, bounds and help),
  all from :mod:`ocplan.api`, the same declarations the CLI's options come from.
- Computations answered at once, in the computation pool (:mod:`ocplan.web.workers`):
  ``/api/estimate``, ``/api/infer``, ``/api/infer/compare``.
- Jobs with progress and cancellation (:mod:`ocplan.web.jobs`): ``/api/search`` and
  ``/api/compare`` answer 202 with the job, whose state ``GET /api/jobs/{id}`` gives and
  ``DELETE /api/jobs/{id}`` cancels. Their input is checked in the pool first, so bad
  input is a 422 now, not a failed job.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from ocplan import api
from ocplan.catalog.catalog import Catalog
from ocplan.catalog.loader import validate_as
from ocplan.reports import figures as figures_
from ocplan.reports import summary
from ocplan.web import workers
from ocplan.web.answers import BodyOf, computed, not_found, submitted
from ocplan.web.jobs import Job, JobRunner
from ocplan.web.workers import Task, WorkerPool

__all__ = ["job_router"]


def job_router(catalog: Callable[[], Catalog], body_of: BodyOf, pool: WorkerPool,
               jobs: JobRunner, currency: str) -> APIRouter:
    """The form declarations, estimates and search jobs; ``currency`` labels the
    prices of requests and every cost answered."""
    router = APIRouter()
    _form_routes(router, currency)

    @router.post("/api/estimate")
    async def estimate(request: Request) -> Response:
        return computed(await pool.run(
            functools.partial(workers.estimate_task, currency=currency),
            await body_of(request, "request")))

    @router.post("/api/infer")
    async def infer(request: Request) -> Response:
        return computed(await pool.run(
            functools.partial(workers.infer_task, currency=currency),
            await body_of(request, "request")))

    @router.post("/api/infer/compare")
    async def infer_compare(request: Request) -> Response:
        """One serving job on several chips, each at its best serving layout."""
        return computed(await pool.run(
            functools.partial(workers.infer_compare_task, currency=currency),
            await body_of(request, "request")))

    async def started(request: Request, check: Task, build: Callable[[Any], Work]
                      ) -> Response:
        """A job of the request's body: checked in the pool first, so bad input (a field,
        an unknown id, a system too small) is a 422 now, not a failed job; then
        ``build(body)``'s work started (202)."""
        body = await body_of(request, "request")
        checked = await pool.run(check, body)
        if checked.problems:
            return computed(checked)
        return submitted(jobs, build(body))

    @router.post("/api/search", status_code=202)
    async def start_search(request: Request) -> Response:
        return await started(request, workers.search_check_task, lambda body: _search_work(
            catalog(), validate_as(api.SearchRequest, body, "request"), currency))

    @router.post("/api/compare", status_code=202)
    async def start_compare(request: Request) -> Response:
        """One training job on several systems, each at its best layout: a job whose
        progress counts the systems done."""
        return await started(request, workers.compare_check_task, lambda body: _compare_work(
            catalog(), validate_as(api.CompareRequest, body, "request"), currency))

    @router.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> Response:
        return _job_answer(jobs.get(job_id), job_id)

    @router.delete("/api/jobs/{job_id}")
    def job_cancel(job_id: str) -> Response:
        return _job_answer(jobs.cancel(job_id), job_id)

    return router


Work = Callable[[Callable[[int, int], None]], dict[str, Any]]


def _job_answer(job: Job | None, job_id: str) -> Response:
    """A job's state, or 404 when there is no job ``job_id``."""
    return not_found(f"job {job_id}") if job is None else JSONResponse(job.as_dict())


def _search_work(cat: Catalog, req: api.SearchRequest, currency: str) -> Work:
    """The job of a search: its answer with the Pareto figure, the columns a person
    reads (as the CLI table and the report) and the job as run."""
    def work(progress: Callable[[int, int], None]) -> dict[str, Any]:
        found = api.run_search(cat, req, progress=progress).as_json()
        return (found | {"figures": {"pareto": figures_.pareto_figure(found)},
                         "columns": summary.row_labels(summary.SEARCH_COLUMNS),
                         "job": api.job_json(req)}
                | workers.priced(req.price_per_chip_hour, currency))

    return work


def _compare_work(cat: Catalog, req: api.CompareRequest, currency: str) -> Work:
    """The job of a comparison: its answer with its figures, the note on its budget,
    the rows a person reads (as the CLI table and the report) and the job as run."""
    def work(progress: Callable[[int, int], None]) -> dict[str, Any]:
        from ocplan.results.compare import budget_note

        result = api.run_compare(cat, req, progress=progress)
        found = result.as_json()
        return (found | {"figures": {
            "bars": figures_.compare_bars_figure(found, currency=currency),
            "pareto": figures_.compare_pareto_figure(found, currency)},
                         "budget_note": budget_note(result, currency),
                         "rows": summary.row_labels(summary.COMPARE_ROWS),
                         "job": api.job_json(req)}
                | workers.priced(req.price_per_chip_hour, currency))

    return work


def _form_routes(router: APIRouter, currency: str) -> None:
    """The declarations the page builds its forms from."""

    @router.get("/api/settings")
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

    @router.get("/api/choices")
    def choices() -> dict[str, list[str]]:
        """The values of the format fields (training precision, serving weight,
        activation, KV and recurrent-state formats): the workbench fills its selects
        with them."""
        return api.field_choices()

    @router.get("/api/training-options")
    def training_options() -> list[dict[str, object]]:
        """The options a training request takes (name, label, kind, default, bounds,
        choices, help): the workbench builds each training form's option inputs from
        them."""
        return api.training_option_fields()

    @router.get("/api/serving-options")
    def serving_options() -> list[dict[str, object]]:
        """The fields of a serving job (lengths, load, latency limits, formats,
        speculation), each with its label, kind, default, bounds, unit, choices and help:
        the workbench builds the serving form's job inputs from them."""
        return api.serving_option_json()

    @router.get("/api/layout")
    def layout_fields() -> list[dict[str, object]]:
        """The layout fields an estimate request takes (name, kind, default, bounds,
        choices, help): the workbench builds its layout form from them."""
        return api.layout_fields()

    @router.get("/api/search-layout")
    def search_layout_fields() -> list[dict[str, object]]:
        """The layout fields a search request takes (blank: searched, or the stack's
        default): the workbench builds its search form's layout inputs from them."""
        return api.search_layout_fields()

    @router.get("/api/serving-layout")
    def serving_layout_fields() -> list[dict[str, object]]:
        """The serving layout fields an inference request takes."""
        return api.serving_layout_fields()
