"""The warehouse list, cached per process: what placement and dispatch plan over.

Warehouses are platform objects (any shop's goods may sit in any of them)
and change rarely, so each worker keeps the list, and each region's ranking
of the active ones, for ``warehouse_cache_seconds``. A change made through
this process drops the cache at once (:meth:`Warehouses.invalidate`); other
workers pick it up when their copy runs out. A stale list never oversells
(the stock ledger's conditional UPDATE guards every unit); it only delays a
new warehouse's first use.
"""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from mallcore.kernel import NotFound

from . import tables as t
from .planning import Site, rank
from .schemas import WmsSettings


class Warehouse:
    """A warehouse as cached: ``Site`` for planning plus its active flag."""

    __slots__ = ("active", "site")

    def __init__(self, site: Site, active: bool) -> None:
        self.site = site
        self.active = active


class Warehouses:
    """Every warehouse by code, and the active ones ranked by nearness to a region."""

    def __init__(self, settings: WmsSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._known: dict[str, Warehouse] | None = None
        self._sites: tuple[Site, ...] = ()
        self._ranked: dict[str | None, tuple[Site, ...]] = {}
        self._until = 0.0

    def invalidate(self) -> None:
        """Forget the cached list (this process; others refresh within the TTL)."""
        with self._lock:
            self._known = None

    def known(self, conn: sa.Connection) -> dict[str, Warehouse]:
        """Every warehouse, active or not, by code."""
        known = self._known
        if known is not None and time.monotonic() < self._until:
            return known
        w = t.warehouses.c
        loaded = {
            row.code: Warehouse(Site(row.code, row.name, row.region, row.priority), row.active)
            for row in conn.execute(sa.select(w.code, w.name, w.region, w.priority, w.active))
        }
        with self._lock:
            self._known = loaded
            self._sites = tuple(x.site for x in loaded.values() if x.active)
            self._ranked = {}
            self._until = time.monotonic() + self.settings.warehouse_cache_seconds
        return loaded

    def ranked(self, conn: sa.Connection, region: str | None) -> tuple[Site, ...]:
        """The active warehouses, nearest to ``region`` first (see :func:`.planning.rank`)."""
        self.known(conn)
        ranked = self._ranked.get(region)
        if ranked is None:
            ranked = self._ranked[region] = rank(self._sites, region)
        return ranked

    def get(self, conn: sa.Connection, code: str) -> Warehouse:
        """The warehouse ``code`` (404 ``warehouse_not_found``)."""
        found = self.known(conn).get(code)
        if found is None:
            # Maybe created by another worker since we cached.
            self.invalidate()
            found = self.known(conn).get(code)
        if found is None:
            raise NotFound(f"warehouse {code} not found", code="warehouse_not_found")
        return found
