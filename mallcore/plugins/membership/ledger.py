"""The points ledger (积分): every movement a row, the balance their sum.

The rule, in one place:

- A member's spendable balance (``membership_members.points``) is the sum
  of the ``delta`` of their ledger rows, and ``held`` is what unpaid orders
  hold (holds less their releases). Every write changes the member row with
  one conditional ``UPDATE`` and adds its rows in the same transaction, so
  the two never disagree (:meth:`Ledger.check` proves it, and the tests
  call it after every step).
- Kinds: ``earn`` (order completed), ``hold`` (placed with points),
  ``release`` (the hold ends: paid, cancelled or expired unpaid),
  ``spend`` (paid: the held points are gone), ``return`` (points spent on
  a refunded share come back), ``clawback`` (points earned on a refunded
  share go), ``expire`` (FIFO, by the expiry job), ``adjust`` (staff).
- A hold or a staff deduction never takes the balance below zero (the
  ``UPDATE`` carries ``points + delta >= 0``; concurrent orders spending the
  same points queue on the member row and exactly those that fit succeed).
  Only a claw-back may: the customer already spent the points they earned
  on goods they returned. Its row then records the ``debt`` and its reason
  says so; later earnings pay it off first.
- Movements that change what the platform owes (all but hold and release)
  are handed to ``points_moved`` in the same transaction, so the finance
  center's points liability always equals the points outstanding.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import InvalidInput, Rejected, utcnow

from . import tables as t
from .schemas import PointsRow

if TYPE_CHECKING:
    from . import MembershipCenter

KINDS = ("earn", "spend", "hold", "release", "expire", "clawback", "return", "adjust")
# Movements of what the platform owes its members (hold and release only move points aside).
OWED = frozenset({"earn", "spend", "expire", "clawback", "return", "adjust"})


class Move(msgspec.Struct, kw_only=True):
    """One ledger row to write: ``delta`` on the spendable balance, and why."""

    kind: str
    delta: int
    reason: str
    order_id: int | None = None
    case_id: int | None = None
    refund_id: int | None = None
    shop: str | None = None  # the order's shop, for the bookings of spend and return
    data: dict[str, Any] | None = None


class Written(msgspec.Struct, kw_only=True):
    """A row as written: its id is not read back (one statement for all rows)."""

    kind: str
    delta: int
    balance: int
    debt: int
    reason: str
    at: datetime
    order_id: int | None
    case_id: int | None
    refund_id: int | None


class Ledger:
    def __init__(self, center: MembershipCenter) -> None:
        self.center = center
        m = t.members.c
        base = (
            t.members.update()
            .where(m.customer == sa.bindparam("c"))
            .values(
                points=m.points + sa.bindparam("d"),
                held=m.held + sa.bindparam("h"),
                updated_at=sa.bindparam("now"),
            )
        )
        self._move = base.returning(m.points)
        self._move_floored = base.where(m.points + sa.bindparam("d") >= 0).returning(m.points)

    # -- members -------------------------------------------------------------------

    def ensure(self, conn: sa.Connection, customer: str, now: datetime | None = None) -> bool:
        """Make the member row on first use; ``True`` if it was made now."""
        m = t.members.c
        if conn.execute(sa.select(m.customer).where(m.customer == customer)).first() is not None:
            return False
        now = now or utcnow()
        try:
            with conn.begin_nested():
                conn.execute(
                    t.members.insert().values(
                        customer=customer,
                        level=self.center.ladder.base,
                        growth=0,
                        lifetime_growth=0,
                        period_start=now,
                        points=0,
                        held=0,
                        vouchers_held=0,
                        vouchers_used=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            return False  # made meanwhile by a concurrent first use
        return True

    # -- writing -------------------------------------------------------------------

    def write(
        self,
        conn: sa.Connection,
        customer: str,
        moves: Sequence[Move],
        *,
        actor: str,
        held: int = 0,
        floor: bool = False,
        at: datetime | None = None,
    ) -> list[Written]:
        """Apply ``moves`` (and ``held``, the change of held points) to the member, in order.

        With ``floor`` the balance may not end below zero: 422
        ``points_insufficient`` and nothing written. The member row is made
        on first use.
        """
        at = at or utcnow()
        total = sum(move.delta for move in moves)
        stmt = self._move_floored if floor else self._move
        params = {"c": customer, "d": total, "h": held, "now": at}
        balance = conn.execute(stmt, params).scalar()
        if balance is None:
            if self.ensure(conn, customer, at) or not floor:
                balance = conn.execute(stmt, params).scalar()
            if balance is None:
                raise self.insufficient(conn, customer, -total)
        return self.record(conn, customer, moves, int(balance), actor=actor, at=at)

    def record(
        self,
        conn: sa.Connection,
        customer: str,
        moves: Sequence[Move],
        balance: int,
        *,
        actor: str,
        at: datetime,
    ) -> list[Written]:
        """Insert the rows of ``moves`` whose member update left ``balance``; book what is owed."""
        written: list[Written] = []
        after = balance - sum(move.delta for move in moves)
        for move in moves:
            after += move.delta
            if after < 0 and move.delta < 0:
                move.reason = (
                    f"{move.reason} (the earned points were spent already: balance {after}, "
                    f"{-after} points owed, paid off by the next points earned)"
                )
            written.append(
                Written(
                    kind=move.kind,
                    delta=move.delta,
                    balance=after,
                    debt=max(0, -after),
                    reason=move.reason[:300],
                    at=at,
                    order_id=move.order_id,
                    case_id=move.case_id,
                    refund_id=move.refund_id,
                )
            )
        conn.execute(
            t.points.insert(),
            [
                {
                    "customer": customer,
                    "at": at,
                    "kind": row.kind,
                    "delta": row.delta,
                    "balance": row.balance,
                    "debt": row.debt,
                    "order_id": row.order_id,
                    "case_id": row.case_id,
                    "refund_id": row.refund_id,
                    "reason": row.reason,
                    "actor": actor,
                    "data": move.data,
                }
                for row, move in zip(written, moves, strict=True)
            ],
        )
        self._book(conn, customer, moves)
        return written

    def _book(self, conn: sa.Connection, customer: str, moves: Sequence[Move]) -> None:
        center = self.center
        hook = center.kernel.hook.points_moved
        for move in moves:
            if move.kind in OWED and move.delta:
                hook(
                    kernel=center.kernel,
                    conn=conn,
                    customer=customer,
                    kind=move.kind,
                    points=move.delta,
                    amount=move.delta * center.settings.point_value,
                    currency=center.currency,
                    order_id=move.order_id,
                    shop=move.shop,
                    reason=move.reason,
                )

    def insufficient(self, conn: sa.Connection, customer: str, wanted: int) -> Rejected:
        m = t.members.c
        row = conn.execute(sa.select(m.points, m.held).where(m.customer == customer)).first()
        balance, held = (int(row.points), int(row.held)) if row is not None else (0, 0)
        return Rejected(
            f"{wanted} points asked, {max(balance, 0)} available"
            + (f" ({held} held by unpaid orders)" if held else ""),
            code="points_insufficient",
            extra={"points": max(balance, 0), "held": held, "asked": wanted},
        )

    def adjust(self, conn: sa.Connection, customer: str, delta: int, reason: str, actor: str) -> PointsRow:
        """A staff adjustment (a goodwill gesture, a correction): never zero, always with a reason,
        and a deduction never takes the balance below zero."""
        if not delta:
            raise InvalidInput("an adjustment of 0 points changes nothing", code="points_delta_zero")
        if not reason.strip():
            raise InvalidInput("say why the points are adjusted (reason)", code="reason_required")
        self.write(
            conn,
            customer,
            [Move(kind="adjust", delta=delta, reason=reason.strip())],
            actor=actor,
            floor=delta < 0,
        )
        p = t.points.c
        return row_view(
            conn.execute(
                sa.select(t.points).where(p.customer == customer).order_by(p.id.desc()).limit(1)
            ).one()
        )

    # -- what an order has had ---------------------------------------------------------

    def of_order(self, conn: sa.Connection, order_id: int) -> dict[str, int]:
        """Sum of deltas per kind on ``order_id`` (``hold`` and ``spend`` negative)."""
        p = t.points.c
        return {
            kind: int(total)
            for kind, total in conn.execute(
                sa.select(p.kind, sa.func.sum(p.delta)).where(p.order_id == order_id).group_by(p.kind)
            )
        }

    # -- the invariant ---------------------------------------------------------------

    def check(self, conn: sa.Connection) -> list[dict[str, Any]]:
        """Members whose row disagrees with their ledger (points = sum of deltas, held = open
        holds, never below zero without a recorded debt); empty when all is well."""
        p, m = t.points.c, t.members.c
        sums = (
            sa.select(
                p.customer,
                sa.func.sum(p.delta).label("points"),
                sa.func.sum(sa.case((p.kind.in_(("hold", "release")), -p.delta), else_=0)).label("held"),
            )
            .group_by(p.customer)
            .subquery()
        )
        last_debt = (
            sa.select(p.debt).where(p.customer == m.customer).order_by(p.id.desc()).limit(1).scalar_subquery()
        )
        rows = conn.execute(
            sa.select(
                m.customer, m.points, m.held, sums.c.points, sums.c.held, last_debt.label("debt")
            ).select_from(t.members.outerjoin(sums, sums.c.customer == m.customer))
        ).all()
        bad = []
        for customer, points, held, ledger_points, ledger_held, debt in rows:
            ledger_points, ledger_held = int(ledger_points or 0), int(ledger_held or 0)
            if (
                points != ledger_points
                or held != ledger_held
                or held < 0
                or (points < 0 and not (debt or 0) > 0)
            ):
                bad.append(
                    {
                        "customer": customer,
                        "points": points,
                        "ledger_points": ledger_points,
                        "held": held,
                        "ledger_held": ledger_held,
                    }
                )
        return bad


def row_view(row: Any) -> PointsRow:
    """A ``membership_points`` row as clients see it."""
    return PointsRow(
        id=row.id,
        at=row.at,
        delta=row.delta,
        balance=row.balance,
        kind=row.kind,
        order_id=row.order_id,
        case_id=row.case_id,
        refund_id=row.refund_id,
        reason=row.reason,
        debt=row.debt,
        actor=row.actor,
    )
