"""Points expire in lots, oldest first (FIFO), ``expire_after_days`` after they were earned.

A lot is a row that gives points: ``earn`` or a positive staff ``adjust``.
Everything that takes points (holds, spending, claw-backs, deductions,
earlier expiries) takes them from the oldest lots first, and points that
come back (a cancelled order's release, a refund's return) go back to the
oldest lots they came from. So the points still on hand from lots older than
the cut-off are whatever the balance holds beyond the lots earned since::

    expiring now = max(0, balance - points from lots earned after the cut-off)

which needs no per-lot bookkeeping: one sum per member. Held points are
not in the balance, so an unpaid order keeps its points from expiring; if
it is cancelled, they come back and the next run expires what is due.
Each member is expired in their own transaction, re-computed with the
member row locked, so two runners never expire the same points twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from mallcore.kernel import utcnow

from . import tables as t
from .ledger import Move

if TYPE_CHECKING:
    from . import MembershipCenter

LOTS = ("earn", "adjust")


def recent_lots(customer: sa.ColumnElement[str], since: datetime) -> sa.ScalarSelect[int]:
    """Points given to ``customer`` by lots earned at or after ``since``."""
    p = t.points.c
    return (
        sa.select(sa.func.coalesce(sa.func.sum(p.delta), 0))
        .where(p.customer == customer, p.kind.in_(LOTS), p.delta > 0, p.at >= since)
        .scalar_subquery()
    )


class Expiry:
    def __init__(self, center: MembershipCenter) -> None:
        self.center = center

    def due(self, conn: sa.Connection, customer: str, now: datetime, within: timedelta = timedelta(0)) -> int:
        """Points of ``customer`` that will have expired by ``now + within`` (if none are spent)."""
        days = self.center.settings.expire_after_days
        if not days:
            return 0
        m = t.members.c
        cutoff = now + within - timedelta(days=days)
        row = conn.execute(
            sa.select(m.points, recent_lots(m.customer, cutoff)).where(m.customer == customer)
        ).first()
        if row is None:
            return 0
        return max(0, int(row[0]) - int(row[1]))

    def run(self, now: datetime | None = None) -> int:
        """Expire what is due for every member; returns the points expired."""
        days = self.center.settings.expire_after_days
        if not days:
            return 0
        now = now or utcnow()
        cutoff = now - timedelta(days=days)
        m = t.members.c
        db = self.center.kernel.db
        expired = 0
        after = ""
        while True:
            with db.transaction(write=False) as conn:
                due = (
                    conn.execute(
                        sa.select(m.customer)
                        .where(m.points > 0, m.points > recent_lots(m.customer, cutoff), m.customer > after)
                        .order_by(m.customer)
                        .limit(self.center.settings.job_batch)
                    )
                    .scalars()
                    .all()
                )
            if not due:
                return expired
            for customer in due:
                with db.transaction() as conn:
                    expired += self._expire(conn, customer, now, cutoff)
            after = due[-1]

    def _expire(self, conn: sa.Connection, customer: str, now: datetime, cutoff: datetime) -> int:
        m = t.members.c
        locked = self.center.kernel.db.lock_clause(
            sa.select(m.points, recent_lots(m.customer, cutoff)).where(m.customer == customer)
        )
        row = conn.execute(locked).first()
        if row is None:
            return 0
        points = max(0, int(row[0]) - int(row[1]))
        if not points:
            return 0
        self.center.ledger.write(
            conn,
            customer,
            [
                Move(
                    kind="expire",
                    delta=-points,
                    reason=f"points earned before {self.center.local(cutoff):%Y-%m-%d} expired "
                    f"({self.center.settings.expire_after_days} days)",
                    data={"cutoff": cutoff.isoformat()},
                )
            ],
            actor="system",
            floor=True,
            at=now,
        )
        return points
