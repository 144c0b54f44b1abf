"""Pricing and holding at placement: what the promotion center does on every order.

- ``order_price``: the shop's and the platform's campaigns and coupon
  templates come from the per-process cache (:mod:`.cache`); the coupons
  the order names are read in one query (only when it names any);
  flash-sale units are taken (:mod:`.flash`); :class:`~.engine.Pricer`
  decides every discount, which becomes an adjustment (``source =
  "promotion"``, ``code`` the campaign or coupon, ``funded_by`` its owner),
  and every hint ("add 12.00 more for 满200减30") goes to a preview. The
  codes that fired are kept on the order (``extra["promotions"]``) so that
  later stages know, without a query, whether there is anything to do.
- ``order_reserve``: one conditional UPDATE locks the order's coupons
  (``available`` -> ``locked`` by this order): of two orders racing for one
  coupon exactly one gets it, the other is refused (422 ``coupon_used``);
  one INSERT records the flash-sale units the order holds.

So an order with campaigns and a coupon costs two statements more than
one without: the coupon read and its lock (the kernel keeps the order's
adjustments on the order's row: no statement of their own). Statistics rows for the other campaigns and coupons are
written when the order is paid (:mod:`.lifecycle`). The hot statements go
to the driver precompiled (``mallcore.kernel.fast``).

A replacement order of an exchange (``parent_id`` set) gets no promotion.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Adjustment, OrderContext, Phase, Rejected, fast, utcnow

from . import tables as t
from .cache import Book
from .engine import CouponRefused, Pricer, flash_wanted
from .flash import FlashUnits
from .model import Coupon, Cut, Item, Offer, Terms

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
# Positions in a coupon row as read at placement.
_ID, _CODE, _TEMPLATE, _SHOP, _CUSTOMER, _STATUS, _FROM, _TO, _ORDER = range(9)


class Plan(msgspec.Struct, kw_only=True):
    """What pricing decided, for ``order_reserve`` to hold."""

    cuts: list[tuple[Cut, list[Adjustment]]]
    coupons: list[Coupon]


class Placement:
    def __init__(self, center: PromotionCenter) -> None:
        self.center = center
        db = center.kernel.db
        self.db = db
        self.flash = FlashUnits(db)
        c = t.coupons.c
        columns = (
            c.id,
            c.code,
            c.template_id,
            c.shop,
            c.customer,
            c.status,
            c.valid_from,
            c.valid_to,
            c.order_id,
        )
        self._find = fast.InSelect(lambda codes: sa.select(*columns).where(c.code.in_(codes)), db)
        dialect = db.engine.dialect
        self._time = c.valid_to.type.dialect_impl(dialect).result_processor(dialect, None)
        self._iso = db.is_sqlite  # SQLite gives back 'YYYY-MM-DD HH:MM:SS[.ffffff]', in UTC
        self._locks: dict[int, fast.Prepared] = {}
        self._insert_usages = fast.insert(t.usages, USAGE_KEYS, db)
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

    def _lock(self, n: int) -> fast.Prepared:
        """``UPDATE ... SET status = 'locked' WHERE id IN (n ids) AND status = 'available'``."""
        prepared = self._locks.get(n)
        if prepared is None:
            c = t.coupons.c
            stmt = (
                t.coupons.update()
                .where(
                    c.id.in_([sa.bindparam(f"v__{i}") for i in range(n)]),
                    c.status == sa.bindparam("k_from"),
                    c.customer == sa.bindparam("who"),
                )
                .values(
                    status=sa.bindparam("k_to"),
                    order_id=sa.bindparam("k_order"),
                    updated_at=sa.bindparam("now"),
                )
            )
            prepared = self._locks[n] = fast.statement(stmt, self.db, {"now": c.updated_at.type})
        return prepared

    # -- order_price ---------------------------------------------------------------------

    def price(self, ctx: OrderContext) -> None:
        order = ctx.order
        if order.parent_id is not None:
            return
        # Windows are judged at the moment the order was placed (a few microseconds ago).
        now = order.placed_at or utcnow()
        mine, platform = self.center.offers.books(ctx.conn, order.shop)
        currency = order.currency
        offers: list[Offer] = []
        flash: list[Offer] = []
        categories = False
        for offers_of in (mine.offers, platform.offers):
            for o in offers_of:
                if o.currency == currency and o.starts_at <= now < o.ends_at:
                    offers.append(o)
                    if o.categories:
                        categories = True
                    if o.type == "flash_sale":
                        flash.append(o)
        codes = codes_of(order)
        coupons = self.load_coupons(ctx, codes, now, (mine, platform)) if codes else []
        if not offers and not coupons:
            return
        items = [
            Item(line_no=line.line_no, sku=line.sku, quantity=line.quantity, unit_price=line.unit_price or 0)
            for line in ctx.lines
        ]
        if categories or any(c.categories for c in coupons):
            self.add_categories(ctx, items)
        wanted = flash_wanted(items, flash) if flash else None
        write = ctx.stage != "preview"
        granted = (
            self.flash.grant(ctx.conn, order.customer, {o.id: o for o in offers}, wanted, write=write)
            if wanted
            else {}
        )
        freight = 0
        others: list[tuple[int | None, int]] = []
        for a in ctx.adjustments:  # other centers' so far (freight, member prices)
            if a.phase == Phase.FREIGHT and a.amount > 0:
                freight += a.amount
            elif a.source != SOURCE and Phase.PROMOTION <= a.phase < Phase.COUPON and a.amount < 0:
                others.append((a.line_no, -a.amount))
        try:
            outcome = Pricer(items, currency, hints=not write).run(offers, coupons, freight, granted, others)
        except CouponRefused as refused:
            extra = {"coupon": refused.coupon.code, **refused.extra}
            raise Rejected(refused.detail, code=refused.code, extra=extra) from None
        if write and granted:
            unused = {
                cid: sum(given.values()) - outcome.flash.get(cid, 0)
                for cid, given in granted.items()
                if sum(given.values()) > outcome.flash.get(cid, 0)
            }
            if unused:
                self.flash.give_back(ctx.conn, order.customer, unused)
        lines = {line.line_no: line for line in ctx.lines}
        cuts: list[tuple[Cut, list[Adjustment]]] = []
        adjust = ctx.adjust
        for cut in outcome.cuts:
            made = [
                adjust(
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
        if write and cuts:
            order.extra["promotions"] = [cut.code for cut, _ in cuts]
            ctx.stash[_PLAN] = Plan(cuts=cuts, coupons=coupons)

    def load_coupons(
        self, ctx: OrderContext, codes: Sequence[str], now: datetime, books: tuple[Book, Book]
    ) -> list[Coupon]:
        order = ctx.order
        found = {row[_CODE]: row for row in self._find.execute(ctx.conn, codes).rows}
        out = []
        for code in codes:
            row = found.get(code)
            # Another customer's coupon answers exactly like one that does not exist.
            if row is None or row[_CUSTOMER] != order.customer:
                raise Rejected(
                    f"no coupon {code} in your wallet", code="coupon_not_found", extra={"coupon": code}
                )
            valid_from, valid_to = self._times(row[_FROM]), self._times(row[_TO])
            if row[_STATUS] in ("used", "locked"):
                detail = "used" if row[_STATUS] == "used" else "held by another order awaiting payment"
                raise Rejected(
                    f"coupon {code} is {detail}",
                    code="coupon_used",
                    extra={"coupon": code, "status": row[_STATUS], "order_id": row[_ORDER]},
                )
            if row[_STATUS] == "expired" or (valid_to is not None and valid_to <= now):
                raise Rejected(f"coupon {code} has expired", code="coupon_expired", extra={"coupon": code})
            terms = self.terms(ctx.conn, row[_SHOP], row[_TEMPLATE], books)
            if terms is None:
                raise Rejected(
                    f"no coupon {code} in your wallet", code="coupon_not_found", extra={"coupon": code}
                )
            if valid_from is not None and valid_from > now:
                raise Rejected(
                    f"coupon {code} is valid from {valid_from.isoformat()}",
                    code="coupon_not_applicable",
                    extra={"coupon": code, "valid_from": valid_from.isoformat()},
                )
            if terms.shop is not None and terms.shop != order.shop:
                raise Rejected(
                    f"coupon {code} is not for shop {order.shop}",
                    code="coupon_not_applicable",
                    extra={"coupon": code},
                )
            if terms.currency != order.currency:
                raise Rejected(
                    f"coupon {code} is in {terms.currency}, the order in {order.currency}",
                    code="coupon_not_applicable",
                    extra={"coupon": code},
                )
            out.append(
                Coupon(
                    id=row[_ID],
                    code=code,
                    template_id=terms.id,
                    name=terms.name,
                    shop=terms.shop,
                    customer=row[_CUSTOMER],
                    status=row[_STATUS],
                    kind=terms.kind,
                    value=terms.value,
                    cap=terms.cap,
                    min_spend=terms.min_spend,
                    currency=terms.currency,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    skus=terms.skus,
                    categories=terms.categories,
                )
            )
        return out

    def _times(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if self._iso and isinstance(value, str):
            return datetime.fromisoformat(value).replace(tzinfo=UTC)
        return value if self._time is None else self._time(value)

    def terms(
        self, conn: sa.Connection, shop: str | None, template_id: int, books: tuple[Book, Book]
    ) -> Terms | None:
        """A coupon's template terms from the cache (reloaded once if another process made it)."""
        key = t.PLATFORM if shop is None else shop
        book = books[1] if shop is None else books[0]
        terms = book.templates.get(template_id)
        if terms is None:
            terms = self.center.offers.load(conn, key).templates.get(template_id)
        return terms

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
        now = order.placed_at or utcnow()
        if plan.coupons:
            ids = [c.id for c in plan.coupons]
            params: dict[str, Any] = {f"v__{i}": coupon_id for i, coupon_id in enumerate(ids)}
            params.update(who=order.customer, k_order=order.id, now=now, k_from="available", k_to="locked")
            if self._lock(len(ids)).execute(ctx.conn, params).rowcount != len(ids):
                codes = [c.code for c in plan.coupons]
                raise Rejected(
                    f"coupon {', '.join(codes)} was just taken by another order",
                    code="coupon_used",
                    extra={"coupons": codes},
                )
        flash = [usage_row(order, cut, made, "held", now) for cut, made in plan.cuts if cut.units]
        if flash:
            self.insert_usages(ctx.conn, flash)

    def insert_usages(self, conn: sa.Connection, rows: list[dict[str, Any]]) -> None:
        self._insert_usages.execute(conn, rows)


def codes_of(order: Any) -> list[str]:
    """The coupon codes an order names, as stored (upper case), each once."""
    return list(dict.fromkeys(code.strip().upper() for code in order.coupons if code.strip()))


def usage_row(order: Any, cut: Cut, made: Sequence[Adjustment], status: str, now: datetime) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "shop": order.shop,
        "customer": order.customer,
        "campaign_id": cut.campaign_id,
        "template_id": cut.template_id,
        "coupon_id": cut.coupon_id,
        "code": cut.code,
        # what the kernel took off in the end, after its own clamping
        "discount": -sum(adj.amount for adj in made),
        "units": cut.units,
        "gmv": order.total,
        "currency": order.currency,
        "status": status,
        "created_at": now,
        "updated_at": now,
    }
