"""A coupon's and a usage's life after placement, in the order's own stages.

::

    coupon:  available ──(order placed)──► locked ──(paid)──► used
                 ▲                            │                 │
                 └──(cancelled / closed unpaid)┘                 │
                 └────────(fully refunded, still valid, policy on)┘
             available ──(valid_to passed)──► expired

    usage:   (flash units: held at placement) ──(paid)──► used ──(fully refunded)──► refunded
             (other campaigns and coupons: written used at payment)  └──(cancelled)──► released

A returned coupon goes back to ``available`` (or ``expired`` if its
validity ended meanwhile) and can be used again. A partial refund never
returns a coupon: the order still used it. Flash-sale units come back to
the sale only when the order is cancelled (or closed unpaid); a refunded
order's units stay sold.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import OrderContext, Refund, utcnow
from mallcore.kernel import tables as kt

from . import tables as t
from .model import Cut
from .placement import SOURCE, codes_of, usage_row

if TYPE_CHECKING:
    from . import PromotionCenter


class Lifecycle:
    def __init__(self, center: PromotionCenter) -> None:
        self.center = center
        u, c = t.usages.c, t.coupons.c
        self._use = (
            t.usages.update()
            .where(u.order_id == sa.bindparam("k_order"), u.status == "held")
            .values(status="used", updated_at=sa.bindparam("now"))
            .returning(u.code)
        )
        # Coupons are found by the codes the order names (unique index) and checked to be
        # this order's: no index on order_id to maintain on every lock.
        self._use_coupons = (
            t.coupons.update()
            .where(
                c.code.in_(sa.bindparam("codes", expanding=True)),
                c.order_id == sa.bindparam("k_order"),
                c.status == "locked",
            )
            .values(status="used", used_at=sa.bindparam("now"), updated_at=sa.bindparam("now"))
            .returning(c.id, c.code, c.template_id)
        )
        self._release = (
            t.usages.update()
            .where(u.order_id == sa.bindparam("k_order"), u.status.in_(("held", "used")))
            .values(status="released", updated_at=sa.bindparam("now"))
            .returning(u.campaign_id, u.units)
        )
        self._refunded = (
            t.usages.update()
            .where(u.order_id == sa.bindparam("k_order"), u.status == "used")
            .values(status="refunded", updated_at=sa.bindparam("now"))
        )

    def _return_coupons(self, ctx: OrderContext, statuses: tuple[str, ...], why_en: str, why_zh: str) -> None:
        c = t.coupons.c
        now = utcnow()
        returned = ctx.conn.execute(
            t.coupons.update()
            .where(c.code.in_(codes_of(ctx.order)), c.order_id == ctx.order.id, c.status.in_(statuses))
            .values(
                status=sa.case(
                    (sa.and_(c.valid_to.is_not(None), c.valid_to <= now), "expired"), else_="available"
                ),
                order_id=None,
                used_at=None,
                updated_at=now,
            )
            .returning(c.code, c.status)
        ).all()
        for code, status in returned:
            if status == "available":
                en, zh = (
                    f"Coupon {code} returned to your wallet ({why_en})",
                    f"优惠券 {code} 已退回({why_zh})",
                )
            else:
                en, zh = f"Coupon {code} has expired and was not returned", f"优惠券 {code} 已过期,未退回"
            ctx.timeline("promotion.coupon_returned", en, zh=zh, data={"coupon": code, "status": status})
            ctx.emit(
                "promotion.coupon_returned",
                {"customer": ctx.order.customer, "coupon": code, "status": status},
            )

    # -- stages ----------------------------------------------------------------------------

    def paid(self, ctx: OrderContext) -> None:
        """Coupons become used; each campaign and coupon the order used gets its usage row."""
        fired = ctx.order.extra.get("promotions")
        if not fired:
            return
        order, conn, now = ctx.order, ctx.conn, utcnow()
        params = {"k_order": order.id, "now": now}
        coupons = {}
        if order.coupons:
            used = conn.execute(self._use_coupons, {**params, "codes": codes_of(order)})
            coupons = {f"coupon:{code}": (cid, tid) for cid, code, tid in used}
        recorded = set(conn.execute(self._use, params).scalars())  # flash units, held since placement
        assert order.id is not None
        taken: dict[str, list[Any]] = defaultdict(list)
        for adj in self.center.kernel.orders.load_adjustments(conn, order.id):
            if adj.source == SOURCE and adj.code:
                taken[adj.code].append(adj)
        rows = []
        for code in fired:
            if code in recorded:
                continue
            coupon_id, template_id = coupons.get(code, (None, None))
            campaign_id = int(code.split(":", 1)[1]) if code.startswith("campaign:") else None
            cut = Cut(
                code=code, reason="", amount=0, phase=0, funded_by="", parts=[],
                campaign_id=campaign_id, template_id=template_id, coupon_id=coupon_id,
            )  # fmt: skip
            rows.append(usage_row(order, cut, taken.get(code, []), "used", now))
        if rows:
            self.center.placement.insert_usages(conn, rows)

    def cancelled(self, ctx: OrderContext) -> None:
        if not ctx.order.extra.get("promotions"):
            return
        units: dict[int, int] = defaultdict(int)
        for campaign_id, n in ctx.conn.execute(self._release, {"k_order": ctx.order.id, "now": utcnow()}):
            if campaign_id is not None and n:
                units[campaign_id] += n
        if units:
            self.center.placement.flash.give_back(ctx.conn, ctx.order.customer, units)
        if ctx.order.coupons:
            self._return_coupons(ctx, ("locked", "used"), "order cancelled", "订单已取消")

    def refunded(self, ctx: OrderContext, refund: Refund) -> None:
        if refund.status != "refunded" or not ctx.order.extra.get("promotions"):
            return
        if ctx.order.status == "cancelled" or not self._fully_refunded(ctx):
            return
        ctx.conn.execute(self._refunded, {"k_order": ctx.order.id, "now": utcnow()})
        if ctx.order.coupons and self.center.settings.return_coupons_on_full_refund:
            self._return_coupons(ctx, ("used",), "order fully refunded", "订单已全额退款")

    def _fully_refunded(self, ctx: OrderContext) -> bool:
        rl, r = kt.refund_lines.c, kt.refunds.c
        done = dict(
            ctx.conn.execute(
                sa.select(rl.line_id, sa.func.sum(rl.quantity))
                .join(kt.refunds, r.id == rl.refund_id)
                .where(r.order_id == ctx.order.id, r.status == "refunded")
                .group_by(rl.line_id)
            ).all()
        )
        return all(done.get(line.id, 0) >= line.quantity for line in ctx.lines)
