"""The ``ray`` sweep backend: each task a Ray remote task on an existing cluster.

The driver joins the cluster with ``ray.init(address=...)`` (unless this process has
already joined one), keeps at most ``workers`` tasks in flight (default: the cluster's
CPUs), and hands each result back as soon as it is ready. Tasks are not retried: a task
that raises, or whose worker dies, is reported as failed and rerun by the next sweep. A
cluster that finishes no task for :data:`RAY_STALL_S` seconds (its workers never
registered, or no node has a free CPU) ends the sweep with one clear line instead of a
wait without end; what finished before is stored, so the next sweep resumes.

The cluster's nodes must have ocplan installed at the driver's version (tasks carry
resolved workloads and systems, never file paths, so no spec files need to be there).
Ray is an optional dependency: ``pip install 'ocplan[ray]'``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ocplan.errors import SpecError
from ocplan.sweep.spec import Task

if TYPE_CHECKING:
    from ocplan.sweep.runner import OnDone

__all__ = ["RAY_STALL_S", "run_ray"]

#: Seconds a Ray sweep waits for the next task to finish before it gives up on the
#: cluster. A sweep task is one estimate or one layout search (seconds, a minute for the
#: largest spaces), so fifteen minutes without a result means no worker is running it:
#: Ray itself waits forever for workers that never register (the raylet logs "Some
#: workers of the worker process have not registered within the timeout") or for a CPU
#: that no node has.
RAY_STALL_S = 900.0


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SpecError.one("--backend", "backend", "Ray is not installed; install it with "
                                                    "pip install 'ocplan[ray]'",
                            "ray") from None
    return ray


def _unreachable(address: str, timeout_s: float = 5.0) -> str | None:
    """Why a ``host:port`` address takes no TCP connection, or None (also for addresses
    of other forms: ``auto``, ``ray://...``). Ray itself retries an absent cluster for
    minutes; this check fails fast instead."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or "/" in address or not port.isdigit():
        return None
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__


def run_ray(tasks: Sequence[Task], on_done: OnDone, *, address: str | None,
            workers: int | None, delay_s: float, stall_s: float = RAY_STALL_S) -> None:
    """Run ``tasks`` as Ray remote tasks, calling ``on_done`` for each as it finishes.

    Raises
    ------
    SpecError
        When Ray is not installed, no cluster answers at ``address``, or the cluster
        finishes no task in ``stall_s`` seconds (:data:`RAY_STALL_S`).
    """
    from ocplan.sweep.runner import run_task

    ray = _import_ray()
    joined = False
    if not ray.is_initialized():
        reason = _unreachable(address) if address else None
        if reason is not None:
            raise SpecError.one("--address", "address", f"no Ray cluster answers there: "
                                                        f"{reason}", address)
        try:
            ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            raise SpecError.one("--address", "address", f"cannot join a Ray cluster there: "
                                                        f"{reason}", address) from None
        joined = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_task)
        limit = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        queue = list(reversed(tasks))
        pending: dict[Any, Task] = {}
        while queue or pending:
            while queue and len(pending) < limit:
                task = queue.pop()
                pending[remote.remote(task, delay_s)] = task
            done, _ = ray.wait(list(pending), num_returns=1, timeout=stall_s)
            if not done:
                for ref in pending:
                    ray.cancel(ref, force=True)
                raise SpecError.one("--address", "address", f"the Ray cluster there "
                                    f"finished no task in {stall_s:g} s: no worker is "
                                    "running them (workers that never registered, or no "
                                    "free CPU on any node); results so far are stored",
                                    address or "auto")
            for ref in done:
                task = pending.pop(ref)
                try:
                    output = ray.get(ref)
                except Exception as exc:  # RayTaskError, WorkerCrashedError, ...
                    cause = getattr(exc, "cause", None)
                    err = cause if isinstance(cause, BaseException) else exc
                    lines = str(err).strip().splitlines()
                    on_done(task, None, f"{type(err).__name__}: {lines[0] if lines else ''}")
                else:
                    on_done(task, output, None)
    finally:
        if joined:
            ray.shutdown()
