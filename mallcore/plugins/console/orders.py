"""The orders pages: search (id, customer, status, date), and one order with its lines,
adjustments explained, payments, parcels with carrier events, the merged timeline
and the manual steps the signed-in role may take.

Reading goes through ``kernel.order_views`` (the API's ``GET /orders/{id}``
and its timeline) and steps through ``kernel.orders`` (the API's
``/orders/{id}/dispatch``, ``ship``, ``deliver``, ``complete``, ``cancel``),
so the same rules answer: another shop's order is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mallcore.kernel import Caller, InvalidInput, OrderStatus, columns, require, visible_to
from mallcore.kernel import tables as kt
from mallcore.kernel.console import ConsolePage, language, read_cursor, render, write_cursor
from mallcore.kernel.http import roles

from .web import Console, Form

PAGE = 50
STAFF_STEPS = ("ship", "deliver", "complete")
# The manual steps of an order in each state, and who may take them (the API's rules).
STEPS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "awaiting_payment": [("cancel", ("merchant",))],
    "paid": [("dispatch", ("merchant", "warehouse")), ("cancel", ("merchant",))],
    "dispatched": [("ship", ("merchant", "warehouse")), ("deliver", ("merchant", "warehouse"))],
    "shipped": [("deliver", ("merchant", "warehouse"))],
    "delivered": [("complete", ("merchant", "warehouse"))],
}


def page() -> ConsolePage:
    return ConsolePage(path="/orders", label="Orders", label_zh="订单", handlers=(), order=10)


def _day(text: str | None, zone: ZoneInfo, end: bool = False) -> datetime | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"not a date: {text[:20]}", code="invalid_date") from None
    start = datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=zone)
    return start


def _page(
    conn: sa.Connection,
    stmt: sa.Select[Any],
    cursor: tuple[datetime, int] | None,
    narrow: bool,
    keep: Callable[[Any], bool],
) -> tuple[list[Any], str | None]:
    """One page, newest first by (placement time, id): the order ``ix_orders_shop_placed`` and
    ``ix_orders_placed`` keep, so a page reads an index range, never ``OFFSET``.

    A ``narrow`` search (one customer's orders, held orders) reads its few rows through its
    own index (``ix_orders_customer``, ``ix_orders_hold``), unordered, and ``keep`` (the
    user's visibility and dates) and the page are applied here: given an ``ORDER BY
    placed_at``, the planner would rather walk the shop's whole index.
    """
    o = kt.orders.c
    if narrow:
        found = sorted(
            (r for r in conn.execute(stmt) if keep(r)), key=lambda r: (r.placed_at, r.id), reverse=True
        )
        rows = [r for r in found if cursor is None or (r.placed_at, r.id) < cursor][: PAGE + 1]
    else:
        if cursor is not None:
            at = sa.literal(cursor[0], columns.Time())
            stmt = stmt.where(sa.or_(o.placed_at < at, sa.and_(o.placed_at == at, o.id < cursor[1])))
        rows = list(conn.execute(stmt.order_by(o.placed_at.desc(), o.id.desc()).limit(PAGE + 1)))
    more = None
    if len(rows) > PAGE:
        rows = rows[:PAGE]
        more = write_cursor(rows[-1].placed_at, rows[-1].id)
    return rows, more


class OrderPages(Controller):
    path = "/orders"

    @get("/", sync_to_thread=True)
    def search(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        console: Console,
        q: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        since: FromQuery[str | None] = None,
        until: FromQuery[str | None] = None,
        held: FromQuery[bool] = False,
        before: FromQuery[str | None] = None,
    ) -> Response[Any]:
        """Orders the user may see, newest first, a page at a time (keyset on placement time and id)."""
        q = (q or "").strip()
        if q.isdigit() and len(q) < 19:
            return Redirect(path=f"{console.base}/orders/{int(q)}", status_code=303)
        zone = console.zone
        o = kt.orders.c
        stmt = sa.select(o.id, o.shop, o.customer, o.status, o.currency, o.total, o.paid, o.hold, o.placed_at)
        customer = (customer or q).strip()
        start, end = _day(since, zone), _day(until, zone, end=True)
        narrow = bool(customer) or held
        if customer:
            stmt = stmt.where(o.customer == customer)
        if held:
            stmt = stmt.where(o.hold.is_not(None))
        if status:
            stmt = stmt.where(o.status == status)
        if not narrow:
            stmt = stmt.where(visible_to(principal, o.shop))
            if start:
                stmt = stmt.where(o.placed_at >= start)
            if end:
                stmt = stmt.where(o.placed_at < end)

        def keep(row: Any) -> bool:  # a narrow search: visible_to's rule (Principal.can_see), the dates
            in_range = (start is None or row.placed_at >= start) and (end is None or row.placed_at < end)
            return principal.can_see(row.shop) and in_range

        with console.kernel.db.transaction(write=False) as conn:
            rows, more = _page(conn, stmt, read_cursor(before), narrow, keep)
        filters = {"customer": customer, "status": status, "since": since, "until": until}
        return render(
            request,
            "console/orders.html",
            rows=rows,
            more=more,
            filters=filters,
            held=held,
            statuses=[s.value for s in OrderStatus],
            zone=zone,
        )

    @get("/{order_id:int}", sync_to_thread=True)
    def order(
        self, request: Request[Any, Any, Any], order_id: FromPath[int], principal: Caller, console: Console
    ) -> Template:
        kernel = console.kernel
        lang = language(request)
        view = kernel.order_views.get(principal, order_id)  # 404 unless visible
        timeline = kernel.order_views.timeline(principal, order_id, lang=lang)
        steps = [
            step
            for step, who in STEPS.get(view.status, [])
            if principal.has(*who) and principal.can_act_for_shop(view.shop, *who)
        ]
        return render(
            request,
            "console/order.html",
            order=view,
            timeline=list(reversed(timeline)),
            steps=steps,
            zone=console.zone,
            done=request.query_params.get("done"),
        )

    @post("/{order_id:int}/{step:str}", sync_to_thread=True, guards=[roles("merchant", "warehouse")])
    def take_step(
        self, order_id: FromPath[int], step: FromPath[str], principal: Caller, console: Console, data: Form
    ) -> Response[Any]:
        """A manual step, through the same service calls as the API's routes."""
        orders = console.kernel.orders
        note = (data.get("note") or "")[:500]
        if step == "dispatch":
            orders.dispatch(principal, order_id)
        elif step in STAFF_STEPS:
            orders.staff_step(principal, order_id, step, note)
        elif step == "cancel":
            require(principal, "merchant")
            orders.cancel(principal, order_id, note or "cancelled by the merchant")
        else:
            raise InvalidInput(f"no step '{step[:20]}'", code="step_unknown")
        return Redirect(path=f"{console.base}/orders/{order_id}?done={step}", status_code=303)
