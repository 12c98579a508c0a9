"""The workbench's CPU-bound work (check, topology, estimate) in worker processes.

Why: a request handler of the ASGI server runs on its event loop, so a computation done
inline freezes every other request, ``/api/health`` included, for as long as it takes
(a topology of 4,096 servers once took about 50 s). Threads do not help: the work is pure
Python under the GIL, and a thread cannot be stopped. So each computation is a task in a
:class:`pebble.ProcessPool`:

* the event loop only awaits the task's future, so it keeps answering;
* a task over the time limit is killed with its worker process (pebble starts a new
  one), so a runaway request cannot hold a worker for ever;
* at most ``workers + queue`` tasks are in the pool at once; one more is refused at once
  (:class:`PoolBusy`) instead of piling up memory and latency.

A task function is module-level (pickled by reference), takes the parsed JSON body and
the catalog folders, and returns an :class:`Answer` of plain data: the response body as
JSON text (serialized in the worker, off the event loop) or the one-line problems of a
:class:`~ocplan.errors.SpecError`. The exception itself is not sent back: its
constructor takes the list of problems while pickling replays the message string, so it
would not survive the trip.

Workers start with the ``forkserver`` method and this module preloaded in the fork
server: a new worker (at start, and after each kill) is a fork of a process that has
already imported ocplan (about 1 s saved per start), and nothing forks the server process
itself, which runs threads (uvicorn may run in a thread; pebble runs three). Where
``forkserver`` is missing (Windows) ``spawn`` is used.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import multiprocessing
import multiprocessing.context
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pebble import ProcessExpired, ProcessPool

from ocplan import api
from ocplan.catalog.catalog import Catalog, load_catalog
from ocplan.catalog.loader import validate_as
from ocplan.errors import Infeasible, SpecError
from ocplan.jsonio import dumps
from ocplan.reports import figures as figures_
from ocplan.reports import summary
from ocplan.units import DEFAULT_CURRENCY

__all__ = ["DEFAULT_QUEUE", "DEFAULT_TIMEOUT_S", "DEFAULT_WORKERS", "Answer", "PoolBusy",
           "PoolFailure", "PoolTimeout", "Task", "WorkerPool", "check_task", "compare_check_task",
           "estimate_task", "infer_task", "priced", "search_check_task", "topology_task"]

#: Worker processes: one per core of the small machines the workbench runs on, so two
#: slow requests run side by side while the server process keeps a core's share.
DEFAULT_WORKERS = 2
#: Requests that may wait for a worker beyond those running. The page sends two at a time
#: (check and topology); 16 leaves room for several tabs while bounding what waits (each
#: holds a body of up to 256 KiB and a client that gets its answer late).
DEFAULT_QUEUE = 16
#: Longest a request may take, queueing included. Legitimate requests take well under a
#: second; the slowest seen (a 1,024-server topology drawn in full, before the topology
#: code learned to summarize large clusters) took 6 s on two cores. Ten times that still
#: answers a person who waits, and frees a stuck worker within a minute.
DEFAULT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Answer:
    """What a task sends back: ``body`` (JSON text of a 200 answer) or ``problems``
    (the one-line messages of bad input, for a 422)."""

    body: str | None = None
    problems: tuple[str, ...] = ()


#: A task: module-level, (parsed JSON body, catalog folders) -> Answer.
Task = Callable[[object, tuple[str, ...]], Answer]


class PoolBusy(Exception):
    """Every worker is busy and the queue is full (HTTP 503)."""


class PoolTimeout(Exception):
    """A request ran past the time limit; its task was dropped or killed (HTTP 504)."""


class PoolFailure(Exception):
    """A worker process died under a task (killed by the OS, crashed) (HTTP 500)."""


# ---- tasks (run in the worker processes) ---------------------------------------------

@functools.lru_cache(maxsize=4)
def _catalog(catalog_dirs: tuple[str, ...]) -> Catalog:
    """The catalog, read once per worker process and folder list."""
    return load_catalog(catalog_dirs)


def _answer(compute: Callable[[], object], source: str = "system") -> Answer:
    """``compute()`` as JSON text, or one-line problems for a 422: the lines of the
    SpecError it raised, or the reason a design is too large to compute at all (a board
    beyond the graph limits raises Infeasible)."""
    try:
        return Answer(body=dumps(compute()))
    except SpecError as exc:
        return Answer(problems=tuple(p.line() for p in exc.problems))
    except Infeasible as exc:
        return Answer(problems=(f"{source}: {exc.detail}",))


def _read_catalog(catalog_dirs: tuple[str, ...]) -> None:
    _catalog(catalog_dirs)


def _warm(catalog_dirs: tuple[str, ...]) -> None:
    """Worker initializer: read the catalog before the first request needs it. A bad
    user catalog must not fail the initializer (pebble would give the pool up): each
    request then answers 422 with the catalog's problems (lru_cache keeps no errors)."""
    _answer(functools.partial(_read_catalog, catalog_dirs))


