"""Pricing and holding at placement: what the promotion center does on every order.

- ``order_price``: the shop's and the platform's live campaigns come from the
  per-process cache (:mod:`.cache`); the coupons the order names are read
  in one query (only when it names any); flash-sale units are taken
  (:mod:`.flash`); :class:`~.engine.Pricer` decides every discount, which
  becomes an adjustment (``source="promotion"``, ``code`` the campaign or
  coupon, ``funded_by`` its owner), and every hint ("add 12.00 more for
  满200减30") goes to a preview.
- ``order_reserve``: one INSERT of the order's usage rows (statistics, and
  the flash units held) and one conditional UPDATE locking its coupons
  (``available`` -> ``locked`` by this order): of two orders racing for one
  coupon exactly one gets it, the other is refused (422 ``coupon_used``).

A replacement order of an exchange (``parent_id`` set) gets no promotion.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Adjustment, OrderContext, Phase, Rejected, utcnow

from . import tables as t
from .engine import CouponRefused, Pricer, flash_wanted
from .flash import FlashUnits
from .model import Coupon, Cut, Item

if TYPE_CHECKING:
    from . import PromotionCenter

SOURCE = "promotion"
_PLAN = object()  # stash key: the Plan of this placement

# The catalog's products and categories, read for category scopes only. Only
# these columns of the catalog's tables are relied on.
_products = sa.table("catalog_products", sa.column("id"), sa.column("category_id"))
_categories = sa.table("catalog_categories", sa.column("id"), sa.column("parent_id"))

USAGE_KEYS = (
    "order_id", "shop", "customer", "campaign_id", "template_id", "coupon_id", "code", "discount", "units",
    "gmv", "currency", "status", "created_at", "updated_at",
)  # fmt: skip


class Plan(msgspec.Struct, kw_only=True):
    """What pricing decided, for ``order_reserve`` to hold."""

    cuts: list[tuple[Cut, list[Adjustment]]]
    coupons: list[Coupon]


class Placement:
    def __init__(self, center: PromotionCenter) -> None:
        self.center = center
        db = center.kernel.db
        self.flash = FlashUnits(db)
        c, tp = t.coupons.c, t.templates.c
        columns = (
            c.id, c.code, c.template_id, c.shop, c.customer, c.status, c.valid_from, c.valid_to, c.order_id,
            tp.name, tp.kind, tp.value, tp.cap, tp.min_spend, tp.currency, tp.skus, tp.categories,
        )  # fmt: skip
        self._coupons = (
            sa.select(*columns)
            .join(t.templates, tp.id == c.template_id)
            .where(c.code.in_(sa.bindparam("codes", expanding=True)))
        )
        self._lock = (
            t.coupons.update()
            .where(
                c.id.in_(sa.bindparam("ids", expanding=True)),
                c.status == "available",
                c.customer == sa.bindparam("who"),
            )
            .values(status="locked", order_id=sa.bindparam("k_order"), updated_at=sa.bindparam("now"))
        )
        self._insert_usages = t.usages.insert()
        up = (
            sa.select(_products.c.id.label("product_id"), _products.c.category_id.label("category_id"))
            .where(
                _products.c.id.in_(sa.bindparam("products", expanding=True)),
                _products.c.category_id.is_not(None),
            )
            .cte("up", recursive=True)
        )
        up = up.union(
            sa.select(up.c.product_id, _categories.c.parent_id)
            .join(_categories, _categories.c.id == up.c.category_id)
            .where(_categories.c.parent_id.is_not(None))
        )
        self._ancestry = sa.select(up.c.product_id, up.c.category_id)

    # -- order_price ---------------------------------------------------------------------

    def price(self, ctx: OrderContext) -> None:
        order = ctx.order
        if order.parent_id is not None:
            return
        now = utcnow()
        offers = [
            o
            for o in self.center.offers.offers(ctx.conn, order.shop)
            if o.currency == order.currency and o.live(now)
        ]
        codes = list(dict.fromkeys(code.strip() for code in order.coupons if code.strip()))
        coupons = self.load_coupons(ctx, codes, now) if codes else []
        if not offers and not coupons:
            return
        items = [
            Item(line_no=line.line_no, sku=line.sku, quantity=line.quantity, unit_price=line.unit_price or 0)
            for line in ctx.lines
        ]
        if any(o.categories for o in offers) or any(c.categories for c in coupons):
            self.add_categories(ctx, items)
        by_id = {o.id: o for o in offers}
        wanted = flash_wanted(items, [o for o in offers if o.type == "flash_sale"])
        write = ctx.stage != "preview"
        granted = self.flash.grant(ctx.conn, order.customer, by_id, wanted, write=write) if wanted else {}
        freight = sum(a.amount for a in ctx.adjustments if a.phase == Phase.FREIGHT and a.amount > 0)
        others = [
            (a.line_no, -a.amount)
            for a in ctx.adjustments
            if a.source != SOURCE and Phase.PROMOTION <= a.phase < Phase.COUPON and a.amount < 0
        ]
        try:
            outcome = Pricer(items, order.currency).run(offers, coupons, freight, granted, others)
        except CouponRefused as refused:
            raise Rejected(
                refused.detail, code=refused.code, extra={"coupon": refused.coupon.code, **refused.extra}
            ) from None
        if write:
            unused = {
                cid: sum(given.values()) - outcome.flash.get(cid, 0)
                for cid, given in granted.items()
                if sum(given.values()) > outcome.flash.get(cid, 0)
            }
            if unused:
                self.flash.give_back(ctx.conn, order.customer, unused)
        lines = {line.line_no: line for line in ctx.lines}
        cuts: list[tuple[Cut, list[Adjustment]]] = []
        for cut in outcome.cuts:
            made = [
                ctx.adjust(
                    SOURCE,
                    cut.reason,
                    -amount,
                    phase=cut.phase,
                    line=None if line_no is None else lines[line_no],
                    code=cut.code,
                    funded_by=cut.funded_by,
                )
                for line_no, amount in cut.parts
            ]
            cuts.append((cut, made))
        for hint in outcome.hints:
            ctx.hint(SOURCE, hint.en, zh=hint.zh, code=hint.code, data=hint.data)
        if write:
            ctx.stash[_PLAN] = Plan(cuts=cuts, coupons=coupons)

    def load_coupons(self, ctx: OrderContext, codes: Sequence[str], now: datetime) -> list[Coupon]:
        order = ctx.order
        found = {r.code: r for r in ctx.conn.execute(self._coupons, {"codes": list(codes)})}
        out = []
        for code in codes:
            row = found.get(code)
            # Another customer's coupon answers exactly like one that does not exist.
            if row is None or row.customer != order.customer:
                raise Rejected(
                    f"no coupon {code} in your wallet", code="coupon_not_found", extra={"coupon": code}
                )
            if row.status in ("used", "locked"):
                detail = "used" if row.status == "used" else "held by another order awaiting payment"
                raise Rejected(
                    f"coupon {code} is {detail}",
                    code="coupon_used",
                    extra={"coupon": code, "status": row.status, "order_id": row.order_id},
                )
            if row.status == "expired" or (row.valid_to is not None and row.valid_to <= now):
                raise Rejected(f"coupon {code} has expired", code="coupon_expired", extra={"coupon": code})
            if row.valid_from is not None and row.valid_from > now:
                raise Rejected(
                    f"coupon {code} is valid from {row.valid_from.isoformat()}",
                    code="coupon_not_applicable",
                    extra={"coupon": code, "valid_from": row.valid_from.isoformat()},
                )
            if (row.shop is not None and row.shop != order.shop) or row.currency != order.currency:
                raise Rejected(
                    f"coupon {code} is not for shop {order.shop}"
                    if row.shop != order.shop
                    else f"coupon {code} is in {row.currency}, the order in {order.currency}",
                    code="coupon_not_applicable",
                    extra={"coupon": code},
                )
            out.append(
                Coupon(
                    id=row.id,
                    code=row.code,
                    template_id=row.template_id,
                    name=row.name,
                    shop=row.shop,
                    customer=row.customer,
                    status=row.status,
                    kind=row.kind,
                    value=row.value,
                    cap=row.cap,
                    min_spend=row.min_spend,
                    currency=row.currency,
                    valid_from=row.valid_from,
                    valid_to=row.valid_to,
                    skus=frozenset(row.skus or ()),
                    categories=frozenset(int(x) for x in row.categories or ()),
                )
            )
        return out

    def add_categories(self, ctx: OrderContext, items: list[Item]) -> None:
        """Each line's product category and the categories above it (one query)."""
        products = {line.line_no: line.attrs.get("product_id") for line in ctx.lines}
        ids = sorted({p for p in products.values() if isinstance(p, int)})
        if not ids:
            return
        seen: dict[int, set[int]] = {}
        for row in ctx.conn.execute(self._ancestry, {"products": ids}):
            seen.setdefault(row.product_id, set()).add(int(row.category_id))
        for item in items:
            product = products.get(item.line_no)
            if isinstance(product, int) and product in seen:
                item.categories = frozenset(seen[product])

    # -- order_reserve -------------------------------------------------------------------

    def reserve(self, ctx: OrderContext) -> None:
        plan: Plan | None = ctx.stash.get(_PLAN)
        if plan is None:
            return
        order = ctx.order
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for cut, made in plan.cuts:
            discount = -sum(adj.amount for adj in made)
            if not (discount or cut.units or cut.coupon_id):
                continue  # clamped away by a discount before it
            rows.append(
                {
                    "order_id": order.id,
                    "shop": order.shop,
                    "customer": order.customer,
                    "campaign_id": cut.campaign_id,
                    "template_id": cut.template_id,
                    "coupon_id": cut.coupon_id,
                    "code": cut.code,
                    # what the kernel actually took off, after its own clamping
                    "discount": discount,
                    "units": cut.units,
                    "gmv": order.total,
                    "currency": order.currency,
                    "status": "held",
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if rows:
            ctx.conn.execute(self._insert_usages, rows)
        if plan.coupons:
            ids = [c.id for c in plan.coupons]
            locked = ctx.conn.execute(
                self._lock, {"ids": ids, "who": order.customer, "k_order": order.id, "now": now}
            ).rowcount
            if locked != len(ids):
                codes = ", ".join(c.code for c in plan.coupons)
                raise Rejected(
                    f"coupon {codes} was just taken by another order",
                    code="coupon_used",
                    extra={"coupons": [c.code for c in plan.coupons]},
                )
