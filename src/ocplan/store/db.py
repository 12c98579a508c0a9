"""A content-addressed store of computed results (SQLite by default, any SQLAlchemy URL).

One table, ``results``, holds one row per distinct computation:

========== ==========================================================================
key        SHA-256 of the canonical JSON of the inputs and the code version (the
           primary key: the same question asked twice is answered once)
kind       what was computed (``"search"``)
inputs     the inputs as JSON (what the key hashes, less the code version)
result     the result as JSON, without timings, so equal inputs give equal rows
elapsed_s  how long the computation took (kept apart from the result)
code       the code version that computed it (:func:`ocplan.version.code_version`)
sweep      the name of the sweep that first computed it, if any
created_at when it was stored (UTC)
========== ==========================================================================

A second table, ``sweeps``, names each sweep's tasks (one row per sweep name, written
by the sweep's last run): its kind, its spec as JSON, its tasks in grid order (each task's
key, model, hardware, chip and cluster size) and the code version that ran it, so a sweep
can be shown again from the store alone (:mod:`ocplan.sweep.stored`).

Writes are transactional: :meth:`Store.put` inserts one row or none, and
:meth:`Store.transaction` groups several puts that are committed together or not at
all. A put of a key already stored is ignored (insert-or-ignore), so reruns and
concurrent writers never duplicate a row.

``open_store(None)`` opens ``sqlite:///ocplan.db`` in the working directory;
PostgreSQL works by URL (``postgresql+psycopg://user@host/db``) with its driver
installed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Engine,
    Float,
    String,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import ArgumentError, IntegrityError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ocplan.errors import Problem, SpecError
from ocplan.version import code_version

__all__ = ["DEFAULT_URL", "Store", "StoredResult", "StoredSweep", "Transaction", "canonical_json",
           "content_key", "damaged_row", "open_engine", "open_store", "to_json"]

DEFAULT_URL = "sqlite:///ocplan.db"
#: The scheme in front of a URL (RFC 3986 §3.1), which a plain file path lacks.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:")
_IN_CHUNK = 500
"""Keys per ``IN (...)`` query (well under SQLite's bound-parameter limit)."""


class _Base(DeclarativeBase):
    pass


class _ResultRow(_Base):
    __tablename__ = "results"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    elapsed_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    code: Mapped[str] = mapped_column(String(80))
    sweep: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class _SweepRow(_Base):
    __tablename__ = "sweeps"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    tasks: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    code: Mapped[str] = mapped_column(String(80))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


# ---- canonical JSON and keys ----------------------------------------------------------

def to_json(value: Any) -> Any:
    """``value`` as plain JSON data: dicts with string keys, lists, str, int, finite
    float, bool and None. Tuples become lists; numpy scalars become Python numbers;
    non-finite floats become the strings ``"Infinity"``, ``"-Infinity"`` and ``"NaN"``
    (JSON has no such numbers, PostgreSQL rejects them).

    Raises
    ------
    TypeError
        For anything else (a bug in the caller: results must be plain data).
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys must be strings, not {type(k).__name__}")
            out[k] = to_json(v)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and getattr(value, "shape", None) == ():
        return to_json(item())
    raise TypeError(f"not JSON data: {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """The one text of ``value``: sorted keys, no spaces, ASCII, finite numbers only."""
    return json.dumps(to_json(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=False)


def content_key(inputs: Mapping[str, Any], code: str | None = None) -> str:
    """SHA-256 (hex) of the canonical JSON of ``inputs`` and the code version ``code``
    (default: the running code's :func:`~ocplan.version.code_version`)."""
    text = canonical_json({"code": code_version() if code is None else code,
                           "inputs": inputs})
    return hashlib.sha256(text.encode("ascii")).hexdigest()


# ---- rows -----------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredResult:
    """One stored row."""

    key: str
    kind: str
    inputs: dict[str, Any]
    result: dict[str, Any]
    elapsed_s: float | None
    code: str
    sweep: str | None
    created_at: datetime

    @classmethod
    def _of(cls, row: _ResultRow) -> StoredResult:
        return cls(row.key, row.kind, row.inputs, row.result, row.elapsed_s, row.code,
                   row.sweep, row.created_at)


def _utc(when: datetime) -> datetime:
    """A stored time as UTC (SQLite gives back the naive UTC time it was given)."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class StoredSweep:
    """One stored sweep: what its last run named (its spec and tasks), not its results."""

    name: str
    kind: str
    spec: dict[str, Any]
    tasks: tuple[dict[str, Any], ...]
    """Each task in grid order: ``key``, ``model``, ``hardware``, ``chip``, ``chips``."""
    code: str
    updated_at: datetime

    @classmethod
    def _of(cls, row: _SweepRow) -> StoredSweep:
        return cls(row.name, row.kind, row.spec, tuple(row.tasks), row.code,
                   _utc(row.updated_at))


class Transaction:
    """Puts that are committed together when the ``with`` block ends, or not at all."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def put(self, key: str, *, kind: str, inputs: Mapping[str, Any],
            result: Mapping[str, Any], elapsed_s: float | None = None,
            code: str | None = None, sweep: str | None = None) -> bool:
        """Insert a row unless ``key`` is stored; True when this call inserted it.

        ``inputs`` and ``result`` are stored as their canonical JSON (so what is read
        back equals ``json.loads(canonical_json(x))``).
        """
        if not (len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
            raise ValueError(f"a key is 64 lower-case hex digits, got {key!r}")
        values: dict[str, Any] = {
            "key": key, "kind": kind,
            "inputs": json.loads(canonical_json(inputs)),
            "result": json.loads(canonical_json(result)),
            "elapsed_s": elapsed_s, "code": code_version() if code is None else code,
            "sweep": sweep, "created_at": datetime.now(UTC),
        }
        session = self._session
        dialect = session.get_bind().dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
            stmt = insert(_ResultRow).values(**values).on_conflict_do_nothing(
                index_elements=["key"])
            return bool(getattr(session.execute(stmt), "rowcount", 0))
        # Other databases: insert inside a savepoint; a duplicate key rolls back only it.
        try:
            with session.begin_nested():
                session.add(_ResultRow(**values))
        except IntegrityError:
            return False
        return True


class Store:
    """Results by key in one SQL database. Use :func:`open_store` to make one."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def url(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Group puts: all are committed when the block ends, none if it raises."""
        with Session(self._engine) as session, session.begin():
            yield Transaction(session)

    def put(self, key: str, *, kind: str, inputs: Mapping[str, Any],
            result: Mapping[str, Any], elapsed_s: float | None = None,
            code: str | None = None, sweep: str | None = None) -> bool:
        """Store one row in its own transaction (see :meth:`Transaction.put`)."""
        with self.transaction() as tx:
            return tx.put(key, kind=kind, inputs=inputs, result=result,
                          elapsed_s=elapsed_s, code=code, sweep=sweep)

    def get(self, key: str) -> StoredResult | None:
        with Session(self._engine) as session:
            row = session.get(_ResultRow, key)
            return None if row is None else StoredResult._of(row)

    def get_many(self, keys: Iterable[str]) -> dict[str, StoredResult]:
        """The stored rows among ``keys``, by key; a SpecError naming the rows whose
        stored JSON no longer parses (a damaged or hand-edited store)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, StoredResult] = {}
        try:
            with Session(self._engine) as session:
                for start in range(0, len(wanted), _IN_CHUNK):
                    chunk = wanted[start:start + _IN_CHUNK]
                    for row in session.scalars(
                            select(_ResultRow).where(_ResultRow.key.in_(chunk))):
                        found[row.key] = StoredResult._of(row)
        except ValueError:  # json.JSONDecodeError: find which rows, one by one
            raise SpecError([damaged_row(self.url, key, "its stored JSON does not parse")
                             for key in self._unparsable(wanted)]) from None
        return found

    def _unparsable(self, keys: Sequence[str]) -> list[str]:
        bad = []
        for key in keys:
            try:
                self.get(key)
            except ValueError:
                bad.append(key)
        return bad

    def stored_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` are stored."""
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        with Session(self._engine) as session:
            for start in range(0, len(wanted), _IN_CHUNK):
                chunk = wanted[start:start + _IN_CHUNK]
                found.update(session.scalars(
                    select(_ResultRow.key).where(_ResultRow.key.in_(chunk))))
        return found

    def rows(self, sweep: str | None = None) -> list[StoredResult]:
        """Every stored row (or those first stored by sweep ``sweep``), by key."""
        stmt = select(_ResultRow).order_by(_ResultRow.key)
        if sweep is not None:
            stmt = stmt.where(_ResultRow.sweep == sweep)
        with Session(self._engine) as session:
            return [StoredResult._of(r) for r in session.scalars(stmt)]

    def put_sweep(self, name: str, *, kind: str, spec: Mapping[str, Any],
                  tasks: Sequence[Mapping[str, Any]], code: str | None = None) -> None:
        """Record sweep ``name``'s spec and tasks (replacing what an earlier run of the
        same name recorded), in one transaction."""
        values = {"name": name, "kind": kind, "spec": json.loads(canonical_json(spec)),
                  "tasks": json.loads(canonical_json(list(tasks))),
                  "code": code_version() if code is None else code,
                  "updated_at": datetime.now(UTC)}
        with Session(self._engine) as session, session.begin():
            session.merge(_SweepRow(**values))

    def sweeps(self) -> list[StoredSweep]:
        """Every recorded sweep, the most recently run first."""
        stmt = select(_SweepRow).order_by(_SweepRow.updated_at.desc(), _SweepRow.name)
        with Session(self._engine) as session:
            return [StoredSweep._of(r) for r in session.scalars(stmt)]

    def delete_sweep(self, name: str) -> bool:
        """Forget sweep ``name``'s record (True when there was one). Its tasks' results
        stay: another sweep may name them, and a rerun finds them stored."""
        with Session(self._engine) as session, session.begin():
            row = session.get(_SweepRow, name)
            if row is None:
                return False
            session.delete(row)
            return True

    def sweep(self, name: str) -> StoredSweep | None:
        """Sweep ``name`` as its last run recorded it, or None."""
        with Session(self._engine) as session:
            row = session.get(_SweepRow, name)
            return None if row is None else StoredSweep._of(row)

    def count(self) -> int:
        with Session(self._engine) as session:
            return int(session.scalar(select(func.count()).select_from(_ResultRow)) or 0)


def damaged_row(url: str, key: str, why: str) -> Problem:
    """The problem of a stored row that cannot be used: its store, its key and how to go
    on (delete the row, and the task that wrote it runs again)."""
    return Problem(url, "results", f"{why}; delete this row (the task that stored it "
                   "runs again) or use another store", key)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (the workbench) proceed while a sweep writes; writers wait.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA busy_timeout = 30000")
    cursor.close()


def database_url(given: str | None) -> str:
    """The SQLAlchemy URL of ``--db``: :data:`DEFAULT_URL` when not given, a plain file
    path (no ``scheme:`` in front, e.g. ``results.db``) as an SQLite file there, else as
    given (a mistyped URL keeps its own error)."""
    if given is None:
        return DEFAULT_URL
    if given and not _SCHEME.match(given):
        return f"sqlite:///{given}"
    return given


def open_engine(url: str | None, tables: type[DeclarativeBase]) -> Engine:
    """An engine for SQLAlchemy URL ``url`` (default ``sqlite:///ocplan.db``; a plain file
    path is an SQLite file, :func:`database_url`) with the tables of ``tables`` created if
    missing.

    Raises
    ------
    SpecError
        When the URL is malformed, its driver is missing or the database cannot be
        opened (naming ``--db``).
    """
    given, url = url, database_url(url)
    shown = url if given is None else given  # the errors name what was typed
    try:
        sqlite_file = url.startswith("sqlite")
        engine = create_engine(url, connect_args={"check_same_thread": False}
                               if sqlite_file else {})
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        tables.metadata.create_all(engine)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise SpecError.one("--db", "db", f"not a usable database URL ({exc}); expected e.g. "
                                          "sqlite:///ocplan.db or postgresql+psycopg://host/db",
                            shown) from None
    except ModuleNotFoundError as exc:
        raise SpecError.one("--db", "db", f"the driver for this database is not installed "
                                          f"({exc.name})", shown) from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise SpecError.one("--db", "db", f"cannot open the database: {reason}",
                            shown) from None
    return engine


def open_store(url: str | None = None) -> Store:
    """Open (and create, if needed) the results store at SQLAlchemy URL ``url``
    (default ``sqlite:///ocplan.db``); see :func:`open_engine` for errors."""
    return Store(open_engine(url, _Base))
