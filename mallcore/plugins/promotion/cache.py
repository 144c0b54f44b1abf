"""Live campaigns cached per process, per shop, so pricing an order usually reads nothing.

Every change to a shop's campaigns (or the platform's, under the key
``'*'``) bumps that key's row in ``promotion_versions`` in the changing
transaction, and drops this process's entry after the commit. Other
processes notice within ``recheck_seconds``: then one indexed read of the
two version rows an order needs (its shop's and the platform's) tells
whether to reload; within the interval pricing costs no query at all.
Windows are checked at pricing time, so a campaign starts and stops on
the second without any reload.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import utcnow

from . import tables as t
from .model import Offer
from .rules import RULES


class Book(msgspec.Struct):
    """One owner's campaigns that have not ended, as loaded at ``version``."""

    version: int
    checked: float
    offers: tuple[Offer, ...]


def offer_from_row(row: Any) -> Offer:
    return Offer(
        id=row.id,
        shop=row.shop,
        name=row.name,
        type=row.type,
        rules=msgspec.convert(row.rules, RULES[row.type]),
        currency=row.currency,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        skus=frozenset(row.skus or ()),
        categories=frozenset(int(c) for c in row.categories or ()),
        # no group given: a group of its own (it stacks with every other campaign)
        group=row.stacking_group or f"#{row.id}",
        priority=row.priority,
    )


class OfferCache:
    def __init__(self, recheck_seconds: float) -> None:
        self.recheck = recheck_seconds
        self._books: dict[str, Book] = {}
        self._lock = threading.Lock()
        v, c = t.versions.c, t.campaigns.c
        self._versions = sa.select(v.key, v.version).where(v.key.in_(sa.bindparam("keys", expanding=True)))
        live = sa.and_(c.status == "active", c.ends_at > sa.bindparam("now"))
        self._shop = sa.select(t.campaigns).where(c.shop == sa.bindparam("shop"), live)
        self._platform = sa.select(t.campaigns).where(c.shop.is_(None), live)

    def offers(self, conn: sa.Connection, shop: str) -> tuple[Offer, ...]:
        """The shop's and the platform's campaigns that have not ended (live or to come)."""
        mine, platform = self._books.get(shop), self._books.get(t.PLATFORM)
        now = time.monotonic()
        if (
            mine is None
            or platform is None
            or now - mine.checked >= self.recheck
            or now - platform.checked >= self.recheck
        ):
            mine, platform = self._refresh(conn, shop, now)
        return mine.offers + platform.offers if platform.offers else mine.offers

    def _refresh(self, conn: sa.Connection, shop: str, now: float) -> tuple[Book, Book]:
        versions = dict(conn.execute(self._versions, {"keys": [shop, t.PLATFORM]}).all())
        books = []
        for key in (shop, t.PLATFORM):
            version = versions.get(key, 0)
            book = self._books.get(key)
            if book is not None and book.version == version:
                book.checked = now
            else:
                book = Book(version, now, self._load(conn, key) if version else ())
                with self._lock:
                    self._books[key] = book
            books.append(book)
        return books[0], books[1]

    def _load(self, conn: sa.Connection, key: str) -> tuple[Offer, ...]:
        stmt, params = (
            (self._platform, {"now": utcnow()})
            if key == t.PLATFORM
            else (self._shop, {"shop": key, "now": utcnow()})
        )
        return tuple(offer_from_row(row) for row in conn.execute(stmt, params))

    def invalidate(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._books.pop(key, None)


def bump_version(conn: sa.Connection, key: str) -> None:
    """Mark ``key``'s campaigns changed (in the changing transaction)."""
    v = t.versions.c
    updated = conn.execute(t.versions.update().where(v.key == key).values(version=v.version + 1)).rowcount
    if not updated:
        conn.execute(t.versions.insert().values(key=key, version=1))
