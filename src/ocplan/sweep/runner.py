"""Run a sweep: skip what is stored, compute the rest in parallel, store as results come.

:func:`run_sweep` expands the grid (checking all of it first), asks the store which
keys it already holds, and sends the other tasks to a backend:

- ``local``: a pool of worker processes on this machine (``workers``, default one per
  CPU);
- ``ray``: Ray remote tasks on an existing cluster (``ray.init(address=...)``, see
  :mod:`ocplan.sweep.ray_backend`).

Each result is stored, in its own transaction, as soon as it arrives; a sweep killed
midway loses only its in-flight tasks and the next run picks up the rest. A task that
raises is reported as failed and not stored, so a rerun tries it again. Both backends
run the same :func:`run_task`, and a stored result leaves out the search's wall time
(kept in the ``elapsed_s`` column), so equal inputs give equal rows on either.

Testing hook: the environment variable ``OCPLAN_SWEEP_TASK_DELAY_S`` (seconds, read
by :func:`run_sweep` in the driver and passed to every task) makes each task sleep
that long before its search, so that a sweep can be interrupted reliably midway.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.errors import SpecError
from ocplan.store.db import Store, StoredResult, damaged_row
from ocplan.sweep.spec import AnySweepSpec, Sweep, Task, expand_sweep
from ocplan.version import code_version, source_digest

__all__ = ["BACKENDS", "DELAY_ENV", "SweepReport", "TaskOutput", "TaskRecord", "TaskRef",
           "TaskSummary",
           "check_options", "run_sweep", "run_task"]

BACKENDS: tuple[str, ...] = ("local", "ray")
DELAY_ENV = "OCPLAN_SWEEP_TASK_DELAY_S"


@dataclass(frozen=True)
class TaskOutput:
    """What a worker sends back: the search result as JSON data, its wall time, and
    the digest of the worker's code (a worker running other code is a failed task)."""

    result: dict[str, Any]
    elapsed_s: float
    source: str


#: Called with (task, output, None) on success or (task, None, error message) on failure.
OnDone = Callable[[Task, TaskOutput | None, str | None], None]


def run_task(task: Task, delay_s: float = 0.0) -> TaskOutput:
    """Run one task's search (in a worker process): its result (:meth:`Task.run
    <ocplan.sweep.spec.Task.run>`) less its wall time, which the store keeps apart."""
    if delay_s > 0:
        time.sleep(delay_s)
    t0 = time.perf_counter()
    result = task.run()
    result.pop("elapsed_s", None)  # a search's own timer: the row would differ run to run
    return TaskOutput(result, time.perf_counter() - t0, source_digest())


Status = Literal["stored", "new", "failed", "missing"]


class TaskRef(Protocol):
    """What a sweep's table shows of a task: a :class:`~ocplan.sweep.spec.Task` just
    run, or a :class:`TaskRecord` read back from the store."""

    @property
    def key(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def hardware(self) -> str: ...
    @property
    def chip(self) -> str: ...
    @property
    def chips(self) -> int: ...


@dataclass(frozen=True)
class TaskRecord:
    """A task as a sweep's record in the store names it (:meth:`Store.put_sweep
    <ocplan.store.db.Store.put_sweep>`): enough to show its row, not to run it."""

    key: str
    model_name: str
    hardware: str
    chip: str
    chips: int

    @classmethod
    def of(cls, task: TaskRef) -> TaskRecord:
        return cls(task.key, task.model_name, task.hardware, task.chip, task.chips)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "model": self.model_name, "hardware": self.hardware,
                "chip": self.chip, "chips": self.chips}

    @classmethod
    def from_json(cls, data: object) -> TaskRecord | None:
        """The record, or None when ``data`` is not one (a hand-edited store)."""
        if not isinstance(data, dict):
            return None
        key, model, hardware, chip, chips = (data.get(k) for k in (
            "key", "model", "hardware", "chip", "chips"))
        if not (isinstance(key, str) and isinstance(model, str) and isinstance(hardware, str)
                and isinstance(chip, str) and isinstance(chips, int)
                and not isinstance(chips, bool)):
            return None
        return cls(key, model, hardware, chip, chips)


