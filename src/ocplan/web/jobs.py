"""Background jobs for long requests (searches): progress to poll, and cancellation.

Jobs run on a small thread pool (a search reports progress and checks for cancellation
through a callback, which a thread shares for free). At most ``workers + queue`` jobs are
queued or running at once; one more is refused with :class:`JobsBusy` (HTTP 503) rather
than waiting behind an unbounded line of searches.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ocplan.errors import SpecError

__all__ = ["DEFAULT_JOB_QUEUE", "Cancelled", "Job", "JobRunner", "JobsBusy", "spec_problems"]

#: Jobs that may wait for a job worker. A search takes seconds; eight waiting ones are a
#: minute's work for two workers, which is as far ahead as anyone should queue.
DEFAULT_JOB_QUEUE = 8


class Cancelled(Exception):
    """Raised inside a job's progress callback once the job has been cancelled."""


class JobsBusy(Exception):
    """Every job worker is busy and the queue is full (HTTP 503)."""


@dataclass
class Job:
    id: str
    status: str = "queued"
    """queued, running, done, cancelled or error."""
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    error: list[str] | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "done": self.done, "total": self.total,
                "result": self.result, "error": self.error}


def spec_problems(exc: Exception) -> list[str] | None:
    """A job's failure as one-line problems when it is bad input (else None: a bug)."""
    if isinstance(exc, SpecError):
        return [p.line() for p in exc.problems]
    return None


class JobRunner:
    """Runs jobs on a small thread pool; keeps the most recent ones for polling."""

    def __init__(self, workers: int = 2, keep: int = 200,
                 queue: int = DEFAULT_JOB_QUEUE) -> None:
        if workers < 1 or queue < 0 or keep < workers + queue:
            raise ValueError(f"need workers >= 1, queue >= 0 and keep >= workers + queue; "
                             f"got {workers}, {queue} and {keep}")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocplan-job")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep
        self._capacity = workers + queue

    def submit(self, work: Callable[[Callable[[int, int], None]], dict[str, Any]],
               on_error: Callable[[Exception], list[str] | None]) -> Job:
        """Run ``work(progress)``; ``on_error`` turns an expected exception into message
        lines (None re-raises it as a bug).

        Raises
        ------
        JobsBusy
            When ``workers + queue`` jobs are queued or running already.
        """
        job = Job(uuid.uuid4().hex)
        with self._lock:
            # a job cancelled while queued frees its place at once; a running one when
            # its search notices (at its next progress report)
            pending = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if pending >= self._capacity:
                raise JobsBusy(f"server busy: {pending} searches running or queued (at "
                               f"most {self._capacity}); try again later")
            self._jobs[job.id] = job
            # forget the oldest finished jobs (never a pending one: it is counted above)
            finished = [k for k, j in self._jobs.items()
                        if j.status not in ("queued", "running")]
            for key in finished[:max(0, len(self._jobs) - self._keep)]:
                del self._jobs[key]

        def progress(done: int, total: int) -> None:
            if job.cancel.is_set():
                raise Cancelled
            job.done, job.total = done, total

        def run() -> None:
            if job.cancel.is_set():
                job.status = "cancelled"
                return
            job.status = "running"
            try:
                job.result = work(progress)
                job.status = "done"
            except Cancelled:
                job.status = "cancelled"
            except Exception as exc:
                lines = on_error(exc)
                job.status = "error"
                job.error = lines or [f"internal error: {type(exc).__name__}"]
                if lines is None:
                    raise

        self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None:
            job.cancel.set()
            if job.status == "queued":
                job.status = "cancelled"
        return job

    def shutdown(self) -> None:
        for job in list(self._jobs.values()):
            job.cancel.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
