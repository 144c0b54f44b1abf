"""财务管理 finance: a double-entry journal, refund review, reconciliation, settlement.

Hooks:

- ``order_pay`` (trylast): a captured payment posts Dr provider clearing /
  Cr customer clearing, with the provider's reference.
- ``order_deliver``: recognises the sale: what is held for the order goes
  to the shop's payable, less the shop's commission.
- ``order_refund``: at ``requested``, holds the refund for finance review
  when policy says so (``refund.require_review("finance", why)``) and keeps
  a review row; at ``refunded`` posts the refund; at ``rejected`` closes
  the review.
- ``points_moved``: books the membership center's points against the
  points liability (see :mod:`.membership`).
- ``center_commands``: ``mallcore finance reconcile FILE`` and ``check``.

Finance never reads another center's tables: reconciliation matches the
provider's statement against the journal's own postings.

Routes under ``/finance`` (see ``routes.py`` and docs/centers/finance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import click
import msgspec
from msgspec import Meta

from mallcore.kernel import Center, Kernel, OrderContext, Payment, Refund, format_amount, hookimpl, utcnow

from . import accounts, console
from . import tables as t
from .journal import Journal
from .membership import PointsBookings
from .promotion import PlatformDiscounts
from .reconcile import Reconciler
from .review import Reviews
from .routes import router
from .settlement import Settlements

BasisPoints = Annotated[int, Meta(ge=0, le=10_000)]


class FinanceSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Commission on the goods part of each sale, in basis points (500 = 5%).
    commission_bp: BasisPoints = 500
    # Per-shop rates, overriding commission_bp.
    commission_bp_by_shop: dict[str, BasisPoints] = msgspec.field(default_factory=dict)
    # Who earns the freight: the shop (in its payable) or the platform (shipping_income).
    freight_to: Literal["shop", "platform"] = "shop"
    # Hold refunds for finance review (财务审核). Cancellations never wait.
    review_refunds: bool = True
    # Review only refunds from these sources (e.g. ["refund"]); empty: every reviewable refund.
    review_sources: list[str] = msgspec.field(default_factory=list)
    # Refunds below this amount (minor units) go straight through.
    review_from_amount: Annotated[int, Meta(ge=0)] = 0
    # Refunds above this amount need two different finance approvals.
    second_approval_above: Annotated[int, Meta(ge=0)] = 100_000
    # A settlement period must have ended this long ago (late commits land first).
    settlement_grace_seconds: Annotated[int, Meta(ge=0)] = 300
    # The account payouts to shops are paid from.
    payout_account: str = accounts.BANK

    def __post_init__(self) -> None:
        # Refunds between the two amounts would skip review altogether, even those big enough
        # to need two approvals. msgspec turns the ValueError into a ConfigError at start-up.
        if self.review_from_amount > self.second_approval_above:
            raise ValueError(
                f"review_from_amount ({self.review_from_amount}) is above second_approval_above "
                f"({self.second_approval_above}): refunds between them would skip finance review; "
                "lower review_from_amount or raise second_approval_above"
            )


class FinanceCenter(PointsBookings, Center):
    name = "finance"
    requires = ("payment",)
    after = ("catalog",)
    description = "财务管理 finance: journal, refund review, reconciliation, settlement"
    tables = t.metadata
    Settings = FinanceSettings

    def __init__(self) -> None:
        super().__init__()
        # The clock entries, reviews and settlements are stamped with; tests replace it.
        self.clock: Callable[[], datetime] = utcnow
        self.journal = Journal(self)
        self.reviews = Reviews(self)
        self.reconciler = Reconciler(self)
        self.settlements = Settlements(self)
        self.platform_discounts = PlatformDiscounts(self)

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        if accounts.kind_of(settings.payout_account) != "asset":
            from mallcore.kernel import ConfigError

            raise ConfigError(
                f"config key 'centers.finance.payout_account': '{settings.payout_account}' is not an asset "
                f"account of the chart (e.g. 'bank')"
            )

    def now(self) -> datetime:
        return self.clock()

    def commission_rate(self, shop: str) -> int:
        return self.settings.commission_bp_by_shop.get(shop, self.settings.commission_bp)

    # -- hooks -----------------------------------------------------------------------------

    @hookimpl(trylast=True)
    def order_pay(self, ctx: OrderContext, payment: Payment) -> None:
        if payment.status == "captured":
            self.journal.post_payment(ctx, payment)

    @hookimpl
    def order_payment_returned(self, ctx: OrderContext, payment: Payment, refund_reference: str) -> None:
        self.journal.post_payment_returned(ctx, payment, refund_reference)

    @hookimpl
    def order_deliver(self, ctx: OrderContext) -> None:
        self.journal.post_sale(ctx)
        self.platform_discounts.post_sale(ctx)

    @hookimpl
    def order_refund(self, ctx: OrderContext, refund: Refund) -> None:
        if refund.status == "requested":
            self.reviews.open(ctx, refund)
        elif refund.status == "refunded":
            self.journal.post_refund(ctx, refund)
            self.platform_discounts.post_refund(ctx, refund)
            self.reviews.settle(ctx, refund)
        elif refund.status == "rejected":
            self.reviews.settle(ctx, refund)

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages(self)

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return [router(self)]

    @hookimpl
    def center_commands(self) -> list[click.Command]:
        from .cli import commands

        return commands()

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        s = self.settings
        rate = self.commission_rate(demo.shop)
        demo.notes.append(
            f"finance: commission {rate / 100:g}% for shop {demo.shop}; refunds wait for finance review, "
            f"above {format_amount(s.second_approval_above, kernel.config.orders.currency)} two approvals (finance@demo, finance-lead@demo)"
        )