@dataclass(frozen=True)
class TaskSummary:
    """One task of a sweep, for display: its status and best layout."""

    task: TaskRef
    status: Status
    """``stored`` (found in the store, not run), ``new`` (run now), ``failed``, or
    ``missing`` (a stored sweep's task with no stored result: it failed or never ran)."""
    error: str | None
    best: dict[str, Any] | None
    """The best layout with its figures (None when failed or nothing fits)."""
    row: dict[str, Any] | None = None
    """The best layout in the columns of ``ocplan compare`` (None when failed)."""

    def as_json(self) -> dict[str, Any]:
        return {"key": self.task.key, "model": self.task.model_name,
                "hardware": self.task.hardware, "chip": self.task.chip,
                "chips": self.task.chips, "status": self.status, "error": self.error,
                "best": self.best, "row": self.row}


def stored_results(store: Store, tasks: Sequence[TaskRef], key_figure: str
                   ) -> list[StoredResult | None]:
    """Each task's stored row (None where none is stored), in order; a SpecError naming
    every stored row that is not a sweep result (a damaged or hand-edited store)."""
    stored = store.get_many(t.key for t in tasks)
    damaged = [damaged_row(store.url, t.key, why) for t in tasks
               if (row := stored.get(t.key)) is not None
               and (why := _unreadable(row.result, key_figure)) is not None]
    if damaged:
        raise SpecError(damaged)
    return [stored.get(t.key) for t in tasks]


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did: its tasks, which were already stored, run now, or failed."""

    name: str
    backend: str
    tasks: tuple[Task, ...]
    skipped: frozenset[str]
    """Keys found in the store (not run)."""
    ran: frozenset[str]
    """Keys computed and stored by this run."""
    failed: dict[str, str] = field(default_factory=dict)
    """Key to error message, for tasks that raised (not stored)."""
    elapsed_s: float = 0.0

    def counts(self) -> dict[str, int]:
        return {"tasks": len(self.tasks), "skipped": len(self.skipped), "ran": len(self.ran),
                "failed": len(self.failed)}

    def summaries(self, store: Store) -> list[TaskSummary]:
        """Each task in grid order with its stored best layout; a SpecError naming every
        stored row that is not a sweep result (a damaged or hand-edited store)."""
        if not self.tasks:
            return []
        rows = stored_results(store, self.tasks, self.tasks[0].key_figure)
        out: list[TaskSummary] = []
        for t, row in zip(self.tasks, rows, strict=True):
            status: Status = ("failed" if t.key in self.failed
                              else "new" if t.key in self.ran else "stored")
            out.append(TaskSummary(t, status, self.failed.get(t.key),
                                   None if row is None else row.result.get("best"),
                                   None if row is None else row.result.get("row")))
        return out


def _unreadable(result: object, key_figure: str) -> str | None:
    """Why a stored result is not a sweep result (None when it is): an object whose
    ``best`` and ``row`` are objects or null, the best with its rate (``key_figure``,
    the task kind's) a number."""
    if not isinstance(result, dict):
        return "its stored result is not a JSON object"
    best, row = result.get("best"), result.get("row")
    if not isinstance(best, dict | None) or not isinstance(row, dict | None):
        return "its stored best layout is not a JSON object"
    if best is not None and not isinstance(best.get(key_figure), int | float):
        return f"its stored {key_figure} is not a number"
    return None


def _delay_from_env() -> float:
    text = os.environ.get(DELAY_ENV, "").strip()
    if not text:
        return 0.0
    try:
        delay = float(text)
    except ValueError:
        delay = math.nan
    if not 0 <= delay <= 3600:
        raise SpecError.one(DELAY_ENV, "", "expected a number of seconds between 0 and 3600",
                            text)
    return delay


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _run_local(tasks: Sequence[Task], workers: int, delay_s: float,
               on_done: OnDone) -> None:
    # spawn: fresh interpreters, as on a Ray cluster (no state inherited from the driver).
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx)
    try:
        pending: dict[Future[TaskOutput], Task] = {
            pool.submit(run_task, t, delay_s): t for t in tasks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                task = pending.pop(fut)
                try:
                    output = fut.result()
                except BrokenProcessPool as exc:
                    on_done(task, None, f"worker process died ({exc})")
                except Exception as exc:
                    on_done(task, None, _error_text(exc))
                else:
                    on_done(task, output, None)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_options(backend: str, address: str | None, workers: int | None) -> None:
    """Raise SpecError for an unknown backend, bad workers, or an address without Ray."""
    if backend not in BACKENDS:
        raise SpecError.one("--backend", "backend", f"expected one of {', '.join(BACKENDS)}",
                            backend)
    if workers is not None and not 1 <= workers <= 10_000:
        raise SpecError.one("--workers", "workers", "must be between 1 and 10,000", workers)
    if address is not None and backend != "ray":
        raise SpecError.one("--address", "address", "only for --backend ray", address)
    _delay_from_env()


def run_sweep(sweep: Sweep | AnySweepSpec, store: Store, backend: str = "local",
              address: str | None = None, workers: int | None = None, *,
              catalog: Catalog | None = None,
              progress: Callable[[int, int], None] | None = None,
              ray_stall_s: float | None = None) -> SweepReport:
    """Run every task of ``sweep`` not yet in ``store``; store each result as it comes.

    Parameters
    ----------
    backend
        ``local`` (process pool) or ``ray`` (remote tasks on a Ray cluster).
    address
        Ray only: the cluster to join (``host:port`` of its GCS, or ``auto``); None
        joins the cluster named by ``RAY_ADDRESS`` or starts a local one.
    workers
        local: worker processes (default: CPUs); ray: tasks in flight at once (default:
        the cluster's CPUs).
    progress
        Called with (finished, to run) after each task.
    ray_stall_s
        Ray only: seconds without a finished task before the sweep gives up on the
        cluster (default :data:`~ocplan.sweep.ray_backend.RAY_STALL_S`).

    Raises
    ------
    SpecError
        For a bad grid (before anything runs), an unknown backend, bad workers, or a
        Ray cluster that cannot be reached or runs nothing.
    """
    t0 = time.perf_counter()
    check_options(backend, address, workers)
    delay_s = _delay_from_env()
    sweep = sweep if isinstance(sweep, Sweep) else Sweep(sweep)
    code, source = code_version(), source_digest()
    tasks = expand_sweep(sweep, catalog if catalog is not None else load_catalog(), code)
    stored = store.stored_keys(t.key for t in tasks)
    todo = [t for t in tasks if t.key not in stored]
    ran: set[str] = set()
    failed: dict[str, str] = {}

    def on_done(task: Task, output: TaskOutput | None, error: str | None) -> None:
        if output is not None and output.source != source:
            error = (f"the worker runs other ocplan code (source digest {output.source}, "
                     f"this driver {source}): install the same code on both")
            output = None
        if output is None:
            failed[task.key] = error or "failed"
        else:
            store.put(task.key, kind=task.store_kind, inputs=task.inputs, result=output.result,
                      elapsed_s=output.elapsed_s, code=code, sweep=sweep.spec.name)
            ran.add(task.key)
        if progress is not None:
            progress(len(ran) + len(failed), len(todo))

    if todo:
        if backend == "local":
            _run_local(todo, workers or os.cpu_count() or 1, delay_s, on_done)
        else:
            from ocplan.sweep.ray_backend import RAY_STALL_S, run_ray
            run_ray(todo, on_done, address=address, workers=workers, delay_s=delay_s,
                    stall_s=RAY_STALL_S if ray_stall_s is None else ray_stall_s)
    # what the sweep names, for showing it again from the store (ocplan.sweep.stored)
    store.put_sweep(sweep.spec.name, kind=sweep.spec.kind,
                    spec=sweep.spec.model_dump(mode="json"),
                    tasks=[TaskRecord.of(t).as_json() for t in tasks], code=code)
    return SweepReport(sweep.spec.name, backend, tuple(tasks), frozenset(stored),
                       frozenset(ran), failed, time.perf_counter() - t0)
