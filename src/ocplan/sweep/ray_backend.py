"""The ``ray`` sweep backend: each task a Ray remote task on an existing cluster.

The driver joins the cluster with ``ray.init(address=...)`` (unless this process has
already joined one), keeps at most ``workers`` tasks in flight (default: the cluster's
CPUs), and hands each result back as soon as it is ready. Tasks are not retried: a task
that raises, or whose worker dies, is reported as failed and rerun by the next sweep.

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
from ocplan.sweep.spec import SweepTask

if TYPE_CHECKING:
    from ocplan.sweep.runner import OnDone

__all__ = ["run_ray"]


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


def run_ray(tasks: Sequence[SweepTask], on_done: OnDone, *, address: str | None,
            workers: int | None, delay_s: float) -> None:
    """Run ``tasks`` as Ray remote tasks, calling ``on_done`` for each as it finishes.

    Raises
    ------
    SpecError
        When Ray is not installed or no cluster answers at ``address``.
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
        pending: dict[Any, SweepTask] = {}
        while queue or pending:
            while queue and len(pending) < limit:
                task = queue.pop()
                pending[remote.remote(task, delay_s)] = task
            done, _ = ray.wait(list(pending), num_returns=1)
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
