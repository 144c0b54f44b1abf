"""WMS jobs: cancel unpaid orders whose hold ran out, dispatch paid orders left behind.

Both are safe when several runners race (``mallcore serve`` workers, ``mallcore
jobs run``, ``mallcore wms expire``): each order is handled in its own stage,
which locks the order row (PostgreSQL) or the database (SQLite) and re-checks
its status; the loser of a race finds the order already moved and skips it,
and the release itself is conditional (``status = 'live'``), so stock is
released exactly once.

An order that cannot move now (another center refuses to let go of it, its
stock is out of reach) is logged and skipped: the runs read the due orders
page by page, so such orders never hold up the ones behind them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import SYSTEM, Conflict, MallcoreError, NotFound, OrderStatus, utcnow
from mallcore.kernel import tables as kt

from . import tables as t

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

    from . import WmsCenter

EXPIRE_REASON = "payment timeout"


def _due(kernel: Kernel, *where: Any, page: int) -> Iterator[int]:
    """Ids of the orders matching ``where``, oldest first, read ``page`` at a time."""
    o = kt.orders.c
    after = 0
    while True:
        with kernel.db.transaction(write=False) as conn:
            ids = (
                conn.execute(sa.select(o.id).where(o.id > after, *where).order_by(o.id).limit(page))
                .scalars()
                .all()
            )
        yield from ids
        if len(ids) < page:
            return
        after = ids[-1]


def expire_unpaid(kernel: Kernel, center: WmsCenter) -> int:
    """Cancel unpaid orders older than the hold time (at most ``expire_batch``); returns how many."""
    settings = center.settings
    cutoff = utcnow() - timedelta(minutes=settings.unpaid_hold_minutes)
    o = kt.orders.c
    due = _due(
        kernel,
        o.status == OrderStatus.AWAITING_PAYMENT.value,
        o.placed_at < cutoff,
        page=settings.expire_batch,
    )
    cancelled = 0
    for order_id in due:
        if cancelled >= settings.expire_batch:
            break
        try:
            with kernel.orders.stage("expire", order_id, SYSTEM) as ctx:
                order = ctx.order
                # Re-checked under the lock: paid or cancelled meanwhile means nothing to do.
                if order.status != OrderStatus.AWAITING_PAYMENT or (
                    order.placed_at is not None and order.placed_at >= cutoff
                ):
                    continue
                minutes = f"{settings.unpaid_hold_minutes:g}"
                ctx.timeline(
                    "wms.expired",
                    f"Not paid within {minutes} minutes: the order is cancelled and its items are released",
                    zh=f"超过{minutes}分钟未付款,订单已自动取消,商品库存已释放",
                    actor="system",
                )
                kernel.orders.cancel_in(ctx, EXPIRE_REASON)
                cancelled += 1
        except (Conflict, NotFound):
            # Another runner got there first.
            continue
        except MallcoreError as exc:
            # A center refuses to let go of it now: the next run tries again.
            center.log.warning("wms.expire_failed", order_id=order_id, code=exc.code, detail=exc.detail)
        except Exception:
            center.log.exception("wms.expire_failed", order_id=order_id)
    cancelled_orphans = release_orphans(kernel, center)
    if cancelled_orphans:
        center.log.warning("wms.orphans_released", orders=cancelled_orphans)
    return cancelled


def release_orphans(kernel: Kernel, center: WmsCenter) -> int:
    """Release live reservations of orders that ended without WMS hearing of it.

    A safety net: every cancellation passes through ``order_cancel``, but an
    order closed by a refund that no after-sale case announced would keep
    its hold. Returns how many orders had something released.
    """
    o, r = kt.orders.c, t.reservations.c
    with kernel.db.transaction(write=False) as conn:
        ids = (
            conn.execute(
                sa.select(r.order_id)
                .distinct()
                .join(kt.orders, o.id == r.order_id)
                .where(
                    r.status == "live",
                    o.status.in_((OrderStatus.CANCELLED.value, OrderStatus.CLOSED.value)),
                )
                .limit(center.settings.expire_batch)
            )
            .scalars()
            .all()
        )
    released = 0
    for order_id in ids:
        with kernel.orders.stage("wms_release", order_id, SYSTEM) as ctx:
            if center.stock.release_order(
                ctx.conn, order_id, actor="system", reason=f"order {ctx.order.status}"
            ):
                released += 1
    return released


def dispatch_paid(kernel: Kernel, center: WmsCenter) -> int:
    """Dispatch paid orders that automatic dispatch left behind (a crash, stock that came late)."""
    if center.settings.manual_dispatch:
        return 0
    batch = center.settings.expire_batch
    cutoff = utcnow() - timedelta(seconds=center.settings.dispatch_retry_after_seconds)
    o = kt.orders.c
    due = _due(
        kernel, o.status == OrderStatus.PAID.value, o.updated_at <= cutoff, o.hold.is_(None), page=batch
    )
    done = 0
    for order_id in due:
        if done >= batch:
            break
        if dispatch_one(kernel, center, order_id):
            done += 1
    return done


def dispatch_one(kernel: Kernel, center: WmsCenter, order_id: int) -> bool:
    """Dispatch one paid order as the system; False (logged) if it cannot go now."""
    try:
        with kernel.orders.stage("dispatch", order_id, SYSTEM) as ctx:
            if ctx.order.status != OrderStatus.PAID or ctx.order.hold:
                return False
            kernel.orders.dispatch_in(ctx)
        return True
    except MallcoreError as exc:
        center.log.warning("wms.dispatch_failed", order_id=order_id, code=exc.code, detail=exc.detail)
    except Exception:
        center.log.exception("wms.dispatch_failed", order_id=order_id)
    return False
