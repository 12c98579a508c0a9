"""Sweeps read back from the store: what each names and each task's best layout.

A sweep's run records its spec and its tasks in grid order (:meth:`Store.put_sweep
<ocplan.store.db.Store.put_sweep>`, last run wins), and every finished task's result is
stored by content key. So a sweep can be shown again, by ``ocplan sweeps NAME`` or the
workbench, from the store alone: no sweep file, no catalog, nothing run. A task whose
result is not stored (it failed, or its run was cut short) is shown as ``missing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocplan.errors import Problem, SpecError
from ocplan.store.db import Store, StoredSweep
from ocplan.sweep.runner import TaskRecord, TaskSummary, stored_results
from ocplan.sweep.spec import TASK_KINDS

__all__ = ["MISSING", "SweepListing", "SweepView", "forget_sweep", "list_sweeps", "read_sweep",
           "sweep_view"]

#: What a stored sweep's task with no stored result says (its ``error``), on every surface.
MISSING = "no result stored (it failed or never ran)"


@dataclass(frozen=True)
class SweepListing:
    """One stored sweep in a list: its name, kind, tasks and when it last ran."""

    name: str
    kind: str
    tasks: int
    stored: int
    """Tasks whose result is stored."""
    code: str
    updated_at: datetime
    error: str | None = None
    """Why the record cannot be shown (a hand-edited store), else None; a damaged
    record is listed with it rather than failing the list."""

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "tasks": self.tasks,
                "stored": self.stored, "missing": self.tasks - self.stored,
                "code": self.code, "updated_at": self.updated_at.isoformat(),
                "error": self.error}


@dataclass(frozen=True)
class SweepView:
    """A stored sweep: its spec as its last run read it and each task's best layout."""

    name: str
    kind: str
    spec: dict[str, Any]
    code: str
    """The code version of its last run (the version its task keys were made with)."""
    updated_at: datetime
    summaries: tuple[TaskSummary, ...]
    key_figure: str
    """The rate every best layout of this kind has (``tokens_per_s_per_chip``, say)."""

    def counts(self) -> dict[str, int]:
        stored = sum(s.status == "stored" for s in self.summaries)
        return {"tasks": len(self.summaries), "stored": stored,
                "missing": len(self.summaries) - stored}

    def as_json(self) -> dict[str, Any]:
        return {"sweep": self.name, "kind": self.kind, "code": self.code,
                "updated_at": self.updated_at.isoformat(), "key_figure": self.key_figure,
                **self.counts(), "spec": self.spec,
                "results": [s.as_json() for s in self.summaries]}


def _records(store: Store, sweep: StoredSweep) -> list[TaskRecord]:
    """The sweep's task records; a SpecError naming it when one is not a record or its
    kind is unknown (a hand-edited store)."""
    records = [TaskRecord.from_json(t) for t in sweep.tasks]
    bad = [i for i, r in enumerate(records) if r is None]
    if bad or sweep.kind not in TASK_KINDS:
        why = (f"unknown kind {sweep.kind!r}" if sweep.kind not in TASK_KINDS
               else f"task {bad[0] + 1} is not a task record")
        raise SpecError([Problem(store.url, "sweeps",
                                 f"{why}; run the sweep again to record it afresh",
                                 sweep.name)])
    return [r for r in records if r is not None]


def list_sweeps(store: Store) -> list[SweepListing]:
    """Every sweep recorded in ``store``, the most recently run first, with how many of
    its tasks have a stored result (a damaged record with its ``error``)."""
    out = []
    for sweep in store.sweeps():
        try:
            records = _records(store, sweep)
        except SpecError as exc:
            out.append(SweepListing(sweep.name, sweep.kind, len(sweep.tasks), 0, sweep.code,
                                    sweep.updated_at, exc.problems[0].message))
            continue
        stored = store.stored_keys(r.key for r in records)
        out.append(SweepListing(sweep.name, sweep.kind, len(records),
                                sum(r.key in stored for r in records), sweep.code,
                                sweep.updated_at))
    return out


def _unknown(store: Store, name: str) -> SpecError:
    """The problem of a sweep name with no record, naming those recorded."""
    names: Sequence[str] = [s.name for s in store.sweeps()]
    allowed = ("recorded: " + ", ".join(names)) if names else "none is recorded yet"
    return SpecError.one(store.url, "sweep", f"no sweep of this name; {allowed}", name)


def forget_sweep(store: Store, name: str) -> None:
    """Forget sweep ``name``'s record; its tasks' results stay stored (another sweep may
    name them, and a rerun finds them). A SpecError when none is recorded."""
    if not store.delete_sweep(name):
        raise _unknown(store, name)


def read_sweep(store: Store, name: str) -> SweepView:
    """Sweep ``name`` as stored: each task's best layout in grid order.

    Raises
    ------
    SpecError
        When no sweep of that name is recorded (naming those that are), or a stored
        row is not a sweep result.
    """
    sweep = store.sweep(name)
    if sweep is None:
        raise _unknown(store, name)
    return sweep_view(store, sweep)


def sweep_view(store: Store, sweep: StoredSweep) -> SweepView:
    """A recorded sweep with each task's stored best layout (:data:`MISSING` where none
    is stored); a SpecError when the record or a stored row is damaged."""
    records = _records(store, sweep)
    key_figure = TASK_KINDS[sweep.kind].key_figure
    rows = stored_results(store, records, key_figure)
    summaries = tuple(
        TaskSummary(r, "missing", MISSING, None, None) if row is None
        else TaskSummary(r, "stored", None, row.result.get("best"), row.result.get("row"))
        for r, row in zip(records, rows, strict=True))
    return SweepView(sweep.name, sweep.kind, sweep.spec, sweep.code, sweep.updated_at,
                     summaries, key_figure)
