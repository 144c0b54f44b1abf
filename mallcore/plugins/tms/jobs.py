"""TMS jobs: complete delivered orders, flag stale return waybills.

Both are safe when two runners race: each order is changed in its own stage
(the order row is locked) behind a conditional update, so only one runner
completes an order or flags a parcel.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import SYSTEM, OrderContext, utcnow
from mallcore.kernel.tables import orders

from . import tables as t

if TYPE_CHECKING:
    from . import TmsCenter


def start_clock(ctx: OrderContext, hours: float) -> None:
    """The order was delivered: it completes by itself ``hours`` later."""
    now = utcnow()
    c = t.completions.c
    values = {"delivered_at": now, "due_at": now + timedelta(hours=hours), "completed_at": None}
    updated = ctx.conn.execute(t.completions.update().where(c.order_id == ctx.order.id).values(**values))
    if not updated.rowcount:
        ctx.conn.execute(t.completions.insert().values(order_id=ctx.order.id, **values))


def due_orders(center: TmsCenter, limit: int = 200) -> list[int]:
    """Delivered orders whose auto-complete clock has run out.

    Orders on hold wait until the hold is lifted; they are not read at all, so however
    many there are, they never crowd the others out of a run's ``limit``.
    """
    c = t.completions.c
    with center.kernel.db.transaction(write=False) as conn:
        return list(
            conn.execute(
                sa.select(c.order_id)
                .join(orders, orders.c.id == c.order_id)
                .where(c.completed_at.is_(None), c.due_at <= utcnow(), orders.c.hold.is_(None))
                .order_by(c.due_at)
                .limit(limit)
            )
            .scalars()
            .all()
        )


def auto_complete(center: TmsCenter, due: list[int] | None = None) -> int:
    """Complete delivered orders whose clock has run out; returns how many.

    ``due`` is what a runner read as due; another runner may have completed
    some of them since, which the conditional update inside each order's
    stage finds out.
    """
    kernel: Any = center.kernel
    c = t.completions.c
    done = 0
    for order_id in due_orders(center) if due is None else due:
        with kernel.orders.stage("auto_complete", order_id, SYSTEM) as ctx:
            if ctx.order.hold:
                continue  # held (e.g. by risk): try again next run
            taken = ctx.conn.execute(
                t.completions.update()
                .where(c.order_id == order_id, c.completed_at.is_(None))
                .values(completed_at=utcnow())
            ).rowcount
            if not taken or ctx.order.status != "delivered":
                continue  # another runner did it, or staff completed / it was refunded
            hours = center.settings.auto_complete_after_hours
            kernel.orders.complete_in(ctx)
            ctx.timeline(
                "order.auto_completed",
                f"Completed automatically {hours:g} hours after delivery",
                zh=f"签收{hours:g}小时后系统自动确认收货",
                data={"after_hours": hours},
            )
            done += 1
    return done
