"""Shipments and their tracking events under ``/tms/shipments``.

Staff see their shop's shipments (platform staff and admins: all),
customers their own; any other answers 404. Merchant and warehouse staff of
the shop (and admins) post events by hand; a ``delivered`` posted by a
shop's own staff does not deliver (it would release the customer's money to
the shop): it is recorded as a claim (``awaiting_confirmation``) until the
customer confirms receipt (``POST /tms/shipments/{id}/confirm``) or the
carrier's signed event arrives. Platform staff and admins deliver at once.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from mallcore.kernel import Caller, Conflict, Forbidden, NotFound, Principal, utcnow, visible_to
from mallcore.kernel.http import Idempotent, Reply, roles

from .. import tables as t
from ..schemas import ConfirmIn, EventResult, EventView, ShipmentDetail, StaffEventIn, view_of
from ..tracking import RETURN_KINDS, SHOP_CLAIM, Incoming
from .deps import Limit, Tms


def landed_elsewhere() -> sa.ColumnElement[Any]:
    """Where the carrier delivered a return or pickup parcel when that is another warehouse
    than the one it was sent to (the case's return address); NULL otherwise: the "wrong
    warehouse" flag (``ShipmentDetail.wrong_warehouse``)."""
    s, e = t.shipments.c, t.events.c
    landed = (
        sa.select(e.warehouse)
        .where(
            e.shipment_id == s.id,
            e.status == "delivered",
            e.applied.is_(True),
            e.warehouse.is_not(None),
            e.warehouse != s.warehouse,
        )
        .order_by(e.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return sa.case((s.kind.in_(RETURN_KINDS), landed), else_=sa.null())


def shipment_rows(
    conn: sa.Connection, where: Any, limit: int, *, order_by: Any = None
) -> list[ShipmentDetail]:
    s = t.shipments.c
    stmt = sa.select(t.shipments, landed_elsewhere().label("wrong_warehouse")).where(where)
    return [
        view_of(ShipmentDetail, r, lines=[{"line_id": a, "quantity": b} for a, b in r.lines or []], events=[])
        for r in conn.execute(stmt.order_by(s.id.desc() if order_by is None else order_by).limit(limit))
    ]


def visible_shipment(conn: sa.Connection, principal: Principal, where: Any) -> ShipmentDetail:
    """The shipment matching ``where``, or 404 ``shipment_not_found`` unless the caller sees it."""
    found = shipment_rows(conn, where, 1)
    if not found or not principal.can_see(found[0].shop, found[0].customer):
        raise NotFound("shipment not found", code="shipment_not_found")
    return found[0]


def may_post(principal: Principal, shipment: ShipmentDetail) -> None:
    """403 unless merchant or warehouse staff of the shipment's shop (or platform-wide)."""
    if not principal.can_act_for_shop(shipment.shop, "merchant", "warehouse"):
        raise Forbidden("only the shop's merchant or warehouse staff post events", code="role_required")


class ShipmentController(Controller):
    path = "/shipments"
    tags = ["tms"]

    @get("/", sync_to_thread=True)
    def list_shipments(
        self,
        principal: Caller,
        tms: Tms,
        order_id: FromQuery[int | None] = None,
        case_id: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        carrier: FromQuery[str | None] = None,
        tracking_no: FromQuery[str | None] = None,
        stale: FromQuery[bool | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 100,
    ) -> list[ShipmentDetail]:
        """Shipments, newest first: a customer's own, a shop's staff their shop's, platform staff all;
        filter by order, case, kind, status, carrier or waybill; `stale=true` for those with no carrier
        event for too long.
        """
        s = t.shipments.c
        where: list[Any] = [visible_to(principal, s.shop, s.customer)]
        for column, value in (
            (s.order_id, order_id),
            (s.case_id, case_id),
            (s.kind, kind),
            (s.status, status),
            (s.carrier, carrier),
            (s.tracking_no, tracking_no),
        ):
            if value is not None:
                where.append(column == value)
        if stale is not None:
            where.append(s.stale_at.is_not(None) if stale else s.stale_at.is_(None))
        if before:
            where.append(s.id < before)
        with tms.kernel.db.transaction(write=False) as conn:
            return shipment_rows(conn, sa.and_(*where), limit)

    @get("/{shipment_id:int}", sync_to_thread=True)
    def get_shipment(self, shipment_id: FromPath[int], principal: Caller, tms: Tms) -> ShipmentDetail:
        """One shipment with its carrier events in order. Not visible to the caller: 404."""
        e = t.events.c
        with tms.kernel.db.transaction(write=False) as conn:
            shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
            shipment.events = [
                view_of(EventView, r)
                for r in conn.execute(
                    sa.select(t.events).where(e.shipment_id == shipment_id).order_by(e.occurred_at, e.id)
                )
            ]
        return shipment

    @post(
        "/{shipment_id:int}/events",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("merchant", "warehouse")],
    )
    def post_event(
        self,
        shipment_id: FromPath[int],
        data: JSONBody[StaffEventIn],
        principal: Caller,
        tms: Tms,
        idempotent: Idempotent,
    ) -> Response[EventResult]:
        """Record a tracking event by hand (a phone call with the carrier, a scan).

        Without ``occurred_at`` the event happened "now", so only an ``Idempotency-Key``
        tells a retried request from a second event.
        """

        def work(reply: Reply) -> None:
            with tms.kernel.db.transaction(write=False) as conn:
                shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
            may_post(principal, shipment)
            event = Incoming.reported(
                shipment.carrier,
                shipment.tracking_no,
                data,
                data.occurred_at or utcnow(),
                source="staff" if principal.is_platform else SHOP_CLAIM,
                actor=principal.subject,
            )
            tms.tracker.receive(event, principal=principal, reply=reply, status=201)

        return idempotent(data, work)

    @post("/{shipment_id:int}/confirm", status_code=200, sync_to_thread=True, guards=[roles("customer")])
    def confirm(
        self,
        shipment_id: FromPath[int],
        principal: Caller,
        tms: Tms,
        idempotent: Idempotent,
        data: JSONBody[ConfirmIn | None] = None,
    ) -> Response[EventResult]:
        """The customer confirms they received their parcel (确认收货): it is delivered."""

        def work(reply: Reply) -> None:
            with tms.kernel.db.transaction(write=False) as conn:
                shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
            if shipment.customer != principal.subject and not principal.is_admin:
                raise NotFound("shipment not found", code="shipment_not_found")
            if shipment.kind != "outbound" or shipment.status in ("delivered", "cancelled"):
                raise Conflict(
                    f"shipment {shipment_id} is {shipment.status}; there is nothing to confirm",
                    code="shipment_not_open",
                    extra={"status": shipment.status},
                )
            report = StaffEventIn(
                status="delivered",
                description=(data or ConfirmIn()).note or "receipt confirmed by the customer",
            )
            event = Incoming.reported(
                shipment.carrier,
                shipment.tracking_no,
                report,
                utcnow(),
                source="customer",
                actor=principal.subject,
            )
            tms.tracker.receive(event, principal=principal, reply=reply, status=200)

        return idempotent(data, work)
