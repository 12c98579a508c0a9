"""Saved scenarios: named requests and their results, for the workbench to list and compare.

A scenario row holds a name, a kind (:data:`SCENARIO_KINDS`: what the workbench ran to
get it), the request and the result as JSON, and when it was saved. It lives in the same
database as the results store (``sqlite:///ocplan.db`` by default). Saves are single transactions.

What is saved is checked first (JSON data, nested at most
:data:`~ocplan.jsonio.MAX_JSON_DEPTH` levels), so every row can be served back. Reading is
tolerant all the same: the JSON columns are read as text and parsed one row at a time, so
a row that cannot be decoded (written by other code, or damaged) comes back as a
:class:`Scenario` with ``error`` set and what could not be read as None, instead of
failing the whole list.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import JSON, DateTime, String, Text, cast, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ocplan.errors import SpecError
from ocplan.jsonio import MAX_JSON_DEPTH, dumps, nesting_depth, parse_json
from ocplan.store.db import open_engine

__all__ = ["MAX_STORED_JSON_BYTES", "SCENARIO_KINDS", "Scenario", "ScenarioKind",
           "ScenarioStore", "open_scenarios"]

#: What a scenario's request is for, named by the run that answers it: a training
#: estimate, a layout search, a system composition, a training comparison of systems, a
#: serving estimate, a serving comparison.
ScenarioKind = Literal["estimate", "search", "system", "compare", "infer", "infer-compare"]
SCENARIO_KINDS: tuple[str, ...] = get_args(ScenarioKind)

#: Largest JSON text of a stored request or result that is read back. The workbench
#: saves bodies of at most 256 KiB; a row far beyond that was not written by it, and
#: parsing it would hold the server for long.
MAX_STORED_JSON_BYTES = 64 * 1024 * 1024


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
    """A saved scenario. ``error`` says why a stored row could not be read in full (then
    ``request`` or ``result`` may be None); it is None for every row this store wrote."""

    id: str
    name: str
    kind: str
    request: dict[str, Any] | None
    result: dict[str, Any] | None
    created_at: str
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain data; ``error`` only when there is one."""
        out = dict(self.__dict__)
        if self.error is None:
            del out["error"]
        return out


def _scenario(row: _Row) -> Scenario:
    created = row.created_at
    if created.tzinfo is None:  # SQLite keeps no offset: every row was written in UTC
        created = created.replace(tzinfo=UTC)
    return Scenario(row.id, row.name, row.kind, row.request, row.result, created.isoformat())


def _checked(field: str, value: object) -> None:
    """Refuse what could be stored but not served back: nesting deeper than
    MAX_JSON_DEPTH, non-finite numbers, values that are not JSON data, text that is not
    Unicode (a lone UTF-16 surrogate, which no UTF-8 answer can carry)."""
    if nesting_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise SpecError.one("scenario", field, f"nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        dumps(value).encode("utf-8")
    except (TypeError, ValueError) as exc:  # UnicodeEncodeError is a ValueError
        reason = str(exc).splitlines()[0][:120]
        raise SpecError.one("scenario", field, f"not JSON data: {reason}") from None


#: The columns of a row with its JSON and time columns as text, for :func:`_decoded`.
_RAW = (_Row.id, _Row.name, _Row.kind, cast(_Row.request, Text), cast(_Row.result, Text),
        cast(_Row.created_at, Text))


def _json_field(text: object, field: str, errors: list[str]) -> dict[str, Any] | None:
    data = text if isinstance(text, (str, bytes)) else ""  # NULL: nothing stored
    try:
        value = parse_json(data, field, max_bytes=MAX_STORED_JSON_BYTES,
                           max_depth=MAX_JSON_DEPTH)
    except SpecError as exc:
        errors.extend(p.line() for p in exc.problems)
        return None
    if not isinstance(value, dict):
        errors.append(f"{field}: not a JSON object")
        return None
    return value


def _decoded(row: Sequence[object]) -> Scenario:
    """A scenario from a row of the columns :data:`_RAW`; whatever cannot be decoded is None
    and named in ``error``."""
    row_id, name, kind, request, result, created = row
    errors: list[str] = []
    req = _json_field(request, "request", errors)
    res = _json_field(result, "result", errors)
    try:
        when = datetime.fromisoformat(str(created))
        if when.tzinfo is None:  # SQLite keeps no offset: every row was written in UTC
            when = when.replace(tzinfo=UTC)
        created_at = when.isoformat()
    except ValueError:
        errors.append("created_at: not a date and time")
        created_at = str(created)
    return Scenario(str(row_id), str(name), str(kind), req, res, created_at,
                    "; ".join(errors) or None)


class ScenarioStore:
    """Thread-safe access to the scenarios table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()

    def save(self, name: str, kind: str, request: dict[str, Any],
             result: dict[str, Any]) -> Scenario:
        """Store a scenario in one transaction.

        Raises
        ------
        SpecError
            When ``request`` or ``result`` is nested deeper than MAX_JSON_DEPTH levels,
            or a value is not JSON data or not Unicode text (nothing is stored then).
        """
        _checked("name", name)
        if kind not in SCENARIO_KINDS:
            raise SpecError.one("scenario", "kind", f"unknown kind; expected one of "
                                                    f"{', '.join(SCENARIO_KINDS)}", kind)
        _checked("request", request)
        _checked("result", result)
        row = _Row(id=str(uuid.uuid4()), name=name, kind=kind, request=request, result=result,
                   created_at=datetime.now(UTC))
        with self._lock, Session(self._engine) as session, session.begin():
            session.add(row)
            session.flush()
            saved = _scenario(row)
        return saved

    def get(self, scenario_id: str) -> Scenario | None:
        with Session(self._engine) as session:
            row = session.execute(select(*_RAW).where(_Row.id == scenario_id)).first()
        return None if row is None else _decoded(row)

    def all(self) -> list[Scenario]:
        """Every scenario, oldest first; undecodable rows with ``error`` set."""
        with Session(self._engine) as session:
            rows = session.execute(select(*_RAW).order_by(_Row.created_at)).all()
        return [_decoded(r) for r in rows]

    def close(self) -> None:
        """Close the database's connections: SQLite folds its write-ahead log into the
        file when the last one closes, so the file alone then holds every scenario."""
        self._engine.dispose()

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
