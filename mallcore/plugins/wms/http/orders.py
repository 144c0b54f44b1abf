"""Orders as the warehouse sees them: ``GET /wms/orders/{id}``, the dispatch queue, dispatch.

Staff see and dispatch only their shop's orders (platform staff and admins:
all); any other order answers 404, as the kernel's order routes do.
"""

from __future__ import annotations

import sqlalchemy as sa
from litestar import Controller, get, post

from mallcore.kernel import Caller, NotFound, OrderStatus, visible_to
from mallcore.kernel import tables as kt
from mallcore.kernel.http import roles

from .. import tables as t
from ..schemas import (
    DispatchOut,
    MovementView,
    OrderStock,
    ParcelLine,
    ParcelView,
    QueueEntry,
    ReservationView,
    view_of,
)
from .deps import IdCursor, Limit, OrderId, Wms


class OrderController(Controller):
    path = "/"
    guards = [roles("warehouse", "merchant")]
    tags = ["wms"]

    @get("/orders/{order_id:int}", sync_to_thread=True)
    def order_stock(self, order_id: OrderId, principal: Caller, wms: Wms) -> OrderStock:
        """The order's reservations and stock movements (staff of its shop)."""
        r, m = t.reservations.c, t.movements.c
        with wms.kernel.db.transaction(write=False) as conn:
            order = wms.kernel.orders.visible(conn, principal, order_id)
            if not principal.can_act_for_shop(order.shop, "warehouse", "merchant"):
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            reservations = [
                view_of(ReservationView, row)
                for row in conn.execute(
                    sa.select(t.reservations).where(r.order_id == order_id).order_by(r.id)
                )
            ]
            moves = [
                view_of(MovementView, row)
                for row in conn.execute(sa.select(t.movements).where(m.order_id == order_id).order_by(m.id))
            ]
        return OrderStock(order_id=order_id, status=order.status, reservations=reservations, movements=moves)

    @get("/dispatch-queue", sync_to_thread=True, guards=[roles("warehouse")])
    def dispatch_queue(
        self, principal: Caller, wms: Wms, after: IdCursor = None, limit: Limit = 100
    ) -> list[QueueEntry]:
        """Paid orders waiting for dispatch, oldest first; page with ``after=<last order id>``."""
        o, li, r = kt.orders.c, kt.order_lines.c, t.reservations.c
        stmt = (
            sa.select(o.id, o.shop, o.placed_at, o.updated_at, o.hold)
            .where(o.status == OrderStatus.PAID.value, visible_to(principal, o.shop))
            .order_by(o.id)
            .limit(limit)
        )
        if after:
            stmt = stmt.where(o.id > after)
        with wms.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
            ids = [row.id for row in rows]
            if not ids:
                return []
            sizes = {
                row.order_id: (row.lines, row.units)
                for row in conn.execute(
                    sa.select(
                        li.order_id,
                        sa.func.count().label("lines"),
                        sa.func.sum(li.quantity).label("units"),
                    )
                    .where(li.order_id.in_(ids))
                    .group_by(li.order_id)
                )
            }
            held: dict[int, set[str]] = {}
            for row in conn.execute(
                sa.select(r.order_id, r.warehouse).where(r.order_id.in_(ids), r.status == "live").distinct()
            ):
                held.setdefault(row.order_id, set()).add(row.warehouse)
        return [
            QueueEntry(
                order_id=row.id,
                shop=row.shop,
                placed_at=row.placed_at,
                waiting_since=row.updated_at,
                lines=sizes.get(row.id, (0, 0))[0],
                units=int(sizes.get(row.id, (0, 0))[1] or 0),
                hold=row.hold,
                warehouses=sorted(held.get(row.id, ())),
            )
            for row in rows
        ]

    @post(
        "/orders/{order_id:int}/dispatch", status_code=200, sync_to_thread=True, guards=[roles("warehouse")]
    )
    def dispatch(self, order_id: OrderId, principal: Caller, wms: Wms) -> DispatchOut:
        """Dispatch a paid order now: the warehouse plan and its parcels."""
        orders = wms.kernel.orders
        with orders.stage("dispatch", order_id, principal) as ctx:
            if not principal.can_act_for_shop(ctx.order.shop, "warehouse"):
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            orders.dispatch_in(ctx)
            parcels = list(ctx.parcels)
        return DispatchOut(
            order_id=order_id,
            status=ctx.order.status,
            parcels=[
                ParcelView(
                    warehouse=p.warehouse,
                    region=p.region,
                    weight_grams=p.weight_grams,
                    freight=p.freight,
                    lines=[ParcelLine(line_id=line_id, quantity=q) for line_id, q in p.lines],
                )
                for p in parcels
            ],
        )
