"""Request and response bodies of the after-sale API and the center's settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from mallcore.kernel import Address, utcnow
from mallcore.kernel.aftersale import CaseType, Disposition, Grade, Pickup, ReturnAddress
from mallcore.kernel.schemas import TimelineView

ShippingMode = Literal["none", "proportional", "remaining"]
Text = Annotated[str, Meta(max_length=500)]
Carrier = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]
TrackingNo = Annotated[str, Meta(min_length=4, max_length=40, pattern=r"^[A-Za-z0-9\-]+$")]
Phone = Annotated[str, Meta(min_length=5, max_length=20, pattern=r"^\+?[0-9][0-9 \-]*$")]
Units = Annotated[int, Meta(ge=1, le=1_000_000)]
# A warehouse code, as WMS spells them.
Warehouse = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]


# -- settings -------------------------------------------------------------------


class Reason(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: Annotated[str, Meta(min_length=1, max_length=64)]
    en: str
    zh: str
    # The merchant's fault (wrong item, damaged, not as described): freight is
    # refunded by ``shipping_merchant_fault`` and return windows do not apply
    # to quality problems in the same way in the source; we keep one window.
    merchant_fault: bool = False


DEFAULT_REASONS = [
    Reason(code="no_reason", en="No reason (7-day return)", zh="七天无理由退换货"),
    Reason(code="wrong_size", en="Wrong size or colour", zh="尺码/颜色不合适"),
    Reason(code="quality", en="Quality problem", zh="质量问题", merchant_fault=True),
    Reason(code="damaged", en="Arrived damaged", zh="商品破损", merchant_fault=True),
    Reason(code="wrong_item", en="Wrong item sent", zh="商家发错货", merchant_fault=True),
    Reason(code="missing", en="Missing parts or items", zh="少件/漏发", merchant_fault=True),
    Reason(code="not_as_described", en="Not as described", zh="与描述不符", merchant_fault=True),
    Reason(code="not_wanted", en="No longer wanted", zh="不想要了"),
    Reason(code="other", en="Other", zh="其他"),
]


class RefundSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[centers.refund]``: every default is what a Taobao-style shop does."""

    reasons: list[Reason] = msgspec.field(default_factory=lambda: list(DEFAULT_REASONS))
    # Case types customers may open.
    types: list[CaseType] = msgspec.field(
        default_factory=lambda: ["refund_only", "return_refund", "exchange", "repair"]
    )
    # 七天无理由: days after delivery a refund, return or exchange may be opened.
    return_window_days: int = 7
    # Repairs (warranty) may be asked for this long after delivery.
    repair_window_days: int = 365
    # A refund-only case on an order not yet dispatched is a cancellation of
    # those lines: approve it at once.
    auto_approve_unshipped: bool = True
    # Refund when the merchant approves a return, before the goods are back
    # (JD's "闪电退款"); otherwise only units the warehouse received are refunded.
    refund_before_return: bool = False
    # Freight refunded with goods: before the order shipped, for reasons that
    # are the merchant's fault, and otherwise (see kernel.refunds).
    shipping_unshipped: ShippingMode = "proportional"
    shipping_merchant_fault: ShippingMode = "proportional"
    shipping: ShippingMode = "none"
    # Restocking fee, percent of the goods value of returned units by
    # inspection grade, deducted unless the reason is the merchant's fault.
    restocking_fee_percent: dict[Grade, Annotated[int, Meta(ge=0, le=100)]] = msgspec.field(
        default_factory=dict
    )
    # Where returns go back to; default: the warehouse the goods left from.
    return_warehouse: str | None = None
    # SLA timers and their default outcomes.
    merchant_response_hours: int = 48  # merchant silent -> approved
    return_ship_days: int = 7  # customer never ships -> closed
    inspect_days: int = 3  # goods signed at the warehouse, not inspected -> received and refunded
    pickup_grace_hours: int = 24  # pickup window passed with no pickup -> back to awaiting return
    pickup_max_days_ahead: int = 14  # a pickup window must end within this many days
    transit_days: int = 10  # return parcel not arrived -> escalated (flag, re-armed)
    staff_days: int = 3  # repair, ship-back, finance review overdue -> escalated (flag, re-armed)
    sla_interval_seconds: float = 60.0

    def reason(self, code: str) -> Reason | None:
        """The reason a case gives, by its code."""
        return next((r for r in self.reasons if r.code == code), None)


# -- requests -------------------------------------------------------------------


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CaseLineIn(_In):
    line_id: int
    quantity: Units


