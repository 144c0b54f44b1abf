"""信用分 Credit: one profile per customer risk has seen, and what moves its score.

The score starts at ``credit.initial`` and stays between ``credit.minimum``
and ``credit.maximum``. A completed order raises it
(``order_completed``); a rejected review (``review_rejected``), a refund or
after-sale case rejected as abusive (``abusive_refund``), a chargeback
(``chargeback``) and a confirmed merchant report (``report_confirmed``)
lower it. Each change is an event row (who, why, the score after). Rules
read it as ``customer.credit``.

Profiles are read on every placement, so each process keeps them for
``cache_recheck_seconds``; a score change is seen by other workers within
that time. A customer's first placement writes their profile (first seen =
the account's age as risk knows it).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from . import tables as t

COUNTERS = {
    "order_completed": "completed_orders",
    "review_rejected": "rejected_reviews",
    "abusive_refund": "abusive_refunds",
    "chargeback": "chargebacks",
}


class Profile(msgspec.Struct, frozen=True):
    customer: str
    credit: int
    first_seen_at: datetime
    completed_orders: int = 0
    rejected_reviews: int = 0
    chargebacks: int = 0
    abusive_refunds: int = 0


class Profiles:
    def __init__(self, settings: Any, recheck: float) -> None:
        self.settings = settings  # CreditSettings
        self.recheck = recheck
        self._cache: dict[str, tuple[float, Profile]] = {}
        self._lock = threading.Lock()
        self._select = sa.select(
            t.profiles.c.customer,
            t.profiles.c.credit,
            t.profiles.c.first_seen_at,
            t.profiles.c.completed_orders,
            t.profiles.c.rejected_reviews,
            t.profiles.c.chargebacks,
            t.profiles.c.abusive_refunds,
        ).where(t.profiles.c.customer == sa.bindparam("customer"))

    def get(self, conn: sa.Connection, customer: str, now: datetime) -> Profile:
        """The customer's profile, written on first sight (inside the caller's transaction)."""
        held = self._cache.get(customer)
        tick = time.monotonic()
        if held is not None and tick - held[0] < self.recheck:
            return held[1]
        row = conn.execute(self._select, {"customer": customer}).first()
        if row is None:
            insert = _insert_ignore(conn).values(
                customer=customer, credit=self.settings.initial, first_seen_at=now, updated_at=now
            )
            conn.execute(insert)
            row = conn.execute(self._select, {"customer": customer}).first()
        assert row is not None
        profile = Profile(*row)
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[customer] = (tick, profile)
        return profile

    def forget(self, customer: str) -> None:
        with self._lock:
            self._cache.pop(customer, None)

    def change(
        self,
        conn: sa.Connection,
        customer: str,
        kind: str,
        *,
        actor: str,
        now: datetime,
        order_id: int | None = None,
        note: str | None = None,
        delta: int | None = None,
    ) -> int:
        """Move the score by the configured amount for ``kind``; returns the new score."""
        s = self.settings
        step = getattr(s, kind) if delta is None else delta
        self.get(conn, customer, now)  # written on first sight
        c = t.profiles.c
        values: dict[str, Any] = {
            "credit": sa.func.max(s.minimum, sa.func.min(s.maximum, c.credit + step))
            if conn.dialect.name == "sqlite"
            else sa.func.greatest(s.minimum, sa.func.least(s.maximum, c.credit + step)),
            "updated_at": now,
        }
        column = COUNTERS.get(kind)
        if column is not None:
            values[column] = c[column] + 1
        credit = conn.execute(
            t.profiles.update().where(c.customer == customer).values(**values).returning(c.credit)
        ).scalar_one()
        conn.execute(
            t.credit_events.insert().values(
                customer=customer,
                kind=kind,
                delta=step,
                credit=credit,
                order_id=order_id,
                actor=actor,
                note=(note or "")[:500] or None,
                at=now,
            )
        )
        self.forget(customer)
        return int(credit)


def _insert_ignore(conn: sa.Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(t.profiles).on_conflict_do_nothing(index_elements=["customer"])
    return sqlite.insert(t.profiles).on_conflict_do_nothing(index_elements=["customer"])