def _ping(_body: object, catalog_dirs: tuple[str, ...]) -> Answer:
    """A task that only reads the catalog: awaiting it waits until a worker is up."""
    return _answer(functools.partial(_read_catalog, catalog_dirs))


def check_task(body: object, catalog_dirs: tuple[str, ...]) -> Answer:
    """Compliance findings of the system mapping ``body``."""
    def compute() -> dict[str, Any]:
        system = api.system_from_mapping(body, _catalog(catalog_dirs))
        findings = api.check_system(system)
        return {"system": system.spec.name, "chips": system.num_chips,
                "errors": sum(f.severity == "error" for f in findings),
                "warnings": sum(f.severity == "warning" for f in findings),
                "findings": [f.as_dict() for f in findings]}
    return _answer(compute)


def topology_report(body: object, catalog_dirs: tuple[str, ...]) -> dict[str, Any]:
    """Topology summary, power, drawable graphs and their figures (plain data)."""
    system = api.system_from_mapping(body, _catalog(catalog_dirs))
    report = api.topology_report(system)
    figs = {"topology": figures_.topology_figure(report)}
    if report["cluster"]["nodes"]:
        figs["cluster"] = figures_.cluster_figure(report)
    return report | {"figures": figs}


def topology_task(body: object, catalog_dirs: tuple[str, ...]) -> Answer:
    """Topology report of the system mapping ``body``."""
    return _answer(lambda: topology_report(body, catalog_dirs))


def priced(price: object, currency: str) -> dict[str, str]:
    """``{"currency": label}`` for an answer holding costs (the request gave a price), as
    the CLI's JSON answers carry it; nothing without a price."""
    return {} if price is None else {"currency": currency}


def estimate_task(body: object, catalog_dirs: tuple[str, ...],
                  currency: str = DEFAULT_CURRENCY) -> Answer:
    """Estimate of the EstimateRequest ``body``, with its timeline, what each hardware
    resource buys it (sensitivity) and figures; its cost to train (with a price)
    labelled ``currency``."""
    def compute() -> dict[str, Any]:
        req = validate_as(api.EstimateRequest, body, "request")
        result, system, workload = api.run_estimate(_catalog(catalog_dirs), req)
        timeline = api.pipeline_timeline(result, workload)
        figures = {}
        if result.feasible:
            figures = {"breakdown": figures_.breakdown_figure(result),
                       "memory": figures_.memory_figure(result),
                       "timeline": figures_.timeline_figure(
                           timeline, result.plan.micro_batches(workload),
                           result.pipeline_runs)}
        out: dict[str, Any] = result.as_dict() | {"system": system.spec.name,
                                                  "layout": result.plan.label(),
                                                  "timeline": timeline, "figures": figures,
                                                  "hint": api.infeasible_hint(
                                                      result.reason, plan=result.plan,
                                                      experts=workload.model.moe_experts)}
        sens = api.run_sensitivity(result, workload, system, req.sensitivity)
        if sens is not None:
            figures["sensitivity"] = figures_.sensitivity_figure(sens)
        out["sensitivity"] = sens.as_dict() if sens is not None else None
        train = api.to_train(result, req.train_tokens, req.price_per_chip_hour, system)
        out |= train
        view = api.outlook(result, workload, system, req.train_tokens,
                           req.price_per_chip_hour)
        cluster = view.as_json()
        # the rows a person reads, as the CLI table and the report label and format them
        out["summary"] = [list(r) for r in summary.estimate_rows(
            result, train, currency, system.accelerator.family, api.job_json(req),
            workload.model.moe_experts)]
        out["cluster_summary"] = ([list(r) for r in summary.cluster_rows(view, currency)]
                                  if result.feasible else [])
        if result.feasible:
            figures["power_flow"] = figures_.power_flow_figure(
                cluster["facility"]["power_flow"])
        if cluster["goodput"] is not None:
            figures["goodput"] = figures_.goodput_figure(cluster["goodput"]["fractions"])
        return (out | api.trust(system, req.allow_invalid) | {"cluster": cluster}
                | {"job": api.job_json(req)} | priced(req.price_per_chip_hour, currency))
    return _answer(compute)


