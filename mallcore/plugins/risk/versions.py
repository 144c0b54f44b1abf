"""Per-process caches of config-like rows (lists, rules), kept fresh by a version row.

A change bumps ``risk_versions.<name>`` in its own transaction; each process
re-reads the version at most every ``recheck`` seconds (0: on every use, one
indexed read) and reloads only when it moved. Changes made by this process
invalidate its cache at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import sqlalchemy as sa

from . import tables as t

T = TypeVar("T")


def bump(conn: sa.Connection, name: str) -> None:
    """Mark ``name`` changed, in the changing transaction."""
    v = t.versions.c
    if not conn.execute(t.versions.update().where(v.name == name).values(version=v.version + 1)).rowcount:
        conn.execute(t.versions.insert().values(name=name, version=1))


class Versioned(Generic[T]):
    """A value loaded from the database, reloaded when its version moves."""

    def __init__(self, name: str, load: Callable[[sa.Connection], T], recheck: float) -> None:
        self.name = name
        self.load = load
        self.recheck = recheck
        self._value: T | None = None
        self._version = -1
        self._checked = 0.0
        self._lock = threading.Lock()
        self._select = sa.select(t.versions.c.version).where(t.versions.c.name == name)

    def get(self, conn: sa.Connection) -> T:
        now = time.monotonic()
        value = self._value
        if value is not None and now - self._checked < self.recheck:
            return value
        version = conn.execute(self._select).scalar() or 0
        if value is not None and version == self._version:
            self._checked = now
            return value
        loaded = self.load(conn)
        with self._lock:
            self._value, self._version, self._checked = loaded, version, now
        return loaded

    def invalidate(self) -> None:
        with self._lock:
            self._value = None