class OpenCase(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): the first order a fresh demo takes (order 1, its line 1), once delivered
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "order_id": 1,
        "type": "refund_only",
        "lines": [{"line_id": 1, "quantity": 1}],
        "reason": "damaged",
        "reason_text": "the box arrived crushed",
    }

    order_id: int
    type: CaseType
    lines: Annotated[list[CaseLineIn], Meta(min_length=1, max_length=100)]
    reason: Annotated[str, Meta(min_length=1, max_length=64)]
    reason_text: Text = ""
    # exchange: another variant of the same product, by order line
    replacement_skus: Annotated[
        dict[int, Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=100)
    ] = msgspec.field(default_factory=dict)


class Decision(_In):
    note: Text = ""
    # exchange that cannot be replaced: settle it as a refund
    resolution: Literal["default", "refund"] = "default"


class Rejection(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): what the customer reads
    EXAMPLE: ClassVar[dict[str, Any]] = {"reason": "the photos show the item used, not damaged"}

    reason: Annotated[str, Meta(min_length=1, max_length=500)]


class Withdrawal(_In):
    reason: Text = ""


class ReturnShipment(_In):
    carrier: Carrier
    tracking_no: TrackingNo
    phone: Phone


def _pickup_example() -> dict[str, Any]:
    """Tomorrow 09:00 to 12:00 UTC: a pickup window must end in the coming days."""
    start = datetime.combine(utcnow().date() + timedelta(days=1), time(9), tzinfo=UTC)
    return {
        "window_start": start.isoformat().replace("+00:00", "Z"),
        "window_end": (start + timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
    }


class PickupIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py), made when
    # the document is: a window in the past or weeks away is refused.
    EXAMPLE: ClassVar[Callable[[], dict[str, Any]]] = staticmethod(_pickup_example)

    window_start: datetime
    window_end: datetime
    # where the courier calls; default: the order's delivery address
    address: Address | None = None
    carrier: Carrier = "sandbox"


class InspectionIn(_In):
    line_id: int
    quantity: Units
    grade: Grade = "A"
    disposition: Disposition | None = None
    passed: bool = True
    note: Text = ""


class Receive(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): every unit passes, received at a demo warehouse
    EXAMPLE: ClassVar[dict[str, Any]] = {"passed": True, "note": "sealed, as sent", "warehouse": "SH"}

    passed: bool = True
    note: Text = ""
    # per unit (or several alike); default: every unit of the case, as ``passed`` says
    inspections: Annotated[list[InspectionIn], Meta(min_length=1, max_length=1000)] | None = None
    # where the goods were received: recorded as case.data["received_warehouse"], and WMS
    # restocks there (before the parcel's landing or expected warehouse)
    warehouse: Warehouse | None = None


class StaffNote(_In):
    note: Text = ""


class ShipBack(_In):
    carrier: Carrier
    tracking_no: TrackingNo


# -- responses ------------------------------------------------------------------


class CaseLineView(msgspec.Struct, kw_only=True):
    line_id: int
    sku: str
    quantity: int
    received: int
    replacement_sku: str | None = None


class ReturnParcelView(msgspec.Struct, kw_only=True):
    """The goods' way back as a case shows it: expected from the moment the return is
    approved (``awaiting_waybill``, or ``awaiting_pickup`` while a pickup is being booked),
    then the customer's waybill (or the one a pickup produced) with the carrier's status."""

    # awaiting_waybill | awaiting_pickup | filed | picked_up | in_transit | delivered | exception | stale
    status: str
    # the warehouse it is to reach (the return address's)
    warehouse: str | None = None
    carrier: str | None = None
    tracking_no: str | None = None
    phone: str = ""
    # while it is still expected: the deadline to ship it (the case's ``return_by``)
    return_by: datetime | None = None


class CaseView(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    type: str
    status: str
    status_text: str
    shop: str
    customer: str
    reason: str
    reason_text: str
    lines: list[CaseLineView]
    shipped: bool
    refund_amount: int
    refund_id: int | None
    refund_status: str | None
    # what the case's units would refund now (0 once refunded)
    refundable_amount: int
    currency: str
    replacement_order_id: int | None
    # from ``awaiting_return`` on: expected, then filed and followed (ReturnParcelView)
    return_parcel: ReturnParcelView | None
    pickup: Pickup | None
    inspections: list[dict[str, Any]]
    # Where to send the goods (from ``awaiting_return`` on, once a warehouse gave its
    # address) and by when (while the case waits for them).
    return_address: ReturnAddress | None = None
    return_by: datetime | None = None
    due_at: datetime | None
    timer: str | None
    created_at: datetime
    updated_at: datetime
    timeline: list[TimelineView]
    # Staff only: why a center (risk) holds the case from automatic decisions.
    hold: str | None = None


class CaseSummary(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    type: str
    status: str
    shop: str
    customer: str
    refund_amount: int
    replacement_order_id: int | None
    due_at: datetime | None
    created_at: datetime
    # Staff only (see CaseView.hold).
    hold: str | None = None


class ReasonView(msgspec.Struct, kw_only=True):
    code: str
    text: str
    merchant_fault: bool
