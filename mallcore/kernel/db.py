"""Storage: one SQLAlchemy engine per kernel, one transaction per stage.

SQLite runs in WAL mode. Writers take ``BEGIN IMMEDIATE`` so that a read that
later writes can never fail with "database is locked" on upgrade, and, within
one process, queue on a lock instead of spinning in SQLite's busy handler
(measured: 32 threads spinning on busy_timeout cost more than they gain).
PostgreSQL runs at READ COMMITTED through psycopg; rows that must not change
under a stage are locked with ``SELECT ... FOR UPDATE``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .config import DatabaseConfig
from .errors import MallcoreError


class Busy(MallcoreError):
    """503 ``busy``: SQLite's writer lock stayed taken; nothing was written, try again."""

    status = 503
    default_code = "busy"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers["Retry-After"] = "1"


def _json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


class StatementCounter:
    """Counts statements sent to the database (executemany counts once)."""

    def __init__(self) -> None:
        self.count = 0
        self.statements: list[str] = []
        self.keep = False

    def __call__(self, conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.startswith("BEGIN"):  # SQLite's explicit BEGIN; PostgreSQL's is implicit
            return
        self.count += 1
        if self.keep:
            self.statements.append(statement)


class Database:
    def __init__(self, config: DatabaseConfig, *, engine: Engine | None = None) -> None:
        self.config = config
        self.url = sa.make_url(config.url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        self.engine = engine or self._make_engine()
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._local = threading.local()
        self._writer: Connection | None = None
        self._write_engine = self.engine.execution_options(mallcore_write=True)
        self.supports_for_update = not self.is_sqlite
        # Active statement counters; kernel.fast statements report here directly.
        self.counters: list[StatementCounter] = []

    def _make_engine(self) -> Engine:
        cfg = self.config
        kwargs: dict[str, Any] = {
            "echo": cfg.echo,
            "json_serializer": _json_dumps,
            "json_deserializer": msgspec.json.decode,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": cfg.busy_timeout_ms / 1000}
            if self.url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = sa.pool.StaticPool
            else:
                kwargs["pool_size"] = cfg.pool_size
                kwargs["max_overflow"] = cfg.max_overflow
        else:
            kwargs["pool_size"] = cfg.pool_size
            kwargs["max_overflow"] = cfg.max_overflow
            kwargs["pool_pre_ping"] = True
            if cfg.schema:
                kwargs["connect_args"] = {"options": f"-csearch_path={cfg.schema}"}
        engine = sa.create_engine(self.url, **kwargs)
        if self.is_sqlite:
            timeout = int(cfg.busy_timeout_ms)

            @event.listens_for(engine, "connect")
            def _sqlite_connect(dbapi_conn: Any, record: Any) -> None:
                # Take transaction control away from the sqlite3 module.
                dbapi_conn.isolation_level = None
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute(f"PRAGMA busy_timeout={timeout}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _sqlite_begin(conn: Connection) -> None:
                immediate = conn.get_execution_options().get("mallcore_write")
                # Straight to the driver: this runs once per transaction.
                conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")  # type: ignore[union-attr]

        return engine

    # -- transactions -------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Connection]:
        """A connection inside one transaction: committed on exit, rolled back on a raise."""
        if write and getattr(self._local, "writing", False):
            # On SQLite this would wait on itself until the busy timeout.
            raise RuntimeError("a write transaction is already open in this thread; stages do not nest")
        lock = self._write_lock if write else None
        if lock is not None and not lock.acquire(timeout=self.config.busy_timeout_ms / 1000):
            raise Busy("the database is busy; try again")
        if write:
            self._local.writing = True
        try:
            if lock is not None:
                # SQLite: writers take turns behind the lock, so one connection
                # serves them all. It keeps its page and statement caches warm
                # and skips a pool checkout per stage.
                conn = self._writer
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._writer = self._write_engine.connect()
                with conn.begin():
                    yield conn
            else:
                with (self._write_engine if write else self.engine).connect() as conn, conn.begin():
                    yield conn
        finally:
            if write:
                self._local.writing = False
            if lock is not None:
                lock.release()

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """An ORM session in one transaction (for centers that prefer the ORM)."""
        with self.transaction(write=write) as conn:
            session = Session(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                yield session
                session.flush()
            finally:
                session.close()

    def lock_clause(self, select: Any) -> Any:
        """``select ... FOR UPDATE`` where the database has it (SQLite locks the whole file)."""
        return select.with_for_update() if self.supports_for_update else select

    # -- statement counting (benchmarks, tests) -------------------------------

    @contextmanager
    def count_statements(self, keep: bool = False) -> Iterator[StatementCounter]:
        counter = StatementCounter()
        counter.keep = keep
        event.listen(self.engine, "before_cursor_execute", counter)
        self.counters.append(counter)
        try:
            yield counter
        finally:
            self.counters.remove(counter)
            event.remove(self.engine, "before_cursor_execute", counter)

    def note_statement(self, statement: str, many: bool) -> None:
        """Count a statement sent past SQLAlchemy's events (kernel.fast)."""
        for counter in self.counters:
            counter(None, None, statement, None, None, many)

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.engine.dispose()


# PostgreSQL's "this transaction lost a race": serialization failure, deadlock, lock not
# available. The transaction rolled back; the same request may well succeed if retried.
_RACE_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def lost_race(exc: BaseException) -> bool:
    """A write that lost to a concurrent one: retrying the same request may succeed."""
    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, OperationalError) and getattr(exc.orig, "sqlstate", None) in _RACE_SQLSTATES
