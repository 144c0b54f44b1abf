"""What centers pass each other about after-sale cases and parcels.

The ``refund`` center owns cases and their state machine; these structs are
the contract it shares through hooks, so WMS, TMS, finance, membership and
promotion can react without importing the refund center:

- :class:`AfterSaleCase` is passed to ``order_after_sale(ctx, case)`` at
  every step. Reacting centers may fill in fields the step asks for (TMS
  books a pickup into ``case.pickup``; WMS reports where goods went back).
- :class:`Parcel` is one package of an order leaving a warehouse; WMS puts
  its plan in ``ctx.parcels`` during ``order_dispatch`` and TMS makes a
  shipment of each.
- :class:`ParcelEvent` is what TMS tells the after-sale center about a return
  parcel (``after_sale_parcel`` hook): picked up, in transit, delivered to
  the warehouse, pickup failed, stale (no movement for too long).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

CaseType = Literal["refund_only", "return_refund", "exchange", "repair"]
Grade = Literal["A", "B", "C", "D"]
Disposition = Literal["restock", "b_grade", "quarantine", "scrap", "send_back"]


class CaseLine(msgspec.Struct, kw_only=True):
    line_id: int
    sku: str
    quantity: int
    # units the warehouse has received back so far
    received: int = 0


class Inspection(msgspec.Struct, kw_only=True):
    """The warehouse's verdict on units of one line (per unit, or several alike)."""

    line_id: int
    sku: str
    quantity: int
    grade: Grade = "A"
    disposition: Disposition = "restock"
    passed: bool = True
    note: str = ""


class ReturnParcel(msgspec.Struct, kw_only=True):
    """The customer's return waybill ("我已寄出"), or the one a pickup produced."""

    carrier: str
    tracking_no: str
    phone: str = ""
    status: str = "filed"  # filed | picked_up | in_transit | delivered | exception | stale
    warehouse: str | None = None  # where it should arrive


class ReturnAddress(msgspec.Struct, kw_only=True):
    """Where the customer sends the goods back: a warehouse's address.

    The after-sale center asks for it when a case starts waiting for the goods
    (``awaiting_return``), naming the warehouse if it has one configured; the
    center that keeps warehouses (WMS) fills in the rest in ``order_after_sale``.
    """

    warehouse: str | None = None
    contact: str = ""
    phone: str = ""
    province: str = ""
    city: str = ""
    district: str = ""
    street: str = ""

    @property
    def filled(self) -> bool:
        """Has a warehouse given its address (a street to send to)?"""
        return bool(self.street)


class Pickup(msgspec.Struct, kw_only=True):
    """A door pickup (上门取件) the customer asked for; TMS fills in the booking."""

    window_start: datetime
    window_end: datetime
    address: dict[str, Any]
    carrier: str = "sandbox"
    status: str = "requested"  # requested | booked | failed | picked_up | cancelled
    courier: str | None = None
    courier_phone: str | None = None
    code: str | None = None
    tracking_no: str | None = None
    attempts: int = 0


class AfterSaleCase(msgspec.Struct, kw_only=True):
    """An after-sale case as other centers see it in ``order_after_sale``.

    ``status`` is the step just taken: ``requested``, ``approved``,
    ``rejected``, ``awaiting_return``, ``return_shipped`` (waybill filed),
    ``pickup_requested``, ``return_in_transit``, ``received``, ``inspected``,
    ``refund_pending_review``, ``refunded``, ``replacement_created``,
    ``repaired``, ``shipped_back``, ``closed``, ``cancelled``.
    """

    id: int
    order_id: int
    type: CaseType
    status: str
    previous: str | None
    customer: str
    shop: str
    lines: list[CaseLine]
    reason: str = ""
    inspections: list[Inspection] = msgspec.field(default_factory=list)
    return_parcel: ReturnParcel | None = None
    # At ``awaiting_return``: where to send the goods (WMS fills it in).
    return_address: ReturnAddress | None = None
    pickup: Pickup | None = None
    refund_id: int | None = None
    refund_amount: int = 0
    replacement_order_id: int | None = None
    # Did the order ship before the case? (refund only before shipment is a
    # cancellation of those lines: WMS releases their stock.)
    shipped: bool = True
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    # Set by a reacting center at ``requested`` (see the ``order_after_sale`` hook):
    # a reason to keep the case from every automatic decision until released...
    hold: str | None = None
    # ...or a reason to approve a refund-only case at once (极速退款).
    fast_track: str | None = None


class Parcel(msgspec.Struct, kw_only=True):
    """One package of an order: from which warehouse, which lines, how many."""

    warehouse: str | None
    region: str | None
    lines: list[tuple[int, int]]  # (line_id, quantity)
    weight_grams: int = 0
    freight: int | None = None  # what TMS quoted for it, if asked
    carrier: str | None = None


class ParcelEvent(msgspec.Struct, kw_only=True):
    """A carrier event on a return parcel or pickup, for the after-sale center."""

    case_id: int
    order_id: int
    kind: Literal["return", "pickup"]
    status: str  # picked_up | in_transit | out_for_delivery | delivered | exception | stale | pickup_failed | booked
    carrier: str
    tracking_no: str
    occurred_at: datetime
    description: str = ""
    location: str = ""
    warehouse: str | None = None
    wrong_warehouse: bool = False
