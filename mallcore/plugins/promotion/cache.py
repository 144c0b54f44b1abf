"""Campaigns and coupon templates cached per process, per shop, so pricing an order
usually reads nothing but the coupons it names.

Every change to a shop's campaigns or templates (or the platform's, under
the key ``'*'``) bumps that key's row in ``promotion_versions`` in the
changing transaction, and drops this process's entry after the commit. Other
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
from .engine import title
from .model import Offer, Terms
from .rules import RULES, label


class Book(msgspec.Struct):
    """One owner's campaigns that have not ended, and its coupon templates whose coupons
    may still be good, as loaded at ``version``."""

    version: int
    checked: float
    offers: tuple[Offer, ...] = ()
    templates: dict[int, Terms] = msgspec.field(default_factory=dict)


def terms_from_row(row: Any) -> Terms:
    return Terms(
        id=row.id,
        shop=row.shop,
        name=row.name,
        kind=row.kind,
        value=row.value,
        cap=row.cap,
        min_spend=row.min_spend,
        currency=row.currency,
        skus=frozenset(row.skus or ()),
        categories=frozenset(int(c) for c in row.categories or ()),
    )


def offer_from_row(row: Any) -> Offer:
    rules = msgspec.convert(row.rules, RULES[row.type])
    return Offer(
        id=row.id,
        shop=row.shop,
        name=row.name,
        type=row.type,
        rules=rules,
        currency=row.currency,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        skus=frozenset(row.skus or ()),
        categories=frozenset(int(c) for c in row.categories or ()),
        # no group given: a group of its own (it stacks with every other campaign)
        group=row.stacking_group or f"#{row.id}",
        priority=row.priority,
        title=title(row.name, label(rules, row.currency)),
    )


class OfferCache:
    def __init__(self, recheck_seconds: float) -> None:
        self.recheck = recheck_seconds
        self._books: dict[str, Book] = {}
        self._lock = threading.Lock()
        v, c, tp = t.versions.c, t.campaigns.c, t.templates.c
        self._versions = sa.select(v.key, v.version).where(v.key.in_(sa.bindparam("keys", expanding=True)))
        live = sa.and_(c.status == "active", c.ends_at > sa.bindparam("now"))
        self._campaigns = {
            "shop": sa.select(t.campaigns).where(c.shop == sa.bindparam("shop"), live),
            "platform": sa.select(t.campaigns).where(c.shop.is_(None), live),
        }
        # Ended templates too: their coupons stay good until they expire.
        good = sa.or_(tp.valid_to.is_(None), tp.valid_to > sa.bindparam("now"))
        self._templates = {
            "shop": sa.select(t.templates).where(tp.shop == sa.bindparam("shop"), good),
            "platform": sa.select(t.templates).where(tp.shop.is_(None), good),
        }

    def books(self, conn: sa.Connection, shop: str) -> tuple[Book, Book]:
        """The shop's book and the platform's, fresh within ``recheck_seconds``."""
        mine, platform = self._books.get(shop), self._books.get(t.PLATFORM)
        now = time.monotonic()
        if (
            mine is None
            or platform is None
            or now - mine.checked >= self.recheck
            or now - platform.checked >= self.recheck
        ):
            mine, platform = self._refresh(conn, shop, now)
        return mine, platform

    def offers(self, conn: sa.Connection, shop: str) -> tuple[Offer, ...]:
        """The shop's and the platform's campaigns that have not ended (live or to come)."""
        mine, platform = self.books(conn, shop)
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
                book = self.load(conn, key, version, now)
            books.append(book)
        return books[0], books[1]

    def load(
        self, conn: sa.Connection, key: str, version: int | None = None, now: float | None = None
    ) -> Book:
        """(Re)load ``key``'s book now: after a version change, or a template not found in it."""
        if version is None:
            found = conn.execute(self._versions, {"keys": [key]}).first()
            version = found.version if found is not None else 0
        book = Book(version, time.monotonic() if now is None else now)
        if version:
            which = "platform" if key == t.PLATFORM else "shop"
            params = {"shop": key, "now": utcnow()}
            book.offers = tuple(offer_from_row(r) for r in conn.execute(self._campaigns[which], params))
            book.templates = {r.id: terms_from_row(r) for r in conn.execute(self._templates[which], params)}
        with self._lock:
            self._books[key] = book
        return book

    def invalidate(self, keys: Sequence[str]) -> None:
        with self._lock:
            for key in keys:
                self._books.pop(key, None)


def bump_version(conn: sa.Connection, key: str) -> None:
    """Mark ``key``'s campaigns or templates changed (in the changing transaction)."""
    v = t.versions.c
    updated = conn.execute(t.versions.update().where(v.key == key).values(version=v.version + 1)).rowcount
    if not updated:
        conn.execute(t.versions.insert().values(key=key, version=1))
