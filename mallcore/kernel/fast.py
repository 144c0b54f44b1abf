"""Hot-path statements: compiled once by SQLAlchemy, run on the driver's cursor.

For a small statement, SQLAlchemy's per-execution work (cache key, compiled
cache lookup, parameter construction, execution context, result set-up)
costs two to three times what SQLite takes to run it, and a good part of a
PostgreSQL round trip on localhost (measured: about 40 µs per statement on
top of SQLite's 15). The few statements every placement and every stage run
are therefore compiled once per kernel by SQLAlchemy itself, from the table
definitions (so the SQL cannot drift from them), and executed on the
connection's DBAPI cursor, inside the same transaction. Bind values pass
through the same type processors SQLAlchemy would apply (JSON, UTC
datetimes; on SQLite a UTC datetime is written by :func:`_sqlite_utc`, the
same text as SQLAlchemy's processors give, checked when a statement is
prepared, at a third of their cost). They bypass SQLAlchemy's statement events, so
:meth:`Database.count_statements` counts them here; ``echo`` does not show
them.

Use it only where profiling says so; everything else stays plain Core.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa

from .columns import UTCDateTime

if TYPE_CHECKING:
    from .db import Database


class Result:
    """What a fast statement returns: the rows (tuples) and the row count."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None


class Prepared:
    """One statement compiled for one database, with its bind processors."""

    def __init__(
        self, stmt: Any, db: Database, types: Mapping[str, Any], *, returns_rows: bool = False
    ) -> None:
        dialect = db.engine.dialect
        compiled = stmt.compile(dialect=dialect)
        self.db = db
        self.dialect = dialect
        # The driver's base error, wrapped as SQLAlchemy wraps it (IntegrityError, DataError...)
        # so the HTTP error mapping treats a fast statement like any other.
        self._driver_error: type[Exception] = dialect.loaded_dbapi.Error
        self.sql: str = compiled.string
        self.returns_rows = returns_rows
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, type_ in types.items():
            process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None and _is_time(type_):
                if dialect.name == "sqlite" and _same_text(process, type_):
                    process = _sqlite_utc
                process = _remember_last(process)
            if process is not None:
                self.processors[name] = process
        # For positional drivers (SQLite): (key, processor or None) in parameter order.
        self._plan = None if self.order is None else tuple((k, self.processors.get(k)) for k in self.order)

    def params(self, row: Mapping[str, Any]) -> Any:
        if self._plan is not None:
            return tuple(row[k] if p is None else p(row[k]) for k, p in self._plan)
        if self.processors:
            return {**row, **{k: p(row[k]) for k, p in self.processors.items() if k in row}}
        return row

    def execute(self, conn: sa.Connection, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> Result:
        """One row (a mapping) or many (a sequence: one executemany)."""
        # type() first: isinstance() against an ABC costs more than the rest of this line.
        one = type(rows) is dict or isinstance(rows, Mapping)
        if self.db.counters:
            self.db.note_statement(self.sql, not one)
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        params: Any = None
        try:
            if one:
                params = self.params(cast("Mapping[str, Any]", rows))
                cursor.execute(self.sql, params)
            else:
                params = [self.params(r) for r in cast("Sequence[Mapping[str, Any]]", rows)]
                cursor.executemany(self.sql, params)
            fetched = list(cursor.fetchall()) if self.returns_rows else []
            return Result(fetched, cursor.rowcount)
        except self._driver_error as exc:
            raise sa.exc.DBAPIError.instance(
                self.sql, params, exc, self._driver_error, dialect=self.dialect, ismulti=not one
            ) from exc
        finally:
            cursor.close()


def _is_time(type_: Any) -> bool:
    return isinstance(type_, sa.DateTime) or isinstance(getattr(type_, "impl", None), sa.DateTime)


def _sqlite_utc(value: datetime | None) -> str | None:
    """A UTC-aware datetime as SQLite stores it (:class:`~mallcore.kernel.columns.UTCDateTime`)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        if value.tzinfo is None:
            raise ValueError("naive datetime given; mallcore stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031 (the fastest way here)
        value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond,
    )  # fmt: skip


# Datetimes :func:`_sqlite_utc` must write exactly as SQLAlchemy does before it replaces it.
_SAMPLES = (
    datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=8))),
)


def _same_text(process: Callable[[Any], Any], type_: Any) -> bool:
    return isinstance(type_, UTCDateTime) and all(process(d) == _sqlite_utc(d) for d in _SAMPLES)


def _remember_last(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A stage stamps many rows with the same ``now``: convert each datetime once."""
    # One (value, converted) tuple, replaced whole: threads never see half of it.
    memo: list[tuple[Any, Any]] = [(object(), None)]

    def cached(value: Any) -> Any:
        seen, out = memo[0]
        if value is seen:
            return out
        out = process(value)
        memo[0] = (value, out)
        return out

    return cached


def insert(table: sa.Table, keys: Sequence[str], db: Database, returning: Sequence[str] = ()) -> Prepared:
    """``INSERT INTO table (keys) VALUES (...)`` [``RETURNING ...``], for one row or an executemany."""
    stmt: Any = table.insert().values({k: sa.bindparam(k, type_=table.c[k].type) for k in keys})
    if returning:
        stmt = stmt.returning(*(table.c[c] for c in returning))
    return Prepared(stmt, db, {k: table.c[k].type for k in keys}, returns_rows=bool(returning))


def statement(
    stmt: Any, db: Database, types: Mapping[str, Any] | None = None, *, returns_rows: bool = False
) -> Prepared:
    """Any Core statement with named ``bindparam`` s (e.g. a conditional UPDATE)."""
    return Prepared(stmt, db, types or {}, returns_rows=returns_rows)


class MultiRowInsert:
    """``INSERT ... VALUES (...), (...), ... RETURNING ...``: n rows, one statement.

    For rows whose generated ids are needed back (an executemany cannot
    return rows on every driver). SQLAlchemy compiles the one-row form once;
    the n-row form repeats its ``VALUES`` tuple (a string join, kept per row
    count), with every placeholder made positional, so a batch of any size
    costs no compilation and no parameter names.
    """

    def __init__(self, table: sa.Table, keys: Sequence[str], db: Database, returning: Sequence[str]) -> None:
        self.keys = tuple(keys)
        self.db = db
        c = table.c
        one = table.insert().values({k: sa.bindparam(k, type_=c[k].type) for k in keys})
        prepared = Prepared(one.returning(*(c[r] for r in returning)), db, {k: c[k].type for k in keys})
        head, _, rest = prepared.sql.partition(" VALUES ")
        values, _, tail = rest.partition(" RETURNING ")
        if prepared.order is None:  # named placeholders (psycopg's %(name)s): make them positional
            names: Sequence[str] = re.findall(r"%\((\w+)\)s", values)
            values = re.sub(r"%\(\w+\)s", "%s", values)
        else:
            names = prepared.order
        self._plan = tuple((k, prepared.processors.get(k)) for k in names)
        self._head, self._values, self._tail = f"{head} VALUES ", values, f" RETURNING {tail}"
        self._sql: dict[int, str] = {}

    def execute(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> Result:
        n = len(rows)
        sql = self._sql.get(n)
        if sql is None:
            sql = self._sql[n] = self._head + ", ".join([self._values] * n) + self._tail
        params: list[Any] = []
        for row in rows:
            params.extend([row[k] if p is None else p(row[k]) for k, p in self._plan])
        if self.db.counters:
            self.db.note_statement(sql, False)
        cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, params)
            return Result(list(cursor.fetchall()), cursor.rowcount)
        finally:
            cursor.close()


class InSelect:
    """``SELECT ... WHERE column IN (...)``, one compiled form per list length; rows are tuples."""

    def __init__(self, build: Callable[[list[Any]], Any], db: Database) -> None:
        self.build = build
        self.db = db
        self._by_count: dict[int, Prepared] = {}

    def execute(self, conn: sa.Connection, values: Sequence[Any]) -> Result:
        n = len(values)
        prepared = self._by_count.get(n)
        if prepared is None:
            params: list[Any] = [sa.bindparam(f"v__{i}") for i in range(n)]
            prepared = self._by_count[n] = Prepared(self.build(params), self.db, {}, returns_rows=True)
        return prepared.execute(conn, {f"v__{i}": v for i, v in enumerate(values)})
