"""Request and response bodies of the promotion center's routes.

Amounts are integers in minor units of the shop's currency (a platform
campaign's or coupon's: the default currency, ``[orders] currency``).
Field names are the contract: adding fields is fine, renaming is not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

Moment = Annotated[datetime, Meta(tz=True, description="ISO 8601 with a time zone")]
Name = Annotated[str, Meta(min_length=1, max_length=100)]
ShopCode = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Group = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:\-]+$")]
Skus = Annotated[list[Annotated[str, Meta(min_length=1, max_length=64)]], Meta(max_length=500)]
Categories = Annotated[list[Annotated[int, Meta(ge=1)]], Meta(max_length=100)]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class CampaignIn(_In):
    """``shop`` null: a platform campaign (admins only). ``type`` and ``rules`` are
    checked by the center (422 with a code) rather than by the body parser."""

    # The request body example of the OpenAPI document (kernel/http/examples.py).
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "满200减20",
        "type": "threshold_off",
        "shop": "demo",
        "ends_at": "2030-12-31T16:00:00Z",
        "rules": {"tiers": [{"threshold": 20000, "off": 2000}]},
    }

    name: Name
    type: Annotated[str, Meta(max_length=32)]
    ends_at: Moment
    shop: ShopCode | None = None
    starts_at: Moment | None = None  # default: now
    skus: Skus = msgspec.field(default_factory=list)
    categories: Categories = msgspec.field(default_factory=list)
    # default: "order" for threshold_off and percent_off (the best one wins), a group of
    # its own for flash_sale and buy_x_get_y; free_shipping is always "shipping"
    stacking_group: Group | None = None
    priority: Annotated[int, Meta(ge=-1000, le=1000)] = 0
    rules: Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=50)] = msgspec.field(
        default_factory=dict
    )


class CampaignPatch(_In):
    """A change to a campaign (``PATCH /promotion/campaigns/{id}``): only the fields given
    change (null or absent: unchanged). ``rules`` replaces the rules whole, for the same
    type; ``paused`` true stops the campaign pricing orders until set false again."""

    EXAMPLE: ClassVar[dict[str, Any]] = {
        "ends_at": "2031-01-15T16:00:00Z",
        "priority": 20,
        "rules": {"tiers": [{"threshold": 20000, "off": 3000}]},
    }

    name: Name | None = None
    starts_at: Moment | None = None
    ends_at: Moment | None = None
    priority: Annotated[int, Meta(ge=-1000, le=1000)] | None = None
    rules: Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=50)] | None = None
    paused: bool | None = None


class CampaignView(msgspec.Struct, kw_only=True):
    id: int
    shop: str | None
    name: str
    type: str
    status: str  # scheduled | live | paused | ended
    label: str  # the rule as shoppers read it: 满200减30, 9折, 秒杀价 9.99...
    currency: str
    starts_at: datetime
    ends_at: datetime
    skus: list[str]
    categories: list[int]
    stacking_group: str
    priority: int
    rules: dict[str, Any]
    funded_by: str
    code: str  # the adjustments' code on orders
    sold: int | None = None  # flash sales: promotional units taken
    left: int | None = None  # flash sales: promotional units left
    created_by: str
    created_at: datetime
    ended_by: str | None = None


class TemplateIn(_In):
    """``shop`` null: a platform coupon (admins only). Validity: ``valid_from`` /
    ``valid_to`` dates, or ``valid_days`` from the claim (claims close at ``valid_to``)."""

    # The request body example of the OpenAPI document (kernel/http/examples.py).
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "10 off 100",
        "kind": "amount",
        "value": 1000,
        "total": 500,
        "shop": "demo",
        "min_spend": 10000,
        "valid_days": 30,
    }

    name: Name
    kind: Annotated[str, Meta(max_length=16)]  # amount | percent
    value: int  # minor units off, or whole percent off (1..99)
    total: int
    shop: ShopCode | None = None
    cap: int | None = None  # percent coupons: the most taken off
    min_spend: int = 0
    per_customer: int = 1
    valid_from: Moment | None = None
    valid_to: Moment | None = None
    valid_days: int | None = None
    skus: Skus = msgspec.field(default_factory=list)
    categories: Categories = msgspec.field(default_factory=list)
    claimable: bool = True  # False: issued only by batch codes or grants


class TemplatePatch(_In):
    """A change to a coupon template (``PATCH /promotion/coupon-templates/{id}``): only
    the fields given change. What a coupon is worth (kind, value, cap, minimum spend,
    scope) is not editable: coupons already issued read it from their template.
    ``paused`` true stops issuing (claims, codes, grants) until set false again."""

    EXAMPLE: ClassVar[dict[str, Any]] = {"total": 1000, "valid_to": "2031-01-31T16:00:00Z"}

    name: Name | None = None
    total: Annotated[int, Meta(ge=1, le=10_000_000)] | None = None
    per_customer: Annotated[int, Meta(ge=1, le=1000)] | None = None
    valid_from: Moment | None = None
    valid_to: Moment | None = None
    claimable: bool | None = None
    paused: bool | None = None


class TemplateView(msgspec.Struct, kw_only=True):
    id: int
    shop: str | None
    name: str
    kind: str
    value: int
    cap: int | None
    min_spend: int
    currency: str
    label: str  # 满100减10, 9折券...
    skus: list[str]
    categories: list[int]
    total: int
    issued: int
    left: int
    per_customer: int
    valid_from: datetime | None
    valid_to: datetime | None
    valid_days: int | None
    claimable: bool
    status: str  # active | paused | ended
    funded_by: str
    created_by: str
    created_at: datetime
    ended_by: str | None = None


class CouponView(msgspec.Struct, kw_only=True):
    code: str
    status: str  # available | locked | used | expired (| unredeemed: a batch code)
    template_id: int
    name: str
    label: str
    kind: str
    value: int
    cap: int | None
    min_spend: int
    currency: str
    shop: str | None  # None: a platform coupon, good in every shop
    valid_from: datetime | None
    valid_to: datetime | None
    source: str  # claim | batch | grant
    reason: str
    order_id: int | None
    issued_at: datetime
    customer: str | None = None
    id: int = 0


class CodesIn(_In):
    count: Annotated[int, Meta(ge=1)]


class CodesView(msgspec.Struct, kw_only=True):
    template_id: int
    codes: list[str]
    issued: int
    left: int


class RedeemIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): the shape of a code (codes are random)
    EXAMPLE: ClassVar[dict[str, Any]] = {"code": "WM94UA9ASD6CFYZE"}

    code: Annotated[str, Meta(min_length=1, max_length=32)]


class EndIn(_In):
    note: Annotated[str, Meta(max_length=500)] = ""


class UsageStats(msgspec.Struct, kw_only=True):
    orders: int  # paid orders that used it
    refunded_orders: int  # paid, then fully refunded
    discount: int  # given on paid orders
    gmv: int  # what those paid orders came to


class CampaignStats(UsageStats, kw_only=True):
    campaign_id: int
    currency: str
    units_sold: int | None = None  # flash sales


class TemplateStats(UsageStats, kw_only=True):
    template_id: int
    currency: str
    issued: int
    claimed: int  # in a customer's wallet (claimed, redeemed or granted)
    available: int
    locked: int
    used: int
    expired: int


class OffersView(msgspec.Struct, kw_only=True):
    """What a shopper of ``shop`` can get now: live campaigns, coupons to claim."""

    shop: str
    campaigns: list[CampaignView]
    coupon_templates: list[TemplateView]
