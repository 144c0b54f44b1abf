"""促销中心 / 营销中心 promotion: campaigns, coupons and flash sales that explain every yuan.

Hooks:

- ``order_price`` (after catalog and TMS, so it sees list prices and the
  freight): live campaigns of the shop and the platform (cached per
  process), the coupons the order names and flash-sale units decide the
  discounts (see :mod:`.engine` for the stacking rule); each is an
  adjustment whose reason names the campaign or coupon and the rule that
  fired, ``code`` ``campaign:<id>`` or ``coupon:<code>``, ``funded_by``
  ``shop`` or ``platform``. Previews also get hints of what is still to be
  had ("add 12.00 more for 满200减30" / "再买 12.00 元可享满200减30").
- ``order_reserve``: locks the order's coupons, records what it used.
- ``order_pay`` (captured): coupons used, usages counted.
- ``order_cancel``: coupons back to the wallet, flash units back to the sale.
- ``order_refund`` (``refunded``, the order now fully refunded): coupons back
  when ``return_coupons_on_full_refund`` and still valid; never on a partial refund.
- ``coupon_grant``: other centers (membership) give coupons in their own transaction.

Routes under ``/promotion`` (see :mod:`.routes` and docs/centers/promotion.md).
A coupon past its validity is expired wherever it is read (no job rewrites rows).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Center, Kernel, OrderContext, Payment, Refund, hookimpl
from mallcore.kernel.http import center_router

from . import console
from . import tables as t
from .cache import OfferCache
from .campaigns import Campaigns
from .coupons import Coupons
from .lifecycle import Lifecycle
from .placement import Placement
from .templates import Templates


class PromotionSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # A coupon of a fully refunded order goes back to the wallet while still valid.
    # A partial refund never returns one.
    return_coupons_on_full_refund: bool = True
    # Other workers' campaign changes are noticed within this many seconds
    # (0: check the version rows on every order, one indexed read).
    campaign_recheck_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    # Most codes one batch may issue.
    max_batch_codes: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10_000


class PromotionCenter(Center):
    name = "promotion"
    requires = ("catalog",)
    after = ("tms",)
    description = "促销中心 promotion: campaigns, coupons, flash sales"
    tables = t.metadata
    Settings = PromotionSettings

    settings: PromotionSettings
    offers: OfferCache

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        self.offers = OfferCache(settings.campaign_recheck_seconds)
        self.campaigns = Campaigns(self)
        self.coupon_templates = Templates(self)
        self.coupons = Coupons(self)
        self.placement = Placement(self)
        self.lifecycle = Lifecycle(self)

    def changed(self, shop: str | None) -> None:
        """After a commit that changed ``shop``'s (None: the platform's) campaigns or templates."""
        self.offers.invalidate([shop or t.PLATFORM])

    # -- the order's stages ---------------------------------------------------------------

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        self.placement.price(ctx)

    @hookimpl
    def order_reserve(self, ctx: OrderContext) -> None:
        self.placement.reserve(ctx)

    @hookimpl(trylast=True)
    def order_pay(self, ctx: OrderContext, payment: Payment) -> None:
        if payment.status == "captured":
            self.lifecycle.paid(ctx)

    @hookimpl
    def order_cancel(self, ctx: OrderContext, reason: str) -> None:
        self.lifecycle.cancelled(ctx)

    @hookimpl
    def order_refund(self, ctx: OrderContext, refund: Refund) -> None:
        self.lifecycle.refunded(ctx, refund)

    @hookimpl
    def coupon_grant(
        self, kernel: Kernel, conn: sa.Connection, customer: str, template: int, reason: str, source: str
    ) -> str | None:
        return self.coupons.grant(conn, customer, template, reason, source)

    # -- what the center brings -----------------------------------------------------------

    @hookimpl
    def console_pages(self, kernel: Kernel) -> list[Any]:
        return console.pages()

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        from .routes import CONTROLLERS

        return [center_router(self, CONTROLLERS)]

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        from .demo import seed

        seed(self, demo)


__all__ = ["PromotionCenter", "PromotionSettings"]
