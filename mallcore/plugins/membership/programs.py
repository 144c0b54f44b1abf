"""Each shop's part in the program, cached per process.

A shop takes part by default (``shops_join_by_default``); its merchants or
an admin may change that with ``PUT /membership/shops/{shop}``: leave the
program (no points earned or spent, no member price, no vouchers), stop
taking points, turn the member price off, or leave SKUs out of it.

Placement reads programs on every order, so they are cached per process
like TMS's freight templates: a change made through this process drops the
cache at once; other workers notice within ``program_recheck_seconds``,
after which an order reads one version row and reloads only when it moved.
Within the interval a placement costs no query for them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import utcnow

from . import tables as t

VERSION = "programs"


class Program(msgspec.Struct, frozen=True, kw_only=True):
    shop: str
    enabled: bool = True
    points: bool = True
    member_price: bool = True
    excluded_skus: frozenset[str] = frozenset()
    custom: bool = False  # set by staff, not the default

    def accepts_points(self) -> bool:
        return self.enabled and self.points

    def prices_for_members(self) -> bool:
        return self.enabled and self.member_price


class _Book(msgspec.Struct):
    version: int
    programs: dict[str, Program]
    checked: float


class ProgramCache:
    def __init__(self, recheck_seconds: float, join_by_default: bool) -> None:
        self.recheck = recheck_seconds
        self.default = join_by_default
        self._book: _Book | None = None
        self._lock = threading.Lock()
        v = t.versions.c
        self._version = sa.select(v.version).where(v.name == VERSION)

    def get(self, conn: sa.Connection, shop: str) -> Program:
        book = self._book
        now = time.monotonic()
        if book is None or now - book.checked >= self.recheck:
            book = self._refresh(conn, book, now)
        found = book.programs.get(shop)
        if found is None:
            # Shops that never set a program: the default, made once per shop and version.
            found = book.programs[shop] = Program(shop=shop, enabled=self.default)
        return found

    def _refresh(self, conn: sa.Connection, book: _Book | None, now: float) -> _Book:
        version = conn.execute(self._version).scalar() or 0
        if book is not None and book.version == version:
            book.checked = now
            return book
        rows = conn.execute(sa.select(t.programs)).all() if version else []
        fresh = _Book(version, {r.shop: _program(r) for r in rows}, now)
        with self._lock:
            self._book = fresh
        return fresh

    def invalidate(self) -> None:
        with self._lock:
            self._book = None


def _program(row: Any) -> Program:
    return Program(
        shop=row.shop,
        enabled=row.enabled,
        points=row.points,
        member_price=row.member_price,
        excluded_skus=frozenset(row.excluded_skus or ()),
        custom=True,
    )


def load(conn: sa.Connection, shop: str, join_by_default: bool) -> Program:
    """A shop's program as stored (the default when it never set one), bypassing the cache."""
    row = conn.execute(sa.select(t.programs).where(t.programs.c.shop == shop)).first()
    return _program(row) if row is not None else Program(shop=shop, enabled=join_by_default)


def save(conn: sa.Connection, program: Program, actor: str) -> None:
    """Write a shop's program and move the version, in the caller's transaction."""
    values = {
        "enabled": program.enabled,
        "points": program.points,
        "member_price": program.member_price,
        "excluded_skus": sorted(program.excluded_skus) or None,
        "updated_by": actor,
        "updated_at": utcnow(),
    }
    p, v = t.programs.c, t.versions.c
    if not conn.execute(t.programs.update().where(p.shop == program.shop).values(**values)).rowcount:
        conn.execute(t.programs.insert().values(shop=program.shop, **values))
    if not conn.execute(t.versions.update().where(v.name == VERSION).values(version=v.version + 1)).rowcount:
        conn.execute(t.versions.insert().values(name=VERSION, version=1))
