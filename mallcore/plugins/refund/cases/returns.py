"""Goods on their way back: the customer's waybill ("我已寄出"), door pickups (上门取件),
and what the carrier reports about them (TMS's ``after_sale_parcel`` events)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import msgspec

from mallcore.kernel import InvalidInput, OrderContext
from mallcore.kernel.aftersale import ParcelEvent, Pickup, ReturnParcel

from .. import states as st
from ..schemas import PickupIn, RefundSettings, ReturnShipment
from ..states import CaseStatus as S
from .lifecycle import Lifecycle
from .records import Case, CaseRecords

if TYPE_CHECKING:
    from mallcore.kernel import Config, OrderViews

# Carrier statuses that mean the parcel is moving (or has arrived).
MOVING = ("picked_up", "in_transit", "out_for_delivery", "delivered")


@dataclass(frozen=True)
class Returns:
    lifecycle: Lifecycle
    records: CaseRecords
    views: OrderViews
    settings: RefundSettings
    config: Config  # the kernel's: times in texts are in the shop's time zone

    def expected_warehouse(self, ctx: OrderContext, case: Case) -> str | None:
        """Where the goods should go back: the warehouse whose address the customer was given,
        else the configured one, else where they left from."""
        told = case.return_address()
        if told is not None and told.warehouse:
            return told.warehouse
        if self.settings.return_warehouse:
            return self.settings.return_warehouse
        view = self.views.render(ctx.order, ctx.lines, [], conn=ctx.conn)
        wanted = {x.line_id for x in case.lines}
        for shipment in view.shipments:
            if shipment.warehouse and any(int(x.get("line_id", 0)) in wanted for x in shipment.lines):
                return shipment.warehouse
        return next((s.warehouse for s in view.shipments if s.warehouse), None)

    def file_return(self, ctx: OrderContext, case: Case, body: ReturnShipment) -> None:
        """The customer shipped the goods back themselves."""
        st.check(case.type, case.status, S.RETURN_SHIPPED)
        case.return_parcel = ReturnParcel(
            carrier=body.carrier,
            tracking_no=body.tracking_no,
            phone=body.phone,
            warehouse=self.expected_warehouse(ctx, case),
        )
        if case.pickup is not None and case.pickup.status not in ("failed", "picked_up"):
            case.pickup.status = "cancelled"
        self.lifecycle.move(
            ctx,
            case,
            S.RETURN_SHIPPED,
            f"You shipped the goods back, waybill {body.tracking_no}",
            f"买家已寄出,运单号 {body.tracking_no}",
            data={"carrier": body.carrier, "tracking_no": body.tracking_no},
        )

    def book_pickup(self, ctx: OrderContext, case: Case, body: PickupIn) -> None:
        """The customer asks for a door pickup; the center that books couriers (TMS) answers
        in ``order_after_sale``."""
        st.check(case.type, case.status, S.PICKUP_REQUESTED)
        now = self.lifecycle.now(ctx)
        start, end = body.window_start, body.window_end
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("pickup window times need a time zone", code="pickup_window_invalid")
        if end <= start or end <= now:
            raise InvalidInput(
                "the pickup window must end after it starts, in the future", code="pickup_window_invalid"
            )
        ahead = self.settings.pickup_max_days_ahead
        if end > now + timedelta(days=ahead):
            # A courier is booked for the coming days; a window years away would park the
            # case with no timer that could ever close it.
            raise InvalidInput(
                f"the pickup window must end within {ahead} days", code="pickup_window_invalid"
            )
        given = body.address if body.address is not None else ctx.order.address
        address = None if given is None else msgspec.to_builtins(given)
        if not address:
            raise InvalidInput("give a pickup address; the order has none", code="pickup_address_required")
        attempts = (case.pickup.attempts if case.pickup else 0) + 1
        case.pickup = Pickup(
            window_start=start, window_end=end, address=address, carrier=body.carrier, attempts=attempts
        )
        local = self.config.shop.local_time
        window = f"{local(case.shop, start)}-{local(case.shop, end, '%H:%M')}"
        if local(case.shop, start, "%Y-%m-%d") != local(case.shop, end, "%Y-%m-%d"):
            window = f"{local(case.shop, start)} - {local(case.shop, end)}"
        self.lifecycle.move(
            ctx,
            case,
            S.PICKUP_REQUESTED,
            f"Pickup requested for {window}",
            f"已申请上门取件,时间 {window}",
            data={"attempt": attempts},
        )
        # The center that booked it (TMS) wrote the booking on the case timeline.
        p = case.pickup
        if p is not None and p.status == "booked" and p.tracking_no:
            case.return_parcel = ReturnParcel(
                carrier=p.carrier,
                tracking_no=p.tracking_no,
                phone=str(address.get("phone", "")),
                warehouse=self.expected_warehouse(ctx, case),
            )
            self.lifecycle.save(ctx, case)

    # -- carrier events (from TMS) ---------------------------------------------------

    def parcel_event(self, ctx: OrderContext, event: ParcelEvent) -> None:
        """``after_sale_parcel``: a carrier event on a return parcel or a pickup."""
        case = self.records.load(ctx.conn, event.case_id)
        if case is None or case.order_id != ctx.order.id:
            ctx.log.warning("after_sale.parcel_unknown_case", case_id=event.case_id)
            return
        life = self.lifecycle
        status = event.status
        if status == "booked":
            if case.pickup is not None:
                case.pickup.status = "booked"
                case.pickup.tracking_no = event.tracking_no or case.pickup.tracking_no
                life.save(ctx, case)
        elif status == "pickup_failed":
            self._pickup_failed(ctx, case, event)
        elif status == "stale":
            case.data["stale"] = True
            life.save(ctx, case)
            life.note(
                ctx,
                case,
                "parcel_stale",
                f"Return waybill {event.tracking_no} has shown no movement for a long time; we are checking with the carrier",
                f"退货运单 {event.tracking_no} 长时间无物流更新,客服正在与快递核实",
            )
        elif status == "exception":
            life.note(
                ctx,
                case,
                "parcel_exception",
                f"The carrier reported a problem with the return parcel: {event.description or 'exception'}",
                f"退货包裹异常:{event.description or '快递异常'}",
            )
        elif status in MOVING:
            self._moving(ctx, case, event)
        else:
            ctx.log.info("after_sale.parcel_status_ignored", case_id=case.id, status=status)

    def _pickup_failed(self, ctx: OrderContext, case: Case, event: ParcelEvent) -> None:
        if case.pickup is not None:
            case.pickup.status = "failed"
        if case.status == S.PICKUP_REQUESTED:
            self.lifecycle.move(
                ctx,
                case,
                S.AWAITING_RETURN,
                f"The pickup did not happen{': ' + event.description if event.description else ''}; "
                "book another pickup or ship the goods yourself",
                "上门取件未成功,请重新预约取件或自行寄回",
                data={"tracking_no": event.tracking_no},
            )
        elif case.pickup is not None:
            self.lifecycle.save(ctx, case)

    def _moving(self, ctx: OrderContext, case: Case, event: ParcelEvent) -> None:
        life, status = self.lifecycle, event.status
        if case.return_parcel is None:
            case.return_parcel = ReturnParcel(carrier=event.carrier, tracking_no=event.tracking_no)
        case.return_parcel.status = status if status in ("delivered", "picked_up") else "in_transit"
        if case.pickup is not None and case.pickup.status not in ("picked_up", "cancelled"):
            case.pickup.status = "picked_up"
        if case.status in (S.RETURN_SHIPPED, S.PICKUP_REQUESTED):
            life.move(
                ctx,
                case,
                S.RETURN_IN_TRANSIT,
                "The return parcel is on its way to the warehouse",
                "退货包裹已揽收,正在运往仓库",
                data={"tracking_no": event.tracking_no, "carrier_status": status},
            )
        elif case.status != S.RETURN_IN_TRANSIT:
            ctx.log.info(
                "after_sale.parcel_event_late", case_id=case.id, status=status, case_status=case.status
            )
            return
        if status != "delivered" or "arrived_at" in case.data:
            life.save(ctx, case)
            return
        # Signed for at the warehouse: the inspection timer starts now.
        case.data["arrived_at"] = event.occurred_at.isoformat()
        if event.wrong_warehouse:
            case.data["wrong_warehouse"] = event.warehouse
        life.rearm(ctx, case)
        life.note(
            ctx,
            case,
            "parcel_arrived",
            "The return parcel was signed for at the warehouse; awaiting inspection",
            "退货包裹已签收,等待仓库验收",
        )
        if event.wrong_warehouse:
            expected = case.return_parcel.warehouse or "?"
            life.note(
                ctx,
                case,
                "parcel_wrong_warehouse",
                f"Return parcel landed at warehouse {event.warehouse or '?'}, expected {expected}",
                f"退货包裹送达仓库 {event.warehouse or '?'},应为 {expected}",
                public=False,
            )
