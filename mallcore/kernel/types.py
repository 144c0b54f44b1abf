"""The kernel's plain data types: what services pass around and hooks receive.

This module is the bottom of the kernel (see docs/architecture.md, "Layers"):
it imports nothing else of mallcore, and nothing here calls a service or
touches the database. Every amount is an ``int`` of minor units.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum
from typing import Annotated, Any

import msgspec


def utcnow() -> datetime:
    return datetime.now(UTC)


class Phase(IntEnum):
    """When an adjustment applies; the kernel applies them in this order, then by center."""

    PROMOTION = 10
    MEMBERSHIP = 20
    COUPON = 30
    POINTS = 40
    FREIGHT = 50
    # Waives freight (包邮, a free-shipping voucher): negative amounts taken off the
    # lines' shipping, never their goods, so a refund's goods value is untouched.
    SHIPPING_DISCOUNT = 55
    FEE = 60
    # Last word on the price, e.g. an exchange replacement at no charge.
    SETTLEMENT = 90


# -- who is asking -------------------------------------------------------------------

ROLES = frozenset({"customer", "merchant", "warehouse", "finance", "risk", "admin"})
STAFF_ROLES = frozenset({"merchant", "warehouse", "finance", "risk"})


class Principal(msgspec.Struct, frozen=True):
    """Who is asking: a subject, its roles, and the scope staff work in.

    Staff (merchant, warehouse, finance, risk) work either for one ``shop`` or,
    with ``platform=True``, for the whole platform; a staff principal with
    neither sees nothing (and :func:`~mallcore.kernel.access.scope_problem`
    refuses its token). Customers and admins need neither.
    """

    subject: str
    roles: frozenset[str]
    shop: str | None = None
    platform: bool = False

    def has(self, *roles: str) -> bool:
        return "admin" in self.roles or not self.roles.isdisjoint(roles)

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def is_platform(self) -> bool:
        """Admins, and platform staff (``platform=True``): they act for the whole platform."""
        return "admin" in self.roles or (self.platform and not self.roles.isdisjoint(STAFF_ROLES))

    def can_see(self, shop: str, owner: str | None = None) -> bool:
        """May this principal see an object of ``shop`` owned by ``owner``?"""
        if "admin" in self.roles:
            return True
        if owner is not None and owner == self.subject and "customer" in self.roles:
            return True
        if not self.roles.isdisjoint(STAFF_ROLES):
            return self.platform or (self.shop is not None and self.shop == shop)
        return False

    def can_act_for_shop(self, shop: str, *roles: str) -> bool:
        """Staff with one of ``roles`` in ``shop`` (or platform-wide), or admin."""
        if "admin" in self.roles:
            return True
        if self.roles.isdisjoint(roles):
            return False
        return self.platform or (self.shop is not None and self.shop == shop)


SYSTEM = Principal("system", frozenset({"admin", "system"}))


# -- orders ----------------------------------------------------------------------


class Address(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    phone: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    region: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    detail: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Line(msgspec.Struct, kw_only=True):
    sku: str
    quantity: int
    id: int | None = None
    line_no: int = 0
    name: str = ""
    unit_price: int | None = None
    weight_grams: int = 0
    subtotal: int = 0
    discount: int = 0
    shipping: int = 0
    fees: int = 0
    total: int = 0
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)


class Adjustment(msgspec.Struct, kw_only=True):
    source: str
    reason: str
    amount: int
    phase: int
    line_no: int | None = None
    code: str | None = None
    # Who pays for a discount: "platform" or "shop" (finance settles shops by it).
    funded_by: str | None = None
    id: int | None = None
    line_id: int | None = None
    # line_no -> share, for order-level adjustments once allocated
    allocation: dict[int, int] | None = None


class Order(msgspec.Struct, kw_only=True):
    shop: str
    customer: str
    status: str
    currency: str
    id: int | None = None
    subtotal: int = 0
    discount: int = 0
    shipping: int = 0
    fees: int = 0
    total: int = 0
    paid: int = 0
    refunded: int = 0
    address: Address | None = None
    coupons: list[str] = msgspec.field(default_factory=list)
    points: int = 0
    parent_id: int | None = None
    hold: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)
    placed_at: datetime | None = None
    updated_at: datetime | None = None


class Hint(msgspec.Struct, kw_only=True):
    """Something the customer could still get ("add 12.00 more for 满200减30"), shown by a preview."""

    source: str
    message: str
    messages: dict[str, str] | None = None
    code: str | None = None
    data: dict[str, Any] | None = None


class Payment(msgspec.Struct, kw_only=True):
    """A payment attempt handed to ``order_pay``; the payment center fills it in."""

    method: str
    amount: int
    currency: str
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    status: str = "unhandled"  # captured | pending | failed
    provider: str | None = None
    reference: str | None = None
    id: int | None = None
    failure: str | None = None


class TimelineEntry(msgspec.Struct, kw_only=True):
    kind: str
    message: str
    actor: str
    public: bool = True
    messages: dict[str, str] | None = None
    ref: str | None = None
    data: dict[str, Any] | None = None
    at: datetime = msgspec.field(default_factory=utcnow)
    order_id: int | None = None
    # Identity for folding echoes (see ``OrderContext.because``): ``key`` is given to an
    # entry once another is written because of it; ``cause`` is that entry's key. Both
    # are written into ``data`` (``"entry"``, ``"cause"``).
    key: str | None = None
    cause: str | None = None

    def row_data(self) -> dict[str, Any] | None:
        """``data`` as written to ``order_timeline``: with the entry's key and cause, if any."""
        if self.key is None and self.cause is None:
            return self.data
        links = {"entry": self.key, "cause": self.cause}
        return {**(self.data or {}), **{k: v for k, v in links.items() if v is not None}}


class Event(msgspec.Struct, kw_only=True):
    topic: str
    payload: dict[str, Any]
    order_id: int | None = None
    at: datetime = msgspec.field(default_factory=utcnow)


# -- refunds -----------------------------------------------------------------------


class RefundItem(msgspec.Struct, frozen=True):
    """What to refund: ``quantity`` units of ``line_id``, less ``deduction`` (restocking fee)."""

    line_id: int
    quantity: int
    deduction: int = 0


class RefundLine(msgspec.Struct, kw_only=True):
    line_id: int
    quantity: int
    amount: int
    shipping: int = 0


class Refund(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    shop: str
    status: str
    currency: str
    amount: int
    shipping: int
    reason: str
    source: str
    requested_by: str
    lines: list[RefundLine]
    ref: str | None = None
    reviewers: list[str] = msgspec.field(default_factory=list)
    provider_ref: str | None = None
    note: str | None = None
    reviewable: bool = True
    review_by: list[str] = msgspec.field(default_factory=list)
    # Why each center in ``review_by`` holds the refund: center -> reason.
    review_reasons: dict[str, str] = msgspec.field(default_factory=dict)
    # Context from the requesting center (e.g. {"case_id": 3, "approved_by": "m1"}).
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    created_at: Any = None
    updated_at: Any = None

    def require_review(self, center: str, why: str = "") -> None:
        """Called in ``order_refund`` at ``requested``: hold the refund for review, saying why."""
        if self.reviewable and center not in self.review_by:
            self.review_by.append(center)
            if why:
                self.review_reasons[center] = why


# -- shops, idempotency --------------------------------------------------------------


class Shop(msgspec.Struct, frozen=True):
    code: str
    name: str
    currency: str


class Claim(msgspec.Struct, frozen=True):
    """A request's claim on an ``Idempotency-Key``: who, which key, and what was asked."""

    subject: str
    key: str
    scope: str
    request_hash: str