def infer_task(body: object, catalog_dirs: tuple[str, ...],
               currency: str = DEFAULT_CURRENCY) -> Answer:
    """Serving estimate of the InferRequest ``body``, with its throughput-latency curve,
    what each hardware resource buys it (sensitivity) and figures; with a price, the cost
    of a million output tokens (as ``ocplan infer``) labelled ``currency``."""
    def compute() -> dict[str, Any]:
        req = validate_as(api.InferRequest, body, "request")
        view = api.run_infer_view(_catalog(catalog_dirs), req)
        result, curve, system, sens = view.result, view.curve, view.system, view.sensitivity
        figures: dict[str, Any] = {}
        if sens is not None and sens.feasible:
            figures["sensitivity"] = figures_.serving_sensitivity_figure(sens)
        if result.feasible and result.iteration is not None:
            figures["breakdown"] = figures_.serving_breakdown_figure(result)
        if curve is not None:
            figures["curve"] = figures_.serving_curve_figure(
                curve, result.tpot_s if result.feasible else None,
                result.output_tokens_per_s_per_chip if result.feasible else None,
                None if result.latency_range is None else result.latency_range.tpot_s)
        job = api.serving_job_json(req)
        out: dict[str, Any] = result.as_dict() | {
            "job": job, "system": system.spec.name, "layout": result.plan.label(),
            "curve": None if curve is None else curve.as_dict(), "figures": figures,
            "sensitivity": None if sens is None else sens.as_dict(),
            "hint": api.infeasible_hint(result.reason, serving=True)}
        price = req.price_per_chip_hour
        if price is not None:
            out["cost_per_mtok"] = result.cost_per_mtok(price)
        # the rows a person reads, as the CLI table labels and formats them
        out["summary"] = [list(r) for r in summary.serving_rows(
            result, out.get("cost_per_mtok"), currency, system.accelerator.family, job)]
        run = view.simulation
        out["simulation"] = None if run is None else run.as_dict()
        out["simulation_summary"] = None if run is None \
            else [list(r) for r in summary.simulation_rows(run)]
        return out | api.trust(system, req.allow_invalid) | priced(price, currency)
    return _answer(compute)


def infer_compare_task(body: object, catalog_dirs: tuple[str, ...],
                       currency: str = DEFAULT_CURRENCY) -> Answer:
    """The InferCompareRequest ``body``: each system's best serving layout side by side
    (as ``ocplan infer --search --vs``); the others are chip ids, never server paths."""
    def compute() -> dict[str, Any]:
        req = validate_as(api.InferCompareRequest, body, "request")
        found = api.run_infer_compare(_catalog(catalog_dirs), req, req.vs, req.prices,
                                      files=False, target_rate_per_s=req.target_rate_per_s,
                                      availability=req.availability, repair_s=req.repair_s)
        # the rows a person reads, as the CLI table and the report label them
        return (found.as_json() | {"job": api.serving_job_json(req),
                                   "rows": summary.row_labels(summary.SERVING_COMPARE_ROWS)}
                | priced(req.prices or req.price_per_chip_hour, currency))
    return _answer(compute)


def search_check_task(body: object, catalog_dirs: tuple[str, ...]) -> Answer:
    """Validate a SearchRequest and resolve its system, so bad input fails before a
    search job is queued (the search itself runs as a job with progress)."""
    def compute() -> dict[str, Any]:
        req = validate_as(api.SearchRequest, body, "request")
        catalog = _catalog(catalog_dirs)
        system = api.job_system(catalog, req.chip, req.system, req.chips)
        api.check_search(catalog, req, system)
        api.guard(system, req.allow_invalid)  # an invalid system is refused now
        return {"system": system.spec.name, "chips": system.num_chips}
    return _answer(compute, "request")


def compare_check_task(body: object, catalog_dirs: tuple[str, ...]) -> Answer:
    """Validate a CompareRequest and resolve its systems, so bad input fails before a
    comparison job is queued."""
    def compute() -> dict[str, Any]:
        req = validate_as(api.CompareRequest, body, "request")
        catalog = _catalog(catalog_dirs)
        systems = api.compare_systems(catalog, req)
        api.check_compare(catalog, req, systems)
        return {"systems": [t.name for t in systems]}
    return _answer(compute, "request")


