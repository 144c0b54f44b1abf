"""商品中心 catalog: products (SPU), SKUs, categories, and list prices.

Hooks:

- ``order_pre_validate``: one query loads every SKU of the order (the SKUs
  another order of the same combined batch loaded are reused: ``ctx.shared``); unknown
  (``sku_unknown``), inactive (``sku_inactive``) or another shop's
  (``sku_not_in_shop``) SKUs refuse the order with 422. Lines get their
  name and weight; the prices wait in ``ctx.stash`` for pricing.
- ``order_price``: sets each line's ``unit_price`` to the SKU's list price.

Routes under ``/catalog``: products (create, list, get, update), SKUs
(add, update, get), categories (back and front, with links).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa

from mallcore.kernel import Center, Kernel, OrderContext, Rejected, hookimpl, utcnow
from mallcore.kernel.fast import InSelect

from . import tables as t
from .routes import router

_PRICES = object()  # stash key: {sku code: list price}
_SKUS = object()  # ctx.shared key: {sku code: _Sku} read in this transaction


class _Sku(NamedTuple):
    code: str
    shop: str
    name: str
    price: int
    weight_grams: int
    active: bool
    product_id: int
    product: str
    product_active: bool


class CatalogCenter(Center):
    name = "catalog"
    description = "Products, SKUs, categories and list prices"
    tables = t.metadata

    def bind(self, kernel: Kernel, settings: Any) -> None:
        super().bind(kernel, settings)
        s, p = t.skus.c, t.products.c
        # Every placement runs this query: precompiled for the driver (kernel.fast).
        self._lookup = InSelect(
            lambda codes: (
                sa.select(
                    s.code,
                    s.shop,
                    s.name,
                    s.price,
                    s.weight_grams,
                    s.active,
                    s.product_id,
                    p.name.label("product"),
                    p.active.label("product_active"),
                )
                .join(t.products, p.id == s.product_id)
                .where(s.code.in_(codes))
            ),
            kernel.db,
        )

    @hookimpl
    def order_pre_validate(self, ctx: OrderContext) -> None:
        codes = [line.sku for line in ctx.lines]
        found: dict[str, _Sku] | None = ctx.shared.get(_SKUS)
        if found is None:
            found = ctx.shared[_SKUS] = {}
        missing = [c for c in codes if c not in found]
        if missing:
            found.update((row[0], _Sku(*row)) for row in self._lookup.execute(ctx.conn, missing).rows)
        unknown = [c for c in codes if c not in found]
        if unknown:
            raise Rejected(f"unknown SKU: {', '.join(unknown)}", code="sku_unknown", extra={"skus": unknown})
        other_shop = [c for c in codes if found[c].shop != ctx.order.shop]
        if other_shop:
            raise Rejected(
                f"SKU not sold by shop {ctx.order.shop}: {', '.join(other_shop)}",
                code="sku_not_in_shop",
                extra={"skus": other_shop},
            )
        inactive = [c for c in codes if not (found[c].active and found[c].product_active)]
        if inactive:
            raise Rejected(
                f"SKU not on sale: {', '.join(inactive)}", code="sku_inactive", extra={"skus": inactive}
            )
        prices = {}
        for line in ctx.lines:
            row = found[line.sku]
            line.name = f"{row.product} {row.name}".strip() if row.name else row.product
            line.weight_grams = row.weight_grams
            line.attrs["product_id"] = row.product_id
            prices[line.sku] = row.price
        ctx.stash[_PRICES] = prices

    @hookimpl(tryfirst=True)
    def order_price(self, ctx: OrderContext) -> None:
        prices = ctx.stash[_PRICES]
        for line in ctx.lines:
            line.unit_price = prices[line.sku]

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return [router(self)]

    @hookimpl
    def center_demo(self, kernel: Kernel, demo: Any) -> None:
        now = utcnow()
        with kernel.db.transaction() as conn:
            for name, description, skus in DEMO_PRODUCTS:
                codes = [code for code, *_ in skus]
                demo.skus.extend(codes)
                if conn.execute(sa.select(t.skus.c.id).where(t.skus.c.code == codes[0])).first():
                    continue
                product_id = conn.execute(
                    t.products.insert()
                    .values(
                        shop=demo.shop,
                        name=name,
                        description=description,
                        active=True,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(t.products.c.id)
                ).scalar_one()
                conn.execute(
                    t.skus.insert(),
                    [
                        {
                            "product_id": product_id,
                            "shop": demo.shop,
                            "code": code,
                            "name": variant,
                            "price": price,
                            "weight_grams": weight,
                            "active": True,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for code, variant, price, weight in skus
                    ],
                )
        demo.notes.append(f"catalog: {len(DEMO_PRODUCTS)} products, SKUs {', '.join(demo.skus)}")


# (name, description, [(sku code, variant, price in fen, weight in grams)])
DEMO_PRODUCTS = [
    (
        "Cotton T-shirt 纯棉T恤",
        "Heavy cotton, three colours",
        [
            ("TEE-WHITE-M", "white M", 7900, 220),
            ("TEE-WHITE-L", "white L", 7900, 240),
            ("TEE-BLACK-M", "black M", 8900, 220),
        ],
    ),
    ("Ceramic mug 陶瓷马克杯", "350 ml", [("MUG-350", "", 3900, 400)]),
    ("Wireless earbuds 无线耳机", "Bluetooth 5.3", [("EARBUDS-1", "", 29900, 120)]),
]
