"""Request and response bodies of the kernel's HTTP contract (docs/architecture.md).

Amounts are integers in minor units. Field names here are the contract;
adding fields is fine, renaming is a breaking change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from .types import Address

Quantity = Annotated[int, Meta(ge=1, le=1_000_000, description="units, at least 1")]
Sku = Annotated[str, Meta(min_length=1, max_length=64)]
ShopCode = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Amount = Annotated[int, Meta(ge=0, description="minor units")]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class LineIn(_In):
    sku: Sku
    quantity: Quantity


class PlaceOrder(_In):
    shop: ShopCode
    lines: Annotated[list[LineIn], Meta(min_length=1, max_length=500)]
    address: Address | None = None
    coupons: Annotated[list[Annotated[str, Meta(max_length=64)]], Meta(max_length=20)] = msgspec.field(
        default_factory=list
    )
    points: Annotated[int, Meta(ge=0, le=2**31 - 1)] = 0
    note: Annotated[str, Meta(max_length=500)] = ""


class PayOrder(_In):
    method: Annotated[str, Meta(min_length=1, max_length=32)] = "sandbox"
    amount: Amount | None = None
    # Method-specific input, e.g. ``{"simulate": "decline"}`` for the sandbox.
    data: Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=50)] = msgspec.field(
        default_factory=dict
    )


class CancelOrder(_In):
    reason: Annotated[str, Meta(max_length=500)] = "cancelled by request"


class StaffStep(_In):
    note: Annotated[str, Meta(max_length=500)] = ""


class LineView(msgspec.Struct, kw_only=True):
    id: int
    line_no: int
    sku: str
    name: str
    quantity: int
    unit_price: int
    subtotal: int
    discount: int
    shipping: int
    fees: int
    total: int


class AllocationView(msgspec.Struct):
    line_id: int
    amount: int


class AdjustmentView(msgspec.Struct, kw_only=True):
    source: str
    reason: str
    amount: int
    phase: str
    line_id: int | None = None
    code: str | None = None
    # "platform" or "shop": who pays for a discount
    funded_by: str | None = None
    allocation: list[AllocationView] = msgspec.field(default_factory=list)


class ShipmentView(msgspec.Struct, kw_only=True):
    id: int
    carrier: str
    tracking_no: str
    status: str
    warehouse: str | None = None
    lines: list[dict[str, int]] = msgspec.field(default_factory=list)
    events: list[dict[str, Any]] = msgspec.field(default_factory=list)


class OrderView(msgspec.Struct, kw_only=True):
    id: int
    shop: str
    customer: str
    status: str
    currency: str
    subtotal: int
    discount: int
    shipping: int
    fees: int
    total: int
    paid: int
    refunded: int
    lines: list[LineView]
    adjustments: list[AdjustmentView]
    shipments: list[ShipmentView] = msgspec.field(default_factory=list)
    tracking_url: str | None = None
    address: Address | None = None
    coupons: list[str] = msgspec.field(default_factory=list)
    points: int = 0
    parent_id: int | None = None
    hold: str | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    # Only in a price preview: what the customer could still unlock.
    hints: list[HintView] = msgspec.field(default_factory=list)


class HintView(msgspec.Struct, kw_only=True):
    """What the customer could still get, from a center, in the client's language."""

    source: str
    message: str
    code: str | None = None
    data: dict[str, Any] | None = None


class OrderSummary(msgspec.Struct, kw_only=True):
    id: int
    shop: str
    customer: str
    status: str
    currency: str
    total: int
    placed_at: datetime


class TimelineView(msgspec.Struct, kw_only=True):
    at: datetime
    kind: str
    actor: str
    message: str
    public: bool
    ref: str | None = None
    data: dict[str, Any] | None = None


class PaymentView(msgspec.Struct, kw_only=True):
    id: int | None
    order_id: int
    status: str
    method: str
    amount: int
    currency: str
    reference: str | None = None
    failure: str | None = None
    order_status: str
