"""The TMS pages of the staff console: shipments with exceptions first (stuck, wrong warehouse,
failed pickup, carrier problems), door pickups (上门取件) with their status, one shipment with
its carrier events, and the freight templates. Read through the API's own readers
(``shipment_rows``, ``visible_shipment``, ``load_templates``) and rules (404 elsewhere)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from mallcore.kernel import Caller, visible_to
from mallcore.kernel.console import ConsolePage, render
from mallcore.kernel.http import roles

from . import tables as t
from .freight import load_templates
from .http.deps import Tms
from .http.shipments import landed_elsewhere, shipment_rows, visible_shipment
from .schemas import EventView, view_of

PAGE = 50
# What needs someone's attention: problems the carrier reported, failed pickups, parcels
# with no movement for too long (``stale_at``), returns delivered to the wrong warehouse.
TROUBLE = ("exception", "pickup_failed")
# A pickup's states, for the pickups list's filter.
PICKUP_STATES = ("booked", "picked_up", "in_transit", "delivered", "pickup_failed", "cancelled", "superseded")


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/tms",
            label="Shipments",
            label_zh="物流",
            handlers=[ShipmentPages],
            roles=("merchant", "warehouse", "finance"),
            order=50,
        )
    ]


class ShipmentPages(Controller):
    path = "/tms"
    guards = [roles("merchant", "warehouse", "finance")]

    @get("/", sync_to_thread=True)
    def shipments(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        tms: Tms,
        tracking_no: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        """Exceptions first (stuck, failed pickups, carrier problems), then every shipment, newest first."""
        s = t.shipments.c
        seen = visible_to(principal, s.shop, s.customer)
        trouble = sa.or_(s.status.in_(TROUBLE), s.stale_at.is_not(None), landed_elsewhere().is_not(None))
        where = [seen]
        if tracking_no:
            where.append(s.tracking_no == tracking_no.strip())
        if before:
            where.append(s.id < before)
        with tms.kernel.db.transaction(write=False) as conn:
            problems = [] if before else shipment_rows(conn, sa.and_(seen, trouble), PAGE)
            rows = shipment_rows(conn, sa.and_(*where), PAGE + 1)
        more = rows[PAGE - 1].id if len(rows) > PAGE else None
        return render(
            request,
            "tms/console/shipments.html",
            problems=problems,
            rows=rows[:PAGE],
            more=more,
            tracking_no=tracking_no or "",
        )

    @get("/pickups", sync_to_thread=True)
    def pickups(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        tms: Tms,
        status: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        """Door pickups (上门取件), newest first, paged by keyset, with their status and window."""
        s = t.shipments.c
        where = [visible_to(principal, s.shop, s.customer), s.kind == "pickup"]
        if status in PICKUP_STATES:
            where.append(s.status == status)
        if before:
            where.append(s.id < before)
        with tms.kernel.db.transaction(write=False) as conn:
            rows = shipment_rows(conn, sa.and_(*where), PAGE + 1)
        more = rows[PAGE - 1].id if len(rows) > PAGE else None
        return render(
            request,
            "tms/console/pickups.html",
            rows=[(r, _window(r.pickup)) for r in rows[:PAGE]],
            more=more,
            chosen=status if status in PICKUP_STATES else "",
            states=PICKUP_STATES,
        )

    @get("/shipments/{shipment_id:int}", sync_to_thread=True)
    def shipment(
        self, request: Request[Any, Any, Any], shipment_id: FromPath[int], principal: Caller, tms: Tms
    ) -> Template:
        e = t.events.c
        with tms.kernel.db.transaction(write=False) as conn:
            shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
            events = [
                view_of(EventView, r)
                for r in conn.execute(
                    sa.select(t.events)
                    .where(e.shipment_id == shipment_id)
                    .order_by(e.occurred_at.desc(), e.id.desc())
                )
            ]
        return render(request, "tms/console/shipment.html", shipment=shipment, events=events)

    @get("/templates", sync_to_thread=True)
    def templates(self, request: Request[Any, Any, Any], principal: Caller, tms: Tms) -> Template:
        with tms.kernel.db.transaction(write=False) as conn:
            views = load_templates(conn, visible_to(principal, t.templates.c.shop), 500)
        return render(request, "tms/console/templates.html", templates=views)


def _window(pickup: dict[str, Any] | None) -> tuple[datetime | None, datetime | None]:
    """A pickup's booked window (start, end), as stored with its shipment."""
    found = pickup or {}
    start, end = found.get("window_start"), found.get("window_end")
    return (
        datetime.fromisoformat(start) if isinstance(start, str) else None,
        datetime.fromisoformat(end) if isinstance(end, str) else None,
    )
