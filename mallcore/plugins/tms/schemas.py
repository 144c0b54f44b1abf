"""TMS request and response bodies (amounts in minor units, weights in grams)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import Meta

from mallcore.kernel.schemas import ShopCode

Region = Annotated[
    str, Meta(min_length=1, max_length=12, pattern=r"^[0-9A-Za-z]+$", description="region code or prefix")
]
Units = Annotated[int, Meta(ge=1, le=100_000_000, description="pieces (by piece) or grams (by weight)")]
Fee = Annotated[int, Meta(ge=0, le=1_000_000_000, description="minor units")]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
Label = Annotated[str, Meta(max_length=60)]
Sku = Annotated[str, Meta(min_length=1, max_length=64)]
Code = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
TrackingNo = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9\-]+$")]
Text = Annotated[str, Meta(max_length=500)]
Place = Annotated[str, Meta(max_length=200)]

View = TypeVar("View", bound=msgspec.Struct)


def view_of(kind: type[View], row: Any, **given: Any) -> View:
    """A response Struct from the row's columns of the same names, but for those ``given``."""
    return kind(**{f: getattr(row, f) for f in kind.__struct_fields__ if f not in given}, **given)


EventStatus = Literal[
    "picked_up", "in_transit", "out_for_delivery", "delivered", "exception", "pickup_failed"
]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class Charge(_In, kw_only=True):
    """First unit price plus a price per additional unit (首重/首件 + 续重/续件).

    ``first`` and ``additional`` are pieces for a by-piece template, grams for
    a by-weight one (default 1 piece / 1000 g). Units beyond ``first`` are
    charged per started ``additional`` step: 2.1 kg with first 1 kg and
    additional 1 kg is first + 2 steps.
    """

    first_fee: Fee
    additional_fee: Fee = 0
    first: Units | None = None
    additional: Units | None = None


class RegionRule(Charge, kw_only=True):
    """Prices for destinations whose region code starts with one of ``regions``."""

    regions: Annotated[list[Region], Meta(min_length=1, max_length=500)]
    name: Label = ""


class FreeRule(_In, kw_only=True):
    """Free shipping (包邮) when the goods reach ``min_amount`` and/or ``min_quantity``.

    ``regions`` (prefixes) limits it to destinations; empty means everywhere.
    With both conditions set, both must hold (满X件且满Y元).
    """

    regions: Annotated[list[Region], Meta(max_length=500)] = msgspec.field(default_factory=list)
    min_amount: Fee | None = None
    min_quantity: Units | None = None
    name: Label = ""


class TemplateSpec(_In, kw_only=True):
    # The request body example of the OpenAPI document (kernel/http/examples.py): the demo's
    # template by weight, as PUT replaces it (every field; the regional rules dropped here).
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "Standard 标准快递",
        "mode": "weight",
        "default": True,
        "default_rule": {"first": 1000, "first_fee": 800, "additional": 1000, "additional_fee": 300},
        "free": [{"name": "free over ¥99", "min_amount": 9900}],
    }

    name: Name
    mode: Literal["piece", "weight"]
    default_rule: Charge
    rules: Annotated[list[RegionRule], Meta(max_length=200)] = msgspec.field(default_factory=list)
    free: Annotated[list[FreeRule], Meta(max_length=50)] = msgspec.field(default_factory=list)
    not_delivered: Annotated[list[Region], Meta(max_length=500)] = msgspec.field(default_factory=list)
    # The warehouse this template ships from (None: any warehouse).
    origin: Code | None = None
    # A split order's parcels: charged once (units pooled) or each parcel on its own.
    split: Literal["once", "per_parcel"] = "once"
    # The shop's default template: prices every SKU not bound to another.
    default: bool = False
    skus: Annotated[list[Sku], Meta(max_length=2000)] = msgspec.field(default_factory=list)
    active: bool = True


class TemplateIn(TemplateSpec, kw_only=True):
    # A second template of the demo shop, for the SKUs bound to it.
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "shop": "demo",
        "name": "Bulky 大件",
        "mode": "piece",
        "default_rule": {"first_fee": 2000, "additional_fee": 1000},
    }

    shop: ShopCode


class TemplateView(msgspec.Struct, kw_only=True):
    id: int
    shop: str
    name: str
    mode: str
    default_rule: Charge
    rules: list[RegionRule]
    free: list[FreeRule]
    not_delivered: list[str]
    origin: str | None
    split: str
    default: bool
    skus: list[str]
    active: bool
    created_at: datetime
    updated_at: datetime


class CarrierView(msgspec.Struct, kw_only=True):
    code: str
    name: str
    waybill_prefix: str
    name_zh: str = ""
    pickup: bool
    webhooks: bool


class EventView(msgspec.Struct, kw_only=True):
    id: int
    status: str
    occurred_at: datetime
    location: str
    description: str
    warehouse: str | None
    source: str
    applied: bool
    received_at: datetime


class ShipmentDetail(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    shop: str
    customer: str
    kind: str
    case_id: int | None
    carrier: str
    tracking_no: str
    status: str
    warehouse: str | None
    region: str | None
    lines: list[dict[str, int]]
    weight_grams: int
    freight: int | None
    pickup: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    picked_up_at: datetime | None
    delivered_at: datetime | None
    stale_at: datetime | None
    # a return or pickup the carrier delivered to another warehouse than the return address's:
    # where it landed ("wrong warehouse"); None otherwise
    wrong_warehouse: str | None = None
    events: list[EventView] = msgspec.field(default_factory=list)


class CarrierEventIn(msgspec.Struct, kw_only=True):
    """A carrier's tracking event; unknown fields are tolerated."""

    tracking_no: TrackingNo
    status: EventStatus
    occurred_at: datetime
    description: Text = ""
    # The carrier's id of the event; without one, replays are recognised by content.
    event_id: Annotated[str, Meta(min_length=1, max_length=120)] | None = None
    location: Place = ""
    # For a return parcel: the warehouse (code) it was delivered to.
    warehouse: Code | None = None


class StaffEventIn(_In):
    status: EventStatus
    occurred_at: datetime | None = None
    description: Text = ""
    location: Place = ""
    warehouse: Code | None = None


class ConfirmIn(_In):
    note: Text = ""


class AdvanceIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): the parcel's next step
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "description": "Arrived at the Hangzhou hub",
        "location": "Hangzhou hub",
    }

    # Omitted: the next step (picked up, in transit, out for delivery, delivered).
    status: EventStatus | None = None
    description: Text = ""
    location: Place = ""
    warehouse: Code | None = None


class EventResult(msgspec.Struct, kw_only=True):
    # applied: the status changed; recorded: kept in the history, status unchanged
    # (late or out of order); duplicate: seen before, nothing changed;
    # kept_for_review: unknown waybill, stored for staff; awaiting_confirmation: a
    # shop declared its parcel delivered, which waits for the customer or the carrier.
    result: str
    shipment_id: int | None = None
    status: str | None = None
    event_id: int | None = None


class UnknownEventView(msgspec.Struct, kw_only=True):
    id: int
    carrier: str
    tracking_no: str
    status: str
    occurred_at: datetime
    location: str
    description: str
    warehouse: str | None
    received_at: datetime
    resolved_at: datetime | None
    resolution: str | None
    resolved_by: str | None
    note: str | None


class DismissIn(_In):
    note: Text = ""
