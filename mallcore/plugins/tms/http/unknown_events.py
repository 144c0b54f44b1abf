"""Carrier events for waybills no shipment has, kept for review: ``/tms/unknown-events``.

They belong to no known shop, so only admins and platform staff (merchant
or platform warehouse staff) list, retry or dismiss them (403
``platform_only`` for shop staff).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody

from mallcore.kernel import Caller, Conflict, NotFound, utcnow
from mallcore.kernel.http import Idempotent, Reply, platform

from .. import tables as t
from ..schemas import DismissIn, EventResult, UnknownEventView, view_of
from .deps import Limit, Tms


def unknown_or_404(conn: sa.Connection, event_id: int) -> Any:
    row = conn.execute(sa.select(t.unknown_events).where(t.unknown_events.c.id == event_id)).first()
    if row is None:
        raise NotFound(f"unknown-waybill event {event_id} not found", code="event_not_found")
    return row


def unresolved(row: Any) -> Any:
    """``row`` unless it was resolved already (409 ``event_resolved``)."""
    if row.resolved_at is not None:
        raise Conflict(f"event {row.id} was already {row.resolution}", code="event_resolved")
    return row


class UnknownEventController(Controller):
    path = "/unknown-events"
    guards = [platform("merchant", "warehouse")]
    tags = ["tms"]

    @get("/", sync_to_thread=True)
    def list_unknown(
        self,
        tms: Tms,
        resolved: FromQuery[bool] = False,
        carrier: FromQuery[str | None] = None,
        tracking_no: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> list[UnknownEventView]:
        """Carrier events for waybills no shipment has, kept for review."""
        u = t.unknown_events.c
        stmt = sa.select(t.unknown_events).where(
            u.resolved_at.is_not(None) if resolved else u.resolved_at.is_(None)
        )
        if carrier:
            stmt = stmt.where(u.carrier == carrier)
        if tracking_no:
            stmt = stmt.where(u.tracking_no == tracking_no)
        with tms.kernel.db.transaction(write=False) as conn:
            return [
                view_of(UnknownEventView, r) for r in conn.execute(stmt.order_by(u.id.desc()).limit(limit))
            ]

    @post("/{event_id:int}/retry", status_code=200, sync_to_thread=True)
    def retry_unknown(
        self, event_id: FromPath[int], principal: Caller, tms: Tms, idempotent: Idempotent
    ) -> Response[EventResult]:
        """Apply a kept event now that its waybill is known (409 ``waybill_unknown`` if still not)."""

        def work(reply: Reply) -> None:
            with tms.kernel.db.transaction(write=False) as conn:
                row = unresolved(unknown_or_404(conn, event_id))
            tms.tracker.retry(row, principal, reply=reply)

        return idempotent(None, work)

    @post("/{event_id:int}/dismiss", status_code=200, sync_to_thread=True)
    def dismiss_unknown(
        self,
        event_id: FromPath[int],
        principal: Caller,
        tms: Tms,
        idempotent: Idempotent,
        data: JSONBody[DismissIn | None] = None,
    ) -> Response[UnknownEventView]:
        """Dismiss a carrier event that matched no shipment (platform staff), with a note. Already
        resolved: 409. Honours `Idempotency-Key`.
        """
        asked = data or DismissIn()

        def work(reply: Reply) -> None:
            u = t.unknown_events.c
            with tms.kernel.db.transaction() as conn:
                unresolved(unknown_or_404(conn, event_id))
                conn.execute(
                    t.unknown_events.update()
                    .where(u.id == event_id, u.resolved_at.is_(None))
                    .values(
                        resolved_at=utcnow(),
                        resolution="dismissed",
                        resolved_by=principal.subject,
                        note=asked.note or None,
                    )
                )
                reply(conn, view_of(UnknownEventView, unknown_or_404(conn, event_id)), 200)

        return idempotent(asked, work)
