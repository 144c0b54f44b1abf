"""Settings and HTTP bodies of the WMS center."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import Meta

Code = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.\-]+$")]
Sku = Annotated[str, Meta(min_length=1, max_length=64)]
Region = Annotated[str, Meta(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9\-]+$")]
Positive = Annotated[int, Meta(ge=1, le=1_000_000_000)]
Count = Annotated[int, Meta(ge=0, le=1_000_000_000)]
Reason = Annotated[str, Meta(max_length=300)]
# Lower ships first among equally near warehouses (the column is 32-bit).
Priority = Annotated[int, Meta(ge=-1_000_000, le=1_000_000)]


View = TypeVar("View", bound=msgspec.Struct)


def view_of(kind: type[View], row: Any) -> View:
    """A response Struct from the row's columns of the same names."""
    return kind(**{f: getattr(row, f) for f in kind.__struct_fields__})


class WmsSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``[centers.wms]``."""

    # When stock is held: when the order is placed (拍下减库存) or when it is paid (付款减库存).
    reserve_on: Literal["place", "pay"] = "place"
    # How long an unpaid order holds its stock before it is cancelled.
    unpaid_hold_minutes: Annotated[float, Meta(ge=0)] = 30.0
    # How often the expiry job runs, and how many orders one run cancels at most.
    expire_every_seconds: Annotated[float, Meta(gt=0)] = 30.0
    expire_batch: Annotated[int, Meta(ge=1)] = 500
    # Warehouse users dispatch paid orders by hand (POST /wms/orders/{id}/dispatch).
    manual_dispatch: bool = False
    # Paid orders still undispatched this long after payment are dispatched by a job.
    dispatch_retry_after_seconds: Annotated[float, Meta(ge=0)] = 120.0
    dispatch_retry_every_seconds: Annotated[float, Meta(gt=0)] = 60.0
    # Where returned goods go when the return parcel names no warehouse of ours
    # (default: back to the warehouse they left from).
    returns_warehouse: str | None = None
    # At most this many warehouses for one order.
    max_split: Annotated[int, Meta(ge=1, le=8)] = 4
    # How many split plans are priced by the freight quote (TMS) at dispatch.
    freight_plans: Annotated[int, Meta(ge=1, le=50)] = 8
    # How long each worker trusts its cached warehouse list.
    warehouse_cache_seconds: Annotated[float, Meta(ge=0)] = 10.0


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


Contact = Annotated[str, Meta(min_length=1, max_length=100)]
AreaName = Annotated[str, Meta(min_length=1, max_length=64)]
Street = Annotated[str, Meta(min_length=1, max_length=300)]
Phone = Annotated[str, Meta(min_length=3, max_length=32, pattern=r"^[0-9+\- ]+$")]


class _ReturnAddressIn(_In):
    # Where customers send returns to this warehouse (the after-sale case tells them).
    contact: Contact | None = None
    phone: Phone | None = None
    province: AreaName | None = None
    city: AreaName | None = None
    district: AreaName | None = None
    street: Street | None = None


class WarehouseIn(_ReturnAddressIn, kw_only=True):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a warehouse the demo does not have
    EXAMPLE: ClassVar[dict[str, Any]] = {"code": "HZ", "name": "杭州仓", "region": "330100"}

    code: Code
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    region: Region
    active: bool = True
    priority: Priority = 0


class WarehousePatch(_ReturnAddressIn, kw_only=True):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a demo warehouse's return desk
    EXAMPLE: ClassVar[dict[str, Any]] = {"contact": "售后组 张三", "phone": "021-60001234", "priority": 10}

    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    region: Region | None = None
    active: bool | None = None
    priority: Priority | None = None


class WarehouseView(msgspec.Struct, kw_only=True):
    code: str
    name: str
    region: str
    active: bool
    priority: int
    contact: str | None
    phone: str | None
    province: str | None
    city: str | None
    district: str | None
    street: str | None
    created_at: datetime
    updated_at: datetime


class InboundIn(_In):
    warehouse: Code
    sku: Sku
    quantity: Positive
    reason: Reason = "inbound"
    # restock (sellable), b_grade or quarantine
    bucket: Literal["on_hand", "b_grade", "quarantine"] = "on_hand"


class StockView(msgspec.Struct, kw_only=True):
    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int
    b_grade: int
    quarantine: int


class StockSummary(msgspec.Struct, kw_only=True):
    sku: str
    on_hand: int
    reserved: int
    available: int
    b_grade: int
    quarantine: int
    warehouses: list[StockView]


class InboundOut(msgspec.Struct, kw_only=True):
    movement_id: int
    stock: StockView


class MovementView(msgspec.Struct, kw_only=True):
    id: int
    sku: str
    warehouse: str
    kind: str
    on_hand: int
    reserved: int
    b_grade: int
    quarantine: int
    order_id: int | None
    line_id: int | None
    ref: str | None
    actor: str
    reason: str
    at: datetime


class CountIn(_In):
    sku: Sku
    counted: Count


class StocktakeIn(_In):
    warehouse: Code
    counts: Annotated[list[CountIn], Meta(min_length=1, max_length=1000)]
    reason: Reason = "stocktake"


class CountResult(msgspec.Struct, kw_only=True):
    sku: str
    previous: int
    counted: int
    difference: int
    reserved: int


class StocktakeOut(msgspec.Struct, kw_only=True):
    ref: str
    warehouse: str
    lines: list[CountResult]
    # Units found (positive) or missing (negative) over all counted SKUs.
    difference: int


class TransferIn(_In):
    sku: Sku
    from_warehouse: Code
    to_warehouse: Code
    quantity: Positive
    reason: Reason = "transfer"


class TransferOut(msgspec.Struct, kw_only=True):
    ref: str
    sku: str
    quantity: int
    source: StockView
    destination: StockView


class ReservationView(msgspec.Struct, kw_only=True):
    id: int
    line_id: int
    sku: str
    warehouse: str
    quantity: int
    status: str
    expires_at: datetime | None
    ref: str | None


class OrderStock(msgspec.Struct, kw_only=True):
    order_id: int
    status: str
    reservations: list[ReservationView]
    movements: list[MovementView]


class QueueEntry(msgspec.Struct, kw_only=True):
    order_id: int
    shop: str
    placed_at: datetime
    waiting_since: datetime
    lines: int
    units: int
    hold: str | None
    # Warehouses where the order's stock is held now.
    warehouses: list[str]


class ParcelLine(msgspec.Struct, kw_only=True):
    line_id: int
    quantity: int


class ParcelView(msgspec.Struct, kw_only=True):
    warehouse: str | None
    region: str | None
    weight_grams: int
    freight: int | None
    lines: list[ParcelLine]


class DispatchOut(msgspec.Struct, kw_only=True):
    order_id: int
    status: str
    parcels: list[ParcelView]
