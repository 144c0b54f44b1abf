"""Bodies and views of the risk routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

import msgspec

Kind = Literal["customer", "phone", "address", "ip", "cidr", "device"]
Action = Literal["allow", "review", "block"]
Stage = Literal["place", "pay", "after_sale", "refund"]
ShopCode = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Note = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Condition = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class ListIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): an address the demo's customers do not use
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "kind": "ip",
        "value": "203.0.113.7",
        "action": "block",
        "reason": "card testing from this address",
    }

    kind: Kind
    value: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    action: Action
    reason: Note
    expires_at: datetime | None = None
    shop: ShopCode | None = None  # null: the platform's list


class ListEntryView(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    value: str
    label: str | None
    action: str
    shop: str | None
    reason: str
    source: str
    report_id: int | None
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    removed_by: str | None
    removed_at: datetime | None
    active: bool


class RuleIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): large orders wait for a person
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "name": "Large order 大额订单",
        "condition": "order.total >= 100000",
        "action": "review",
    }

    name: Name
    condition: Condition
    action: Action = "review"
    stages: Annotated[list[Stage], msgspec.Meta(min_length=1, max_length=4)] = msgspec.field(
        default_factory=lambda: ["place"]
    )
    score: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    shop: ShopCode | None = None  # null: every shop's orders
    enabled: bool = True


class RulePatch(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a heavier score
    EXAMPLE: ClassVar[dict[str, Any]] = {"score": 60, "enabled": True}

    name: Name | None = None
    condition: Condition | None = None
    action: Action | None = None
    stages: Annotated[list[Stage], msgspec.Meta(min_length=1, max_length=4)] | None = None
    score: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None
    enabled: bool | None = None


class RuleView(msgspec.Struct, kw_only=True):
    id: int | None
    name: str
    shop: str | None
    condition: str
    action: str
    score: int
    stages: list[str]
    enabled: bool
    source: str  # config | api
    created_by: str | None = None
    created_at: datetime | None = None
    updated_by: str | None = None
    updated_at: datetime | None = None


class DryRunIn(_In):
    condition: Condition
    last: Annotated[int, msgspec.Meta(ge=1)] = 1000
    stage: Stage = "place"
    shop: ShopCode | None = None


class DryRunHit(msgspec.Struct, kw_only=True):
    decision_id: int
    order_id: int | None
    shop: str
    customer: str
    action: str  # what was decided then
    created_at: datetime


class DryRunView(msgspec.Struct, kw_only=True):
    condition: str
    evaluated: int
    matched: int
    errors: int
    orders: list[DryRunHit]


class DecisionView(msgspec.Struct, kw_only=True):
    id: int
    stage: str
    order_id: int | None
    case_id: int | None
    refund_id: int | None
    shop: str
    customer: str
    action: str
    score: int
    rules: list[dict[str, Any]]
    lists: list[dict[str, Any]]
    facts: dict[str, Any]
    signals: dict[str, Any]
    errors: list[dict[str, Any]]
    created_at: datetime


class ReviewView(msgspec.Struct, kw_only=True):
    id: int
    kind: str  # order | case | refund
    order_id: int
    case_id: int | None
    refund_id: int | None
    stage: str
    action: str
    status: str  # open | released | rejected | withdrawn
    score: int
    shop: str
    customer: str
    decision_id: int
    rules: list[dict[str, Any]]
    lists: list[dict[str, Any]]
    facts: dict[str, Any]
    signals: dict[str, Any]
    co_reviewers: list[str]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    note: str | None


class ReviewNote(_In):
    note: Note


class ReportIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a customer who is not one of the demo's buyers
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "shop": "demo",
        "customer": "mallory",
        "reason": "ordered ten phones with three cards in an hour",
    }

    shop: ShopCode
    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    reason: Note
    order_id: int | None = None


class ReportDecision(_In):
    note: Note
    action: Literal["block", "review"] = "block"
    # What of the customer to list: their id always; phone, address, device and
    # IP as they appear on the reported order (or the customer's last placement).
    kinds: Annotated[
        list[Literal["customer", "phone", "address", "device", "ip"]], msgspec.Meta(max_length=5)
    ] = msgspec.field(default_factory=lambda: ["customer"])
    # The reporting shop's list, or the platform's (platform staff only).
    scope: Literal["shop", "platform"] = "shop"
    expires_at: datetime | None = None


class ReportView(msgspec.Struct, kw_only=True):
    id: int
    shop: str
    customer: str
    order_id: int | None
    reason: str
    reported_by: str
    status: str  # open | confirmed | dismissed
    entries: list[int]
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    created_at: datetime


class CreditEventView(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    delta: int
    credit: int
    order_id: int | None
    actor: str
    note: str | None
    at: datetime


class ProfileView(msgspec.Struct, kw_only=True):
    customer: str
    credit: int
    first_seen_at: datetime
    completed_orders: int
    rejected_reviews: int
    chargebacks: int
    abusive_refunds: int
    events: list[CreditEventView]


class ChargebackIn(_In):
    note: Note
    order_id: int | None = None


class StatsView(msgspec.Struct, kw_only=True):
    open_reviews: int
    open_reports: int
    decisions_24h: dict[str, int]
    list_entries: dict[str, int]
    rules: int
