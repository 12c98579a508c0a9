"""Saved scenarios: named requests and their results, for the workbench to list and compare.

A scenario row holds a name, a kind (``estimate``, ``search``, ``system``), the request
and the result as JSON, and when it was saved. It lives in the same database as the
results store (``sqlite:///ocplan.db`` by default). Saves are single transactions.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ocplan.store.db import open_engine

__all__ = ["Scenario", "ScenarioStore", "open_scenarios"]


class _Base(DeclarativeBase):
    pass


class _Row(_Base):
    __tablename__ = "scenarios"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Scenario:
    id: str
    name: str
    kind: str
    request: dict[str, Any]
    result: dict[str, Any]
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _scenario(row: _Row) -> Scenario:
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no offset: every row was written in UTC
        created = created.replace(tzinfo=UTC)
    return Scenario(row.id, row.name, row.kind, row.request, row.result, created.isoformat())


class ScenarioStore:
    """Thread-safe access to the scenarios table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()

    def save(self, name: str, kind: str, request: dict[str, Any],
             result: dict[str, Any]) -> Scenario:
        row = _Row(id=str(uuid.uuid4()), name=name, kind=kind, request=request, result=result,
                   created_at=datetime.now(UTC))
        with self._lock, Session(self._engine) as session, session.begin():
            session.add(row)
            session.flush()
            saved = _scenario(row)
        return saved

    def get(self, scenario_id: str) -> Scenario | None:
        with Session(self._engine) as session:
            row = session.get(_Row, scenario_id)
            return _scenario(row) if row else None

    def all(self) -> list[Scenario]:
        with Session(self._engine) as session:
            rows = session.scalars(select(_Row).order_by(_Row.created_at)).all()
            return [_scenario(r) for r in rows]

    def delete(self, scenario_id: str) -> bool:
        with self._lock, Session(self._engine) as session, session.begin():
            row = session.get(_Row, scenario_id)
            if row is None:
                return False
            session.delete(row)
            return True


def open_scenarios(url: str | None) -> ScenarioStore:
    """Open (creating the table if needed) the scenarios of the database at ``url``."""
    return ScenarioStore(open_engine(url, _Base))
