"""``/api/sweeps`` and the workbench's Sweeps tab: the sweeps of the results store, shown
again and run.

A thin client of :mod:`ocplan.sweep` (no formula or model constant lives here); the
store is the server's ``--db``, the one ``ocplan sweep --db`` writes to, so a sweep run
from the command line shows here and one run here shows in ``ocplan sweeps``.

- ``GET /api/sweeps``: every recorded sweep, the most recently run first
  (:func:`~ocplan.sweep.stored.list_sweeps`: name, kind, tasks, how many are stored),
  and ``example``: the example sweep file of a source checkout (``{"name", "text"}``,
  null in an installed package), which the page offers to edit and run.
- ``DELETE /api/sweeps/{name}``: forget a sweep's record (404 when none); its tasks'
  results stay stored, since another sweep may name them and a rerun finds them.
- ``GET /api/sweeps/{name}``: one sweep as its last run stored it
  (:meth:`~ocplan.sweep.stored.SweepView.as_json`: its spec and each task's best layout
  with its comparison columns), plus ``columns`` (``[field, heading]`` of its kind's
  table, as ``ocplan sweeps NAME`` prints them), ``figures.sweep`` (its key figure per
  task, :func:`~ocplan.reports.figures.sweep_figure`) and ``text`` (its spec as a sweep
  file, for the editor); 404 when none is recorded.
- ``POST /api/sweeps``: ``{"name": FILE, "text": YAML or JSON}``, a sweep file's text.
  The whole grid is checked first (422 with every problem, as ``ocplan sweep`` names
  them); then a job (202; poll ``/api/jobs/{id}``, cancel with ``DELETE``) runs the
  tasks not yet stored on a local process pool and answers the stored sweep as the GET
  does, with the run's counts (``skipped``, ``ran``, ``failed``).

Limits of a sweep run here (a server runs for people it does not know): it names
catalog chips, not system files (the server reads no file a request names), and at most
:data:`MAX_WEB_SWEEP_TASKS` tasks; a larger grid is for ``ocplan sweep``, on Ray if need
be.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from ocplan.catalog.catalog import Catalog
from ocplan.catalog.fields import Spec
from ocplan.catalog.loader import validate_as
from ocplan.errors import SpecError
from ocplan.jsonio import dumps
from ocplan.reports import figures as figures_
from ocplan.reports import summary
from ocplan.store.db import Store
from ocplan.sweep.runner import run_sweep
from ocplan.sweep.spec import Sweep, expand_sweep, grid_size, parse_sweep
from ocplan.sweep.stored import SweepView, list_sweeps, read_sweep, sweep_view
from ocplan.web.answers import BodyOf, not_found, submitted
from ocplan.web.jobs import JobRunner

__all__ = ["EXAMPLE_SWEEP", "MAX_SWEEP_TEXT_CHARS", "MAX_WEB_SWEEP_TASKS", "SweepFile",
           "sweep_router"]

#: The example sweep of a source checkout (absent from an installed package).
EXAMPLE_SWEEP = Path(__file__).resolve().parents[3] / "examples" / "sweep-small.yaml"

#: Most tasks a sweep started from the workbench may have. At the example sweeps' pace
#: (0.3-1 s a task on two cores) 256 tasks are a few minutes: as long as a page should
#: wait. A larger grid is for ``ocplan sweep``, which also runs it on a Ray cluster.
MAX_WEB_SWEEP_TASKS = 256
#: Longest sweep file text a request may carry (a sweep file is well under 4 kB).
MAX_SWEEP_TEXT_CHARS = 64 * 1024


class SweepFile(Spec):
    """A sweep file to run: its name (shown in messages) and its text."""

    name: Annotated[str, Field(min_length=1, max_length=200)] = "sweep"
    text: Annotated[str, Field(min_length=1, max_length=MAX_SWEEP_TEXT_CHARS)]


def _view_json(view: SweepView) -> dict[str, Any]:
    """A stored sweep as the page draws it: the view, its table's columns and figure,
    and its spec as the text of a sweep file (what the page's editor opens)."""
    columns = summary.SWEEP_COLUMNS_BY_KIND[view.kind]
    data = view.as_json()
    key_label = next((c.label for c in columns if c.field == view.key_figure),
                     view.key_figure)
    text = yaml.safe_dump({k: v for k, v in view.spec.items() if v is not None},
                          sort_keys=False)
    return data | {"columns": summary.row_labels(columns), "text": text,
                   "figures": {"sweep": figures_.sweep_figure(data, key_label)}}


def _checked(body: object, catalog: Catalog) -> Sweep:
    """The sweep a request names, its whole grid checked; a SpecError naming every
    problem (a system file, a grid over :data:`MAX_WEB_SWEEP_TASKS`, an unknown id)."""
    request = validate_as(SweepFile, body, "request")
    sweep = parse_sweep(request.text, request.name)
    if sweep.spec.systems is not None:
        raise SpecError.one(request.name, "systems", "the workbench runs sweeps over "
                            "catalog chips ('chips', with 'servers' if need be); run a "
                            "sweep of system files with 'ocplan sweep'",
                            sweep.spec.systems[0])
    if (n := grid_size(sweep.spec)) > MAX_WEB_SWEEP_TASKS:
        raise SpecError.one(request.name, "tasks", f"more than the {MAX_WEB_SWEEP_TASKS} "
                            "the workbench runs (models x chips x servers x cluster "
                            "sizes); run it with 'ocplan sweep'", n)
    expand_sweep(sweep, catalog)  # every id and size, before anything runs
    return sweep


def sweep_router(store: Store, jobs: JobRunner, catalog: Callable[[], Catalog],
                 body_of: BodyOf, workers: int) -> APIRouter:
    """The routes above over ``store``; sweeps run as ``jobs`` on ``workers`` processes."""
    router = APIRouter()

    @router.get("/api/sweeps")
    async def listing() -> Response:
        """Every sweep recorded in the results store, the most recently run first."""
        found = await run_in_threadpool(list_sweeps, store)
        example = ({"name": EXAMPLE_SWEEP.name,
                    "text": EXAMPLE_SWEEP.read_text(encoding="utf-8")}
                   if EXAMPLE_SWEEP.is_file() else None)
        return Response(dumps({"db": store.url, "sweeps": [s.as_json() for s in found],
                               "example": example}), media_type="application/json")

    @router.get("/api/sweeps/{name:path}")
    async def one(name: str) -> Response:
        """One stored sweep: each task's best layout, its columns and its figure."""
        found = await run_in_threadpool(store.sweep, name)
        if found is None:
            return not_found(f"sweep {name}")
        view = await run_in_threadpool(sweep_view, store, found)
        return Response(dumps(_view_json(view)), media_type="application/json")

    @router.delete("/api/sweeps/{name:path}")
    async def forget(name: str) -> Response:
        """Forget a sweep's record; its tasks' results stay stored (others may name
        them, and a rerun finds them)."""
        if not await run_in_threadpool(store.delete_sweep, name):
            return not_found(f"sweep {name}")
        return JSONResponse({"deleted": name})

    @router.post("/api/sweeps", status_code=202)
    async def start(request: Request) -> Response:
        """Run a sweep file's tasks not yet stored, as a job."""
        body = await body_of(request, "request")
        sweep = await run_in_threadpool(_checked, body, catalog())

        def work(progress: Callable[[int, int], None]) -> dict[str, Any]:
            report = run_sweep(sweep, store, "local", workers=workers, catalog=catalog(),
                               progress=progress)
            return _view_json(read_sweep(store, report.name)) | report.counts() | {
                "elapsed_s": report.elapsed_s,
                "errors": [{"key": k, "error": e} for k, e in report.failed.items()]}

        return submitted(jobs, work)

    return router
