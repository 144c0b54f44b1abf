"""Request and response bodies of ``/membership`` (field names are the contract)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec
from msgspec import Meta

from .settings import MAX_POINTS

Reason = Annotated[str, Meta(min_length=1, max_length=300)]
Sku = Annotated[str, Meta(min_length=1, max_length=64)]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class AdjustIn(_In):
    """A manual adjustment of a member's points: never zero, and always with a reason."""

    # The request body example of the OpenAPI document (kernel/http/examples.py): a goodwill gesture, with its reason
    EXAMPLE: ClassVar[dict[str, Any]] = {"delta": 100, "reason": "sorry for the late parcel"}

    delta: Annotated[int, Meta(ge=-MAX_POINTS, le=MAX_POINTS)]
    reason: Annotated[str, Meta(max_length=200)] = ""


class LevelIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a level of the default ladder
    EXAMPLE: ClassVar[dict[str, Any]] = {"level": "gold", "reason": "VIP by the shop owner's decision"}

    level: Annotated[str, Meta(min_length=1, max_length=32)]
    reason: Reason


class MeIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a grown-up's birthday
    EXAMPLE: ClassVar[dict[str, Any]] = {"birthday": "1990-05-20"}

    birthday: date


class ProgramIn(_In):
    enabled: bool = True
    points: bool = True
    member_price: bool = True
    excluded_skus: Annotated[list[Sku], Meta(max_length=1000)] = msgspec.field(default_factory=list)


class Benefit(msgspec.Struct, kw_only=True):
    code: str  # member_price | free_shipping | points_multiplier | upgrade_coupon | birthday_coupon | fast_refund
    text: str
    value: int


class Vouchers(msgspec.Struct, kw_only=True):
    month: str
    per_month: int
    held: int
    used: int
    left: int


class Expiring(msgspec.Struct, kw_only=True):
    points: int  # will have expired by ``by`` unless spent first
    by: datetime


class MemberView(msgspec.Struct, kw_only=True):
    customer: str
    level: str
    level_name: str
    growth: int
    next_level: str | None
    next_level_name: str | None
    growth_to_next: int | None
    points: int  # spendable: points held by unpaid orders are not in it
    held: int
    debt: int
    benefits: list[Benefit]
    vouchers: Vouchers
    expiring: Expiring | None
    lifetime_growth: int
    period_start: datetime | None
    period_end: datetime | None
    birthday: date | None
    member_since: datetime | None


class PointsRow(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    delta: int
    balance: int
    kind: Literal["earn", "spend", "hold", "release", "expire", "clawback", "return", "adjust"]
    order_id: int | None
    case_id: int | None
    refund_id: int | None
    reason: str
    debt: int = 0
    actor: str | None = None


class HistoryRow(msgspec.Struct, kw_only=True):
    id: int
    at: datetime
    kind: str
    level_from: str | None
    level_to: str | None
    growth: int | None
    order_id: int | None
    reason: str
    actor: str
    data: dict[str, Any] | None = None


class LevelView(msgspec.Struct, kw_only=True):
    code: str
    name: str
    growth: int
    benefits: list[Benefit]


class MemberSummary(msgspec.Struct, kw_only=True):
    customer: str
    level: str
    level_name: str
    growth: int
    points: int
    held: int
    updated_at: datetime


class MemberPage(msgspec.Struct, kw_only=True):
    """A page of members by customer id; pass ``next`` as ``after`` for the next page."""

    items: list[MemberSummary]
    next: str | None


class ProgramView(msgspec.Struct, kw_only=True):
    shop: str
    enabled: bool
    points: bool
    member_price: bool
    excluded_skus: list[str]
    custom: bool  # False: the default for shops that never set one


class WalletView(msgspec.Struct, kw_only=True):
    """卡券包: the customer's coupons (from the centers that answer ``customer_coupons``),
    free-shipping vouchers and points, on one page."""

    customer: str
    points: int
    held: int
    expiring: Expiring | None
    vouchers: Vouchers
    coupons: list[dict[str, Any]]
    # Centers that answered for coupons; empty when none is enabled (no promotion center).
    coupon_sources: list[str]


class LevelCount(msgspec.Struct, kw_only=True):
    level: str
    level_name: str
    members: int
    points: int


class Stats(msgspec.Struct, kw_only=True):
    members: int
    points: int  # spendable, all members
    held: int
    debt: int  # points owed by members in debt
    outstanding: int  # what the platform owes: spendable + held
    levels: list[LevelCount]
