"""Discounts the platform pays for: the shop is not charged for them.

The promotion center marks every discount it gives with ``funded_by``
(``"shop"`` or ``"platform"``) on the order's adjustments (``source =
"promotion"``). The customer paid the order's total, after every discount;
at the sale finance passes that to the shop. A shop-funded discount is the
shop's own price cut: nothing more to book. A platform-funded one (a
platform coupon, a 跨店满减) is made up to the shop by the platform, from
``coupon_liability`` (whose debit balance is what the platform has spent
on promotions), read from the order's own adjustments, in the same
transaction as the sale or the refund:

========================  ================================================================
event                     postings (``P`` the platform-funded share, ``S`` the shop)
========================  ================================================================
sale (delivered)          Dr coupon_liability P · Cr shop_payable:S P   (role ``sale``)
refund after the sale     Dr shop_payable:S p · Cr coupon_liability p   (role ``refund``)
========================  ================================================================

``P`` is each platform-funded adjustment's allocation to the goods of each
line, less the share of units already refunded before the sale
(:func:`~mallcore.kernel.share`, cumulatively, like refunds themselves);
``p`` is the share of the units a later refund takes back, so a partial
refund returns exactly its units' part of the subsidy and a full one all of
it. A platform-paid freight waiver is made up at the sale (the parcel went
out) when the shop earns the freight (``freight_to = "shop"``) and never
taken back. Each order's subsidy is posted once, each refund's give-back
once.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import sqlalchemy as sa

from mallcore.kernel import OrderContext, Phase, Refund, share
from mallcore.kernel import tables as kt

from . import accounts as acc
from . import tables as t
from .journal import Line

if TYPE_CHECKING:
    from . import FinanceCenter

SUBSIDY = "platform_discount"
GIVE_BACK = "platform_discount_refund"


class PlatformDiscounts:
    def __init__(self, center: FinanceCenter) -> None:
        self.center = center

    def _funded(self, ctx: OrderContext) -> tuple[dict[int, int], dict[int, int]]:
        """Per line id: the platform-funded goods discount, and freight waived (positive)."""
        goods: dict[int, int] = defaultdict(int)
        freight: dict[int, int] = defaultdict(int)
        assert ctx.order.id is not None
        for adj in self.center.kernel.orders.load_adjustments(ctx.conn, ctx.order.id):
            if adj.source != "promotion" or adj.funded_by != "platform" or adj.amount >= 0:
                continue
            into = freight if adj.phase == Phase.SHIPPING_DISCOUNT else goods
            for line_id, amount in (adj.allocation or {}).items():
                into[int(line_id)] -= amount
        return goods, freight

    def _refunded_units(self, ctx: OrderContext, *, but: int | None = None) -> dict[int, int]:
        rl, r = kt.refund_lines.c, kt.refunds.c
        stmt = (
            sa.select(rl.line_id, sa.func.sum(rl.quantity))
            .join(kt.refunds, r.id == rl.refund_id)
            .where(r.order_id == ctx.order.id, r.status == "refunded")
            .group_by(rl.line_id)
        )
        if but is not None:
            stmt = stmt.where(r.id != but)
        return {int(line_id): int(n) for line_id, n in ctx.conn.execute(stmt)}

    def _posted(self, ctx: OrderContext, kind: str, refund_id: int | None = None) -> bool:
        e = t.entries.c
        stmt = sa.select(e.id).where(e.order_id == ctx.order.id, e.kind == kind)
        if refund_id is not None:
            stmt = stmt.where(e.refund_id == refund_id)
        return ctx.conn.execute(stmt.limit(1)).first() is not None

    def post_sale(self, ctx: OrderContext) -> int | None:
        """Make the platform's discounts up to the shop when the sale is recognised."""
        goods, freight = self._funded(ctx)
        if not goods and not freight:
            return None
        if self._posted(ctx, SUBSIDY):
            return None
        done = self._refunded_units(ctx)
        quantities = {line.id: line.quantity for line in ctx.lines}
        by_line = {
            line_id: amount - share(amount, quantities[line_id], done.get(line_id, 0))
            for line_id, amount in goods.items()
            if line_id in quantities
        }
        goods_total = sum(by_line.values())
        freight_total = 0
        if self.center.settings.freight_to == "shop":
            freight_total = sum(
                amount
                for line_id, amount in freight.items()
                if done.get(line_id, 0) < quantities.get(line_id, 0)
            )
        amount = goods_total + freight_total
        if amount <= 0:
            return None
        order = ctx.order
        payable = acc.shop_payable(order.shop)
        return self.center.journal.post(
            ctx.conn,
            kind=SUBSIDY,
            currency=order.currency,
            amount=amount,
            shop=order.shop,
            order_id=order.id,
            posted_by=ctx.principal.subject,
            memo="platform-funded discounts made up to the shop at the sale",
            data={"goods": {str(k): v for k, v in by_line.items()}, "freight": freight_total},
            lines=[
                Line(account=acc.COUPON_LIABILITY, amount=amount, role="sale"),
                Line(account=payable, amount=-goods_total, role="sale"),
                Line(account=payable, amount=-freight_total, role="freight"),
            ],
        )

    def post_refund(self, ctx: OrderContext, refund: Refund) -> int | None:
        """Take back the refunded units' share of what the platform made up."""
        if not self._posted(ctx, SUBSIDY) or self._posted(ctx, GIVE_BACK, refund.id):
            return None
        goods, _ = self._funded(ctx)
        before = self._refunded_units(ctx, but=refund.id)
        quantities = {line.id: line.quantity for line in ctx.lines}
        amount = 0
        for item in refund.lines:
            funded = goods.get(item.line_id, 0)
            if not funded or not item.quantity:
                continue
            q, d = quantities[item.line_id], before.get(item.line_id, 0)
            amount += share(funded, q, d + item.quantity) - share(funded, q, d)
        if amount <= 0:
            return None
        order = ctx.order
        return self.center.journal.post(
            ctx.conn,
            kind=GIVE_BACK,
            currency=order.currency,
            amount=amount,
            shop=order.shop,
            order_id=order.id,
            refund_id=refund.id,
            posted_by=ctx.principal.subject,
            memo=f"refund {refund.id}: the refunded units' share of platform-funded discounts",
            lines=[
                Line(account=acc.shop_payable(order.shop), amount=amount, role="refund"),
                Line(account=acc.COUPON_LIABILITY, amount=-amount, role="refund"),
            ],
        )
