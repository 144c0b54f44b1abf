"""Return parcels ("我已寄出") and pickups (上门取件) of after-sale cases.

The after-sale center calls ``order_after_sale(ctx, case)`` at every step;
TMS acts on three kinds of step, inside that step's transaction:

- ``return_shipped``: track ``case.return_parcel`` (carrier, waybill) as a
  ``return`` shipment of the case. Filing the same waybill again changes
  nothing; a different one supersedes earlier waybills of the case that never
  moved (a corrected typo) and keeps those that did (a second box). A
  waybill already tracked for another parcel is refused
  (``waybill_in_use``). Carrier events that arrived before the waybill was
  filed (kept for review) are applied right after the step commits.
- ``pickup_requested``: book a pickup with ``case.pickup.carrier`` and fill
  in ``case.pickup`` (status ``booked``, courier, phone, pickup code,
  waybill, attempt number). A later request on the same case (after a
  failed pickup) books again, attempts + 1, cancelling a booking still open.
- ``awaiting_return`` (back from a pickup that did not happen): cancel open
  pickup bookings. Filing a waybill (``return_shipped``) does the same.
- the case is over for the parcel (received, inspected, refunded, closed,
  cancelled, rejected...): stop the stale-waybill clock and cancel open
  pickup bookings. At ``shipped_back`` (a repaired item going back), the
  waybill in ``case.data["ship_back"]`` is tracked as a ``ship_back``
  shipment so the carrier's events have a home (they move neither the order
  nor the case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, OrderContext, Rejected, utcnow
from mallcore.kernel.aftersale import AfterSaleCase

from . import tables as t
from .tracking import MOVEMENT

if TYPE_CHECKING:
    from . import TmsCenter

DONE = frozenset(
    {
        "received",
        "inspected",
        "refund_pending_review",
        "refunded",
        "replacement_created",
        "repaired",
        "shipped_back",
        "closed",
        "cancelled",
        "rejected",
    }
)


class Returns:
    def __init__(self, center: TmsCenter) -> None:
        self.center = center

    def on_case(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        if case.status == "return_shipped" and case.return_parcel is not None:
            self.track(ctx, case)
        elif case.status == "pickup_requested" and case.pickup is not None:
            self.book(ctx, case)
        elif case.status == "awaiting_return":
            # back to square one (e.g. the pickup window passed): drop open bookings
            self.cancel_bookings(ctx, case)
        elif case.status in DONE:
            if case.status == "shipped_back":
                self.track_ship_back(ctx, case)
            self.stop(ctx, case)

    def cancel_bookings(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        s = t.shipments.c
        ctx.conn.execute(
            t.shipments.update()
            .where(s.case_id == case.id, s.kind == "pickup", s.status == "booked")
            .values(status="cancelled", watch_from=None, updated_at=utcnow())
        )

    def _row(self, ctx: OrderContext, case: AfterSaleCase, kind: str, **values: Any) -> dict[str, Any]:
        now = utcnow()
        return {
            "order_id": ctx.order.id,
            "shop": ctx.order.shop,
            "customer": ctx.order.customer,
            "kind": kind,
            "case_id": case.id,
            "lines": [[line.line_id, line.quantity] for line in case.lines],
            "weight_grams": 0,
            "created_at": now,
            "updated_at": now,
            "watch_from": now,
            **values,
        }

    def track(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        parcel = case.return_parcel
        assert parcel is not None
        s = t.shipments.c
        conn = ctx.conn
        existing = conn.execute(
            sa.select(s.id, s.case_id, s.kind).where(
                s.carrier == parcel.carrier, s.tracking_no == parcel.tracking_no
            )
        ).first()
        if existing is not None:
            if existing.case_id == case.id and existing.kind in ("return", "pickup"):
                return  # filed again, or the waybill of our own pickup
            raise Rejected(
                f"waybill {parcel.tracking_no} of {parcel.carrier} is already tracked for another parcel",
                code="waybill_in_use",
            )
        now = utcnow()
        conn.execute(
            t.shipments.update()
            .where(s.case_id == case.id, s.kind == "return", s.status == "created")
            .values(status="superseded", watch_from=None, updated_at=now)
        )
        # the customer shipped it themselves: a pickup still open is not needed
        self.cancel_bookings(ctx, case)
        shipment_id = conn.execute(
            t.shipments.insert()
            .values(
                self._row(
                    ctx,
                    case,
                    "return",
                    carrier=parcel.carrier,
                    tracking_no=parcel.tracking_no,
                    status="created",
                    warehouse=parcel.warehouse,
                )
            )
            .returning(s.id)
        ).scalar_one()
        carrier = self.center.tracker.carrier_name(parcel.carrier)
        known = parcel.carrier in self.center.carriers
        en = f"Return parcel {parcel.tracking_no} ({carrier[0]}) is being tracked"
        zh = f"退货包裹{parcel.tracking_no}({carrier[1]})已登记,正在跟踪物流"
        ctx.timeline(
            "shipment.return_filed",
            en,
            zh=zh,
            ref=f"after_sale:{case.id}",
            data={
                "shipment_id": shipment_id,
                "carrier": parcel.carrier,
                "tracking_no": parcel.tracking_no,
                "carrier_configured": known,
            },
        )
        ctx.emit(
            "shipment.created",
            {
                "shipment_id": shipment_id,
                "kind": "return",
                "case_id": case.id,
                "carrier": parcel.carrier,
                "tracking_no": parcel.tracking_no,
            },
        )
        u = t.unknown_events.c
        waiting = conn.execute(
            sa.select(u.id)
            .where(u.carrier == parcel.carrier, u.tracking_no == parcel.tracking_no, u.resolved_at.is_(None))
            .limit(1)
        ).first()
        if waiting is not None:
            carrier_code, tracking_no = parcel.carrier, parcel.tracking_no
            ctx.after_commit(lambda: self.center.tracker.adopt(carrier_code, tracking_no))

    def book(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        pickup = case.pickup
        assert pickup is not None
        carrier = self.center.carriers.get(pickup.carrier)
        if carrier is None:
            raise Rejected(f"no carrier named {pickup.carrier} is configured", code="carrier_unknown")
        if pickup.window_end <= pickup.window_start:
            raise InvalidInput("the pickup window ends before it starts", code="pickup_window_invalid")
        s = t.shipments.c
        conn = ctx.conn
        earlier = conn.execute(
            sa.select(s.id, s.status, s.picked_up_at).where(s.case_id == case.id, s.kind == "pickup")
        ).all()
        if any(r.picked_up_at is not None or r.status in MOVEMENT for r in earlier):
            raise Conflict("the goods of this case were already picked up", code="pickup_done")
        now = utcnow()
        if earlier:
            conn.execute(
                t.shipments.update()
                .where(s.case_id == case.id, s.kind == "pickup", s.status == "booked")
                .values(status="cancelled", watch_from=None, updated_at=now)
            )
        attempt = len(earlier) + 1
        booking = carrier.book_pickup(pickup.window_start, pickup.window_end, pickup.address)
        # where the goods should arrive: the return address the customer was given
        expected = (case.return_parcel.warehouse if case.return_parcel is not None else None) or (
            case.return_address.warehouse if case.return_address is not None else None
        )
        details = {
            "window_start": pickup.window_start.isoformat(),
            "window_end": pickup.window_end.isoformat(),
            "address": pickup.address,
            "courier": booking.courier,
            "courier_phone": booking.courier_phone,
            "code": booking.code,
            "attempt": attempt,
        }
        shipment_id = conn.execute(
            t.shipments.insert()
            .values(
                self._row(
                    ctx,
                    case,
                    "pickup",
                    carrier=carrier.code,
                    tracking_no=booking.tracking_no,
                    status="booked",
                    warehouse=expected,
                    pickup=details,
                    # no movement is expected before the window closes
                    watch_from=max(pickup.window_end, now),
                )
            )
            .returning(s.id)
        ).scalar_one()
        pickup.status = "booked"
        pickup.courier = booking.courier
        pickup.courier_phone = booking.courier_phone
        pickup.code = booking.code
        pickup.tracking_no = booking.tracking_no
        pickup.attempts = attempt
        local = self.center.kernel.config.shop.local_time
        window = f"{local(case.shop, pickup.window_start)}-{local(case.shop, pickup.window_end, '%H:%M')}"
        courier = f", courier {booking.courier} ({booking.courier_phone})" if booking.courier else ""
        courier_zh = f",快递员{booking.courier}({booking.courier_phone})" if booking.courier else ""
        code = f", pickup code {booking.code}" if booking.code else ""
        code_zh = f",取件码{booking.code}" if booking.code else ""
        again = f" (attempt {attempt})" if attempt > 1 else ""
        again_zh = f"(第{attempt}次预约)" if attempt > 1 else ""
        ctx.timeline(
            "shipment.pickup_booked",
            f"Pickup booked with {carrier.name} for {window}{courier}{code}, waybill {booking.tracking_no}{again}",
            zh=f"已预约{carrier.name_zh}上门取件,时间{window}{courier_zh}{code_zh},运单号{booking.tracking_no}{again_zh}",
            ref=f"after_sale:{case.id}",
            data={"shipment_id": shipment_id, "carrier": carrier.code, **details},
        )
        ctx.emit(
            "shipment.created",
            {
                "shipment_id": shipment_id,
                "kind": "pickup",
                "case_id": case.id,
                "carrier": carrier.code,
                "tracking_no": booking.tracking_no,
            },
        )

    def track_ship_back(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        """A repaired item on its way back to the customer: tracked, nothing more."""
        info = case.data.get("ship_back") or {}
        carrier, tracking_no = info.get("carrier"), info.get("tracking_no")
        if not carrier or not tracking_no:
            return
        s = t.shipments.c
        exists = ctx.conn.execute(
            sa.select(s.id).where(s.carrier == carrier, s.tracking_no == tracking_no)
        ).first()
        if exists is not None:
            return
        shipment_id = ctx.conn.execute(
            t.shipments.insert()
            .values(
                self._row(
                    ctx,
                    case,
                    "ship_back",
                    carrier=carrier,
                    tracking_no=tracking_no,
                    status="created",
                    warehouse=None,
                    watch_from=None,
                )
            )
            .returning(s.id)
        ).scalar_one()
        ctx.emit(
            "shipment.created",
            {
                "shipment_id": shipment_id,
                "kind": "ship_back",
                "case_id": case.id,
                "carrier": carrier,
                "tracking_no": tracking_no,
            },
        )

    def stop(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        s = t.shipments.c
        now = utcnow()
        ctx.conn.execute(
            t.shipments.update()
            .where(s.case_id == case.id, s.kind.in_(("return", "pickup")), s.watch_from.is_not(None))
            .values(
                watch_from=None,
                status=sa.case((s.status == "booked", "cancelled"), else_=s.status),
                updated_at=now,
            )
        )
