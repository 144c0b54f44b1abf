"""Core statements compiled once to the driver's SQL, for the placement hot path.

SQLAlchemy's per-execution work (cache lookup, parameter processing, result
set-up) costs about as much as a SQLite statement itself and a good part of a
local PostgreSQL round trip. The three statements a placement runs are
compiled once per kernel by SQLAlchemy itself (so the SQL cannot drift from
the table definitions) and sent with ``exec_driver_sql``; bind values go
through the same type processors SQLAlchemy would apply (UTC datetimes).
Statement events (counting, logging) still see them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class FastStatement:
    def __init__(self, stmt: Any, dialect: Dialect, types: Mapping[str, Any] | None = None) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql: str = compiled.string
        self.order: list[str] | None = list(compiled.positiontup or []) if compiled.positional else None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        for name, type_ in (types or {}).items():
            process = type_.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self.processors[name] = process

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        if self.processors:
            rows = [{**row, **{k: p(row[k]) for k, p in self.processors.items()}} for row in rows]
        if self.order is not None:
            order = self.order
            return [tuple(row[k] for k in order) for row in rows]
        return list(rows)

    def execute(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run for every row (one executemany); returns the summed row count."""
        return int(conn.exec_driver_sql(self.sql, self.params(rows)).rowcount)


def insert(table: sa.Table, keys: Sequence[str], dialect: Dialect) -> FastStatement:
    """An INSERT of ``keys`` into ``table`` (no RETURNING)."""
    stmt = table.insert().inline().values({k: sa.bindparam(k, type_=table.c[k].type) for k in keys})
    types = {k: table.c[k].type for k in keys if isinstance(table.c[k].type, sa.types.TypeDecorator)}
    return FastStatement(stmt, dialect, types)
