"""The read side of orders: an order as clients see it, lists of orders, the timeline.

Nothing here writes. Every read runs in a read transaction of its own,
except :meth:`OrderViews.render` and :meth:`OrderViews.timeline_entries`,
which take the caller's connection (a stage renders the order it just
changed, a center shows the timeline beside its own rows).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import states
from . import tables as t
from .schemas import AdjustmentView, AllocationView, LineView, OrderSummary, OrderView, TimelineView
from .states import OrderStatus as S
from .types import Adjustment, Line, Order, Phase, Principal

if TYPE_CHECKING:
    from .db import Database
    from .order_store import OrderStore

_PHASE_NAMES = {int(p): p.name.lower() for p in Phase}

# Lets centers add their part to a rendered order (the ``order_view`` hook).
ViewHook = Callable[[sa.Connection, Order, OrderView], None]


class OrderViews:
    def __init__(
        self, db: Database, store: OrderStore, *, on_render: ViewHook, tracking_url: Callable[[int], str]
    ) -> None:
        self.db = db
        self.store = store
        self._on_render = on_render
        self._tracking_url = tracking_url

    def render(
        self,
        order: Order,
        lines: Sequence[Line],
        adjustments: Sequence[Adjustment],
        *,
        conn: sa.Connection | None = None,
    ) -> OrderView:
        """The order as clients see it; with ``conn``, centers add their part (``order_view``)."""
        assert order.id is not None
        view = OrderView(
            id=order.id,
            shop=order.shop,
            customer=order.customer,
            status=order.status,
            currency=order.currency,
            subtotal=order.subtotal,
            discount=order.discount,
            shipping=order.shipping,
            fees=order.fees,
            total=order.total,
            paid=order.paid,
            refunded=order.refunded,
            lines=[
                LineView(
                    id=line.id or 0,
                    line_no=line.line_no,
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price=line.unit_price or 0,
                    subtotal=line.subtotal,
                    discount=line.discount,
                    shipping=line.shipping,
                    fees=line.fees,
                    total=line.total,
                )
                for line in lines
            ],
            adjustments=[
                AdjustmentView(
                    source=a.source,
                    reason=a.reason,
                    amount=a.amount,
                    phase=_PHASE_NAMES.get(a.phase, str(a.phase)),
                    line_id=a.line_id,
                    code=a.code,
                    funded_by=a.funded_by,
                    allocation=[AllocationView(k, v) for k, v in (a.allocation or {}).items()],
                )
                for a in adjustments
            ],
            tracking_url=self._tracking_url(order.id) if order.id else None,
            address=order.address,
            coupons=order.coupons,
            points=order.points,
            parent_id=order.parent_id,
            hold=order.hold,
            placed_at=order.placed_at,
            updated_at=order.updated_at,
            extra=order.extra,
        )
        if conn is not None:
            self._on_render(conn, order, view)
        return view

    def get(self, principal: Principal, order_id: int) -> OrderView:
        with self.db.transaction(write=False) as conn:
            order = self.store.visible(conn, principal, order_id)
            return self.render(
                order,
                self.store.load_lines(conn, order_id),
                self.store.load_adjustments(conn, order_id),
                conn=conn,
            )

    def search(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        shop: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[OrderSummary]:
        """Orders ``principal`` may see, newest first (``before``: an id, for the next page)."""
        o = t.orders.c
        stmt = sa.select(o.id, o.shop, o.customer, o.status, o.currency, o.total, o.placed_at)
        if not principal.is_admin:
            if principal.has("merchant", "warehouse", "finance"):
                if not principal.is_platform:
                    stmt = stmt.where(o.shop == principal.shop)
            else:
                stmt = stmt.where(o.customer == principal.subject)
        if status:
            stmt = stmt.where(o.status == status)
        if shop:
            stmt = stmt.where(o.shop == shop)
        if before:
            stmt = stmt.where(o.id < before)
        stmt = stmt.order_by(o.id.desc()).limit(max(1, min(limit, 200)))
        with self.db.transaction(write=False) as conn:
            return [OrderSummary(**row._asdict()) for row in conn.execute(stmt)]

    def timeline(
        self, principal: Principal, order_id: int, *, lang: str = "en", ref: str | None = None
    ) -> list[TimelineView]:
        """The timeline ``principal`` may read: staff of the shop see internal entries too."""
        with self.db.transaction(write=False) as conn:
            order = self.store.visible(conn, principal, order_id)
            staff = principal.is_admin or principal.can_act_for_shop(
                order.shop, "merchant", "warehouse", "finance"
            )
            return self.timeline_entries(conn, order_id, lang=lang, public_only=not staff, ref=ref)

    def timeline_entries(
        self,
        conn: sa.Connection,
        order_id: int,
        *,
        lang: str = "en",
        public_only: bool = True,
        ref: str | None = None,
    ) -> list[TimelineView]:
        """The order's timeline, oldest first: its placement, then every entry centers wrote."""
        entries = []
        if ref is None:
            o = t.orders.c
            placed = conn.execute(
                sa.select(o.customer, o.placed_at, o.total, o.currency, o.parent_id).where(o.id == order_id)
            ).first()
            if placed is not None:
                entries.append(_placement_entry(placed, lang))
        c = t.order_timeline.c
        stmt = sa.select(t.order_timeline).where(c.order_id == order_id)
        if public_only:
            stmt = stmt.where(c.public.is_(True))
        if ref is not None:
            stmt = stmt.where(c.ref == ref)
        for r in conn.execute(stmt.order_by(c.id)):
            message = (r.messages or {}).get(lang) or r.message
            entries.append(
                TimelineView(
                    at=r.at,
                    kind=r.kind,
                    actor=r.actor,
                    message=message,
                    public=r.public,
                    ref=r.ref,
                    data=r.data,
                )
            )
        return entries


def _placement_entry(row: Any, lang: str) -> TimelineView:
    # The placement has no timeline row: the order row says who placed it and when.
    if row.parent_id is not None:
        en, zh = (
            f"Replacement order created for order {row.parent_id}",
            f"换新订单已创建(原订单 {row.parent_id})",
        )
    else:
        en, zh = states.MESSAGES[S.AWAITING_PAYMENT]
    return TimelineView(
        at=row.placed_at,
        kind="order.placed",
        actor=row.customer,
        message=zh if lang == "zh" else en,
        public=True,
        data={"total": row.total, "currency": row.currency},
    )