# ---- the pool (used from the server's event loop) ------------------------------------

def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        # Only takes effect if the fork server is not running yet (it is shared by the
        # whole process); a fork server started without it is just slower to fork from.
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


class WorkerPool:
    """Tasks in worker processes, with a bounded queue and a time limit per request.

    :meth:`run` is called from one event loop only (the server's); it counts the tasks in
    flight there without a lock. :meth:`start` and :meth:`shutdown` are for the app's
    lifespan; a pool used before :meth:`start` starts itself.
    """

    def __init__(self, catalog_dirs: tuple[str, ...], workers: int = DEFAULT_WORKERS,
                 queue: int = DEFAULT_QUEUE,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if workers < 1 or queue < 0 or not timeout_s > 0:
            raise ValueError(f"need workers >= 1, queue >= 0 and timeout_s > 0; got "
                             f"{workers}, {queue} and {timeout_s}")
        self.workers = workers
        self.queue = queue
        self.timeout_s = timeout_s
        self._catalog_dirs = catalog_dirs
        self._pool: ProcessPool | None = None
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Tasks running or waiting now."""
        return self._in_flight

    def _started(self) -> ProcessPool:
        with self._lock:
            if self._pool is not None and not self._pool.active:
                # pebble gives up for good when workers die with no task running (an
                # idle worker killed by the OS, an initializer that failed): start anew.
                broken, self._pool = self._pool, None
                broken.stop()  # type: ignore[no-untyped-call]  # pebble lacks hints
                broken.join()
            if self._pool is None:
                self._pool = ProcessPool(max_workers=self.workers, initializer=_warm,
                                         initargs=[self._catalog_dirs], context=_context())
            return self._pool

    async def start(self) -> None:
        """Start the workers and wait (at most the time limit) until one answers, so the
        first request does not pay for the start."""
        try:
            future = self._started().schedule(_ping, args=[None, self._catalog_dirs],
                                              timeout=self.timeout_s)
            await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
        except (TimeoutError, ProcessExpired, RuntimeError):
            pass  # the first request will tell (500 naming why); the server must come up

    async def run(self, task: Task, body: object) -> Answer:
        """Run ``task(body, catalog_dirs)`` in a worker.

        Raises
        ------
        PoolBusy
            When ``workers + queue`` tasks are already in flight.
        PoolTimeout
            When the answer is not there within the time limit (counted from now, so
            waiting in the queue counts); the task is dropped, or killed with its worker.
        PoolFailure
            When the worker process died under the task.
        """
        if self._in_flight >= self.workers + self.queue:
            raise PoolBusy(f"server busy: {self._in_flight} computations running or "
                           f"queued (at most {self.workers + self.queue}); try again shortly")
        self._in_flight += 1
        try:
            # pebble's own timeout counts from the task's start in a worker: it kills a
            # task that started late, once the request has already been answered 504.
            try:
                future = self._started().schedule(task, args=[body, self._catalog_dirs],
                                                  timeout=self.timeout_s)
            except RuntimeError as exc:  # pebble: the pool failed (its threads died)
                raise PoolFailure(f"the worker pool is not running ({exc})") from None
            try:
                # On timeout wait_for cancels the wrapper, which cancels the pebble
                # future: a queued task is dropped, a running one killed with its worker.
                answer = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout_s)
            except TimeoutError:
                future.cancel()  # type: ignore[no-untyped-call]  # pebble lacks hints
                raise PoolTimeout(f"the computation took longer than the limit of "
                                  f"{self.timeout_s:g} s and was stopped") from None
            except ProcessExpired as exc:
                raise PoolFailure(f"the worker process computing the request died (exit "
                                  f"code {exc.exitcode})") from None
        finally:
            self._in_flight -= 1
        assert isinstance(answer, Answer), type(answer)
        return answer

    def shutdown(self) -> None:
        """Stop the workers (killing running tasks) and the pool's threads."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()  # type: ignore[no-untyped-call]  # pebble lacks hints
            pool.join()
            del pool
            # The pool's locks are named semaphores held in reference cycles: free them
            # now, so they are unlinked even when the process then dies by a signal
            # (uvicorn re-raises SIGTERM after a graceful shutdown, which skips atexit).
            gc.collect()
