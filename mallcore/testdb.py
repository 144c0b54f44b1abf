"""Throw-away test databases whose tables are created once per process.

Creating every center's tables costs about 85 ms on SQLite and 300 ms on
PostgreSQL (plus 80 ms to drop a schema), paid for each kernel a test builds.
:class:`TestDatabases` pays it once per set of tables:

- SQLite: the first database with a given set of tables is copied (sqlite3's
  backup API) to a template file before anything else is written; later ones
  are copies of that template.
- PostgreSQL: a test's schema is emptied at teardown (``DELETE`` from every
  table, sequences back to 1) and kept for the next kernel with the same
  tables, renamed to that kernel's schema. A schema whose relations or columns
  changed during the test (a test creating or altering a table) is dropped
  instead, so no test ever sees another test's rows or DDL.

Used by :mod:`mallcore.testing`; the key of a set of tables is the DDL the
dialect would run for it, so any change to a table makes a new key.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable, sort_tables

# Every relation and column of a schema, with types: what a test could have
# changed with DDL of its own.
_CATALOG_SIGNATURE = sa.text(
    "SELECT md5(coalesce(string_agg(c.relname || '.' || c.relkind::text || '.' || a.attname || ':' "
    "|| format_type(a.atttypid, a.atttypmod) || ':' || a.attnotnull::text, ',' "
    "ORDER BY c.relname, a.attnum), '')) "
    "FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid "
    "WHERE c.relnamespace = CAST(:schema AS regnamespace) AND a.attnum > 0 AND NOT a.attisdropped"
)
_RESET_SEQUENCES = sa.text(
    "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), 1, false) "
    "FROM pg_sequences WHERE schemaname = :schema"
)


def tables_key(dialect: sa.Dialect, metadatas: Iterable[sa.MetaData]) -> str:
    """A digest of the DDL that creates ``metadatas`` on ``dialect``."""
    digest = hashlib.sha256()
    for metadata in metadatas:
        for table in metadata.sorted_tables:
            digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
            for index in sorted(table.indexes, key=lambda ix: ix.name or ""):
                digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
    return digest.hexdigest()


class TestDatabases:
    """Templates (SQLite) and emptied schemas (PostgreSQL) kept between tests of one process."""

    __test__ = False  # not a test class, despite its name

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._folder: Path | None = None
        self._templates: dict[str, Path] = {}
        # (server url, tables key) -> emptied schemas with those tables
        self._schemas: dict[tuple[str, str], list[str]] = {}
        self._signatures: dict[str, str] = {}

    # -- SQLite ------------------------------------------------------------------

    def sqlite_from_template(self, key: str, path: Path) -> bool:
        """Fill the empty file ``path`` from the template of ``key``; False when there is none yet."""
        with self._lock:
            template = self._templates.get(key)
        if template is None:
            return False
        _sqlite_copy(template, path)
        return True

    def sqlite_keep_template(self, key: str, path: Path) -> None:
        """Keep ``path`` (tables created, nothing else written yet) as the template of ``key``."""
        with self._lock:
            if key in self._templates:
                return
            if self._folder is None:
                self._folder = Path(tempfile.mkdtemp(prefix="mallcore-test-templates-"))
                atexit.register(shutil.rmtree, self._folder, True)
            template = self._folder / f"{key[:16]}.db"
            _sqlite_copy(path, template)
            self._templates[key] = template

    # -- PostgreSQL -------------------------------------------------------------

    def pg_take(self, url: str, key: str, schema: str) -> bool:
        """Rename a kept schema with the tables of ``key`` to ``schema``; False when none is kept."""
        with self._lock:
            kept = self._schemas.get((url, key))
            old = kept.pop() if kept else None
        if old is None:
            return False
        with admin(url) as conn:
            conn.execute(sa.text(f'ALTER SCHEMA "{old}" RENAME TO "{schema}"'))
        self._signatures[schema] = self._signatures.pop(old)
        return True

    def pg_created(self, url: str, schema: str) -> None:
        """Record what ``schema`` holds right after its tables were created."""
        with admin(url) as conn:
            self._signatures[schema] = _signature(conn, schema)

    def pg_give_back(self, url: str, key: str, schema: str, metadatas: Iterable[sa.MetaData]) -> None:
        """Empty ``schema`` and keep it for the next kernel with the same tables, or drop it when
        its DDL changed during the test (or it cannot be emptied)."""
        expected = self._signatures.pop(schema, None)
        tables = [t for metadata in metadatas for t in metadata.sorted_tables]
        try:
            with admin(url) as conn:
                if expected is None or _signature(conn, schema) != expected:
                    raise LookupError(schema)
                for table in reversed(sort_tables(tables)):
                    conn.execute(sa.text(f'DELETE FROM "{schema}"."{table.name}"'))
                conn.execute(_RESET_SEQUENCES, {"schema": schema})
        except (LookupError, sa.exc.DBAPIError):
            pg_drop(url, schema)
            return
        self._signatures[schema] = expected
        with self._lock:
            self._schemas.setdefault((url, key), []).append(schema)

    def close(self) -> None:
        """Drop every kept schema (at the end of the test process)."""
        with self._lock:
            kept = [(url, schema) for (url, _), schemas in self._schemas.items() for schema in schemas]
            self._schemas.clear()
        for url, schema in kept:
            pg_drop(url, schema)


def _signature(conn: sa.Connection, schema: str) -> str:
    # Types named relative to the schema itself, so a renamed schema keeps its signature.
    conn.execute(sa.text(f'SET LOCAL search_path TO "{schema}"'))
    return str(conn.execute(_CATALOG_SIGNATURE, {"schema": schema}).scalar_one())


def pg_create(url: str, schema: str) -> None:
    with admin(url) as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))


def pg_drop(url: str, schema: str) -> None:
    with admin(url) as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@contextmanager
def admin(url: str) -> Iterator[sa.Connection]:
    """One short transaction on a connection of its own (no pool kept between tests)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


databases = TestDatabases()
atexit.register(databases.close)
