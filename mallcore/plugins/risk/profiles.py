"""信用分 Credit: one profile per customer risk has seen, and what moves its score.

The score starts at ``credit.initial`` and stays between ``credit.minimum``
and ``credit.maximum``. A completed order raises it
(``order_completed``); a rejected review (``review_rejected``), a refund or
after-sale case rejected as abusive (``abusive_refund``), a chargeback
(``chargeback``) and a confirmed merchant report (``report_confirmed``)
lower it. Each change is an event row (who, why, the score after). Rules
read it as ``customer.credit``.

Profiles are read on every placement, so each process keeps those it has
read, and forgets one as soon as its score moves: its own changes at once,
other workers' when it next looks at the credit events (every
``cache_recheck_seconds``; it looks a minute back each time, so a change
committed late is not missed). A customer the process has not seen costs
one precompiled read. A customer's first placement writes their profile
(first seen = the account's age as risk knows it).
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mallcore.kernel.fast import statement

from . import tables as t

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

# How far back each look at the credit events reaches: a change whose transaction
# committed this long after it was stamped is still seen.
LOOK_BACK = timedelta(minutes=1)
# Profiles kept per process (then the cache starts afresh).
CACHE_SIZE = 200_000
PROFILE_COUNTS = (
    t.profiles.c.completed_orders,
    t.profiles.c.rejected_reviews,
    t.profiles.c.chargebacks,
    t.profiles.c.abusive_refunds,
)

COUNTERS = {
    "order_completed": "completed_orders",
    "review_rejected": "rejected_reviews",
    "abusive_refund": "abusive_refunds",
    "chargeback": "chargebacks",
}


class Profile(msgspec.Struct, frozen=True, gc=False):
    customer: str
    credit: int
    first_seen_at: datetime
    completed_orders: int = 0
    rejected_reviews: int = 0
    chargebacks: int = 0
    abusive_refunds: int = 0


class Profiles:
    def __init__(self, settings: Any, recheck: float, kernel: Kernel) -> None:
        self.settings = settings  # CreditSettings
        self.recheck = recheck
        self._cache: dict[str, Profile] = {}
        self._lock = threading.Lock()
        self._looked = -1.0  # when the credit events were last looked at (monotonic)
        self._since: datetime | None = None  # ... from when
        p = t.profiles.c
        self._select = statement(
            sa.select(p.customer, p.credit, p.first_seen_at, *PROFILE_COUNTS).where(
                p.customer == sa.bindparam("customer")
            ),
            kernel.db,
            returns_rows=True,
        )
        # A customer's first placement writes the profile (or finds another worker's).
        insert = postgresql.insert if kernel.db.engine.dialect.name == "postgresql" else sqlite.insert
        self._insert = statement(
            insert(t.profiles)
            .on_conflict_do_nothing(index_elements=["customer"])
            .values(
                customer=sa.bindparam("who"),
                credit=sa.bindparam("initial"),
                first_seen_at=sa.bindparam("now"),
                updated_at=sa.bindparam("now"),
            )
            .returning(p.customer, p.credit, p.first_seen_at, *PROFILE_COUNTS),
            kernel.db,
            {"now": p.first_seen_at.type},
            returns_rows=True,
        )
        dialect = kernel.db.engine.dialect
        # rows come from the driver's cursor: the column's own result processing (UTC-aware)
        convert = p.first_seen_at.type.dialect_impl(dialect).result_processor(dialect, None)
        self._first_seen = convert or (lambda value: value)

    def get(self, conn: sa.Connection, customer: str, now: datetime) -> Profile:
        """The customer's profile, written on first sight (inside the caller's transaction)."""
        if time.monotonic() - self._looked >= self.recheck:
            self._forget_changed(conn, now)
        held = self._cache.get(customer)
        if held is not None:
            return held
        row = self._read(conn, customer)
        if row is None:
            params = {"who": customer, "initial": self.settings.initial, "now": now}
            written = self._insert.execute(conn, params).rows
            # (nothing back: another worker wrote it a moment ago)
            row = self._row(written[0]) if written else self._read(conn, customer)
        assert row is not None
        profile = Profile(*row)
        with self._lock:
            if len(self._cache) >= CACHE_SIZE:
                self._cache.clear()
            self._cache[customer] = profile
        return profile

    def _read(self, conn: sa.Connection, customer: str) -> tuple[Any, ...] | None:
        rows = self._select.execute(conn, {"customer": customer}).rows
        return self._row(rows[0]) if rows else None

    def _row(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        return (*row[:2], self._first_seen(row[2]), *row[3:])

    def _forget_changed(self, conn: sa.Connection, now: datetime) -> None:
        """Forget the profiles other workers changed since the last look."""
        with self._lock:
            since, self._since, self._looked = self._since, now - LOOK_BACK, time.monotonic()
        if since is None:
            return  # nothing cached yet that could be stale
        e = t.credit_events.c
        changed = conn.execute(sa.select(e.customer).where(e.at > since).distinct()).scalars().all()
        if changed:
            with self._lock:
                for customer in changed:
                    self._cache.pop(customer, None)

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
