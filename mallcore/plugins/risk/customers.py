"""What risk staff see of a customer: the credit score, what moved it, and chargebacks
they record (a payment provider's dispute lowers the score)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import NotFound, Principal, utcnow
from mallcore.kernel.http import Reply
from mallcore.kernel.tables import orders as kernel_orders

from . import tables as t
from .schemas import ChargebackIn, CreditEventView, ProfileView, StatsView

if TYPE_CHECKING:
    from . import RiskCenter


class Customers:
    def __init__(self, center: RiskCenter) -> None:
        self.center = center

    def _visible(self, conn: sa.Connection, principal: Principal, customer: str) -> None:
        """Shop risk staff see customers who ordered in their shop; platform staff all."""
        if principal.is_platform:
            return
        o = kernel_orders.c
        seen = conn.execute(
            sa.select(o.id).where(o.customer == customer, o.shop == principal.shop).limit(1)
        ).first()
        if seen is None:
            raise NotFound(f"customer {customer} not found", code="customer_not_found")

    def _view(self, conn: sa.Connection, customer: str, limit: int = 50) -> ProfileView:
        p = t.profiles.c
        row = conn.execute(sa.select(t.profiles).where(p.customer == customer)).first()
        if row is None:
            raise NotFound(f"customer {customer} not found", code="customer_not_found")
        e = t.credit_events.c
        events = conn.execute(
            sa.select(t.credit_events).where(e.customer == customer).order_by(e.id.desc()).limit(limit)
        ).all()
        return ProfileView(
            customer=row.customer,
            credit=row.credit,
            first_seen_at=row.first_seen_at,
            completed_orders=row.completed_orders,
            rejected_reviews=row.rejected_reviews,
            chargebacks=row.chargebacks,
            abusive_refunds=row.abusive_refunds,
            events=[
                CreditEventView(
                    id=ev.id,
                    kind=ev.kind,
                    delta=ev.delta,
                    credit=ev.credit,
                    order_id=ev.order_id,
                    actor=ev.actor,
                    note=ev.note,
                    at=ev.at,
                )
                for ev in events
            ],
        )

    def get(self, principal: Principal, customer: str) -> ProfileView:
        with self.center.kernel.db.transaction(write=False) as conn:
            self._visible(conn, principal, customer)
            return self._view(conn, customer)

    def chargeback(self, principal: Principal, customer: str, data: ChargebackIn, reply: Reply) -> None:
        with self.center.kernel.db.transaction() as conn:
            self._visible(conn, principal, customer)
            if data.order_id is not None:
                o = kernel_orders.c
                owner = conn.execute(sa.select(o.customer).where(o.id == data.order_id)).scalar()
                if owner != customer:
                    raise NotFound(f"order {data.order_id} of {customer} not found", code="order_not_found")
            self.center.profiles.change(
                conn,
                customer,
                "chargeback",
                actor=principal.subject,
                now=utcnow(),
                order_id=data.order_id,
                note=data.note,
            )
            reply(conn, self._view(conn, customer), 201)

    def stats(self, principal: Principal) -> StatsView:
        """What a console page shows at a glance (the caller's shop, or everything)."""
        now = utcnow()
        shop = None if principal.is_platform else principal.shop

        def scoped(stmt: Any, column: Any) -> Any:
            return stmt if shop is None else stmt.where(column == shop)

        r, rp, d, li, ru = t.reviews.c, t.reports.c, t.decisions.c, t.lists.c, t.rules.c
        self.center.decisions.flush()
        with self.center.kernel.db.transaction(write=False) as conn:
            reviews = conn.execute(
                scoped(sa.select(sa.func.count()).where(r.status == "open"), r.shop)
            ).scalar_one()
            reports = conn.execute(
                scoped(sa.select(sa.func.count()).where(rp.status == "open"), rp.shop)
            ).scalar_one()
            by_action = dict(
                conn.execute(
                    scoped(
                        sa.select(d.action, sa.func.count())
                        .where(d.created_at >= now - timedelta(hours=24))
                        .group_by(d.action),
                        d.shop,
                    )
                ).all()
            )
            by_kind = dict(
                conn.execute(
                    scoped(
                        sa.select(li.kind, sa.func.count())
                        .where(li.removed_at.is_(None), sa.or_(li.expires_at.is_(None), li.expires_at > now))
                        .group_by(li.kind),
                        li.shop,
                    )
                ).all()
            )
            rules = conn.execute(
                scoped(
                    sa.select(sa.func.count()).where(ru.removed_at.is_(None), ru.enabled.is_(True)), ru.shop
                )
            ).scalar_one()
        if shop is None:
            rules += len(self.center.settings.rules)
        return StatsView(
            open_reviews=int(reviews),
            open_reports=int(reports),
            decisions_24h={k: int(v) for k, v in by_action.items()},
            list_entries={k: int(v) for k, v in by_kind.items()},
            rules=int(rules),
        )
