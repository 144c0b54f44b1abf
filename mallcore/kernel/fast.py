"""Hot-path statements: compiled once by SQLAlchemy, sent as the driver's SQL.

For a small statement, SQLAlchemy's per-execution work (cache key, compiled
cache lookup, parameter construction, result set-up) costs about as much as
SQLite running it, and a good part of a PostgreSQL round trip on localhost.
The statements every placement and every stage run are therefore compiled
once per dialect by SQLAlchemy itself, from the table definitions (so the SQL
cannot drift from them), and executed with ``Connection.exec_driver_sql``.
Bind values pass through the same type processors SQLAlchemy would apply
(JSON, UTC datetimes), and statement events (counting, logging) still fire.

Use it only where profiling says so; everything else stays plain Core.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Dialect


class Prepared:
    """One statement compiled for one dialect, with its bind processors."""

    def __init__(self, stmt: Any, dialect: Dialect, types: Mapping[str, Any]) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.order: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if compiled.positional else None
        )
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, type_ in types.items():
            process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process

    def params(self, row: Mapping[str, Any]) -> Any:
        if self.processors:
            row = {**row, **{k: p(row[k]) for k, p in self.processors.items() if k in row}}
        if self.order is not None:
            return tuple(row[k] for k in self.order)
        return row

    def execute(
        self, conn: sa.Connection, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> CursorResult[Any]:
        """One row (a mapping) or many (a sequence: one executemany)."""
        if isinstance(rows, Mapping):
            return conn.exec_driver_sql(self.sql, self.params(rows))
        return conn.exec_driver_sql(self.sql, [self.params(r) for r in rows])


def insert(table: sa.Table, keys: Sequence[str], dialect: Dialect, returning: Sequence[str] = ()) -> Prepared:
    """``INSERT INTO table (keys) VALUES (...)`` [``RETURNING ...``], for one row or an executemany."""
    stmt: Any = table.insert().values({k: sa.bindparam(k, type_=table.c[k].type) for k in keys})
    if returning:
        stmt = stmt.returning(*(table.c[c] for c in returning))
    return Prepared(stmt, dialect, {k: table.c[k].type for k in keys})


class MultiRowInsert:
    """``INSERT ... VALUES (...), (...), ... RETURNING ...``: n rows, one statement.

    For rows whose generated ids are needed back (an executemany cannot
    return rows on every driver). One compiled form per row count, cached.
    """

    def __init__(
        self, table: sa.Table, keys: Sequence[str], dialect: Dialect, returning: Sequence[str]
    ) -> None:
        self.table = table
        self.keys = tuple(keys)
        self.dialect = dialect
        self.returning = tuple(returning)
        self._by_count: dict[int, Prepared] = {}

    def _prepared(self, n: int) -> Prepared:
        prepared = self._by_count.get(n)
        if prepared is None:
            c = self.table.c
            values = [{k: sa.bindparam(f"{k}__{i}", type_=c[k].type) for k in self.keys} for i in range(n)]
            stmt = self.table.insert().values(values).returning(*(c[r] for r in self.returning))
            types = {f"{k}__{i}": c[k].type for i in range(n) for k in self.keys}
            prepared = self._by_count[n] = Prepared(stmt, self.dialect, types)
        return prepared

    def execute(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> CursorResult[Any]:
        flat = {f"{k}__{i}": row[k] for i, row in enumerate(rows) for k in self.keys}
        prepared = self._prepared(len(rows))
        return conn.exec_driver_sql(prepared.sql, prepared.params(flat))


class InSelect:
    """``SELECT ... WHERE column IN (...)``, one compiled form per list length."""

    def __init__(self, build: Callable[[list[Any]], Any], dialect: Dialect) -> None:
        self.build = build
        self.dialect = dialect
        self._by_count: dict[int, Prepared] = {}

    def execute(self, conn: sa.Connection, values: Sequence[Any]) -> CursorResult[Any]:
        n = len(values)
        prepared = self._by_count.get(n)
        if prepared is None:
            params: list[Any] = [sa.bindparam(f"v__{i}") for i in range(n)]
            prepared = self._by_count[n] = Prepared(self.build(params), self.dialect, {})
        return conn.exec_driver_sql(
            prepared.sql, prepared.params({f"v__{i}": v for i, v in enumerate(values)})
        )
