"""Catalog routes under ``/catalog``: merchants manage their shop's goods."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from litestar import get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import (
    Caller,
    Conflict,
    Forbidden,
    InvalidInput,
    Kernel,
    NotFound,
    require,
    utcnow,
)

from . import tables as t
from .schemas import (
    CategoryIn,
    CategoryView,
    ProductIn,
    ProductPatch,
    ProductView,
    SkuIn,
    SkuPatch,
    SkuView,
)


def _may_manage(principal: Caller, shop: str) -> None:
    require(principal, "merchant")
    if not principal.can_act_for_shop(shop, "merchant"):
        raise Forbidden(f"you do not manage shop {shop}", code="shop_forbidden")


def routes(kernel: Kernel) -> list[Any]:
    db = kernel.db

    def load_products(conn: sa.Connection, where: Any, limit: int = 50) -> list[ProductView]:
        p, s = t.products.c, t.skus.c
        rows = conn.execute(sa.select(t.products).where(where).order_by(p.id.desc()).limit(limit)).all()
        if not rows:
            return []
        skus: dict[int, list[SkuView]] = {}
        currency = {shop.code: shop.currency for shop in kernel.shops.all()}
        for r in conn.execute(
            sa.select(t.skus).where(s.product_id.in_([row.id for row in rows])).order_by(s.id)
        ):
            skus.setdefault(r.product_id, []).append(
                SkuView(
                    id=r.id,
                    code=r.code,
                    name=r.name,
                    price=r.price,
                    currency=currency.get(r.shop, kernel.config.orders.currency),
                    weight_grams=r.weight_grams,
                    active=r.active,
                    attrs=r.attrs or {},
                )
            )
        return [
            ProductView(
                id=row.id,
                shop=row.shop,
                name=row.name,
                description=row.description,
                category_id=row.category_id,
                active=row.active,
                attrs=row.attrs or {},
                skus=skus.get(row.id, []),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]

    def product_or_404(conn: sa.Connection, product_id: FromPath[int]) -> ProductView:
        found = load_products(conn, t.products.c.id == product_id, 1)
        if not found:
            raise NotFound(f"product {product_id} not found", code="product_not_found")
        return found[0]

    def insert_skus(conn: sa.Connection, product_id: FromPath[int], shop: str, skus: list[SkuIn]) -> None:
        codes = [s.code for s in skus]
        if len(set(codes)) != len(codes):
            raise InvalidInput("SKU codes repeat within the request", code="sku_code_repeated")
        taken = conn.execute(sa.select(t.skus.c.code).where(t.skus.c.code.in_(codes))).scalars().all()
        if taken:
            raise Conflict(
                f"SKU code already in use: {', '.join(taken)}", code="sku_code_taken", extra={"skus": taken}
            )
        now = utcnow()
        conn.execute(
            t.skus.insert(),
            [
                {
                    "product_id": product_id,
                    "shop": shop,
                    "code": s.code,
                    "name": s.name,
                    "price": s.price,
                    "weight_grams": s.weight_grams,
                    "active": s.active,
                    "attrs": s.attrs or None,
                    "created_at": now,
                    "updated_at": now,
                }
                for s in skus
            ],
        )

    def check_category(conn: sa.Connection, category_id: int | None) -> None:
        if category_id is not None:
            kind = conn.execute(
                sa.select(t.categories.c.kind).where(t.categories.c.id == category_id)
            ).scalar()
            if kind != "back":
                raise InvalidInput(f"category {category_id} is not a back category", code="category_invalid")

    @post("/catalog/products", status_code=201, sync_to_thread=True, tags=["catalog"])
    def create_product(data: JSONBody[ProductIn], principal: Caller) -> ProductView:
        _may_manage(principal, data.shop)
        now = utcnow()
        try:
            with db.transaction() as conn:
                kernel.shops.ensure(conn, data.shop)
                check_category(conn, data.category_id)
                product_id = conn.execute(
                    t.products.insert()
                    .values(
                        shop=data.shop,
                        name=data.name,
                        description=data.description,
                        category_id=data.category_id,
                        active=data.active,
                        attrs=data.attrs or None,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(t.products.c.id)
                ).scalar_one()
                insert_skus(conn, product_id, data.shop, data.skus)
        except IntegrityError as exc:  # a concurrent request took a code
            raise Conflict("SKU code already in use", code="sku_code_taken") from exc
        with db.transaction(write=False) as conn:
            return product_or_404(conn, product_id)

    @get("/catalog/products", sync_to_thread=True, tags=["catalog"])
    def list_products(
        shop: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        category_id: FromQuery[int | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        include_inactive: FromQuery[bool] = False,
    ) -> list[ProductView]:
        p = t.products.c
        where: list[sa.ColumnElement[bool]] = [sa.true()]
        if shop:
            where.append(p.shop == shop)
        if q:
            where.append(p.name.ilike(f"%{q}%"))
        if category_id is not None:
            where.append(p.category_id == category_id)
        if before:
            where.append(p.id < before)
        if not include_inactive:
            where.append(p.active.is_(True))
        with db.transaction(write=False) as conn:
            return load_products(conn, sa.and_(*where), limit)

    @get("/catalog/products/{product_id:int}", sync_to_thread=True, tags=["catalog"])
    def get_product(product_id: FromPath[int]) -> ProductView:
        with db.transaction(write=False) as conn:
            return product_or_404(conn, product_id)

    @patch("/catalog/products/{product_id:int}", sync_to_thread=True, tags=["catalog"])
    def update_product(
        product_id: FromPath[int], data: JSONBody[ProductPatch], principal: Caller
    ) -> ProductView:
        with db.transaction() as conn:
            product = product_or_404(conn, product_id)
            _may_manage(principal, product.shop)
            values = {k: v for k, v in _fields(data).items() if v is not None}
            if "category_id" in values:
                check_category(conn, values["category_id"])
            if values:
                conn.execute(
                    t.products.update()
                    .where(t.products.c.id == product_id)
                    .values(**values, updated_at=utcnow())
                )
            return product_or_404(conn, product_id)

    @post("/catalog/products/{product_id:int}/skus", status_code=201, sync_to_thread=True, tags=["catalog"])
    def add_skus(product_id: FromPath[int], data: JSONBody[list[SkuIn]], principal: Caller) -> ProductView:
        if not data:
            raise InvalidInput("send at least one SKU", code="sku_missing")
        try:
            with db.transaction() as conn:
                product = product_or_404(conn, product_id)
                _may_manage(principal, product.shop)
                insert_skus(conn, product_id, product.shop, data)
        except IntegrityError as exc:
            raise Conflict("SKU code already in use", code="sku_code_taken") from exc
        with db.transaction(write=False) as conn:
            return product_or_404(conn, product_id)

    @get("/catalog/skus/{code:str}", sync_to_thread=True, tags=["catalog"])
    def get_sku(code: FromPath[str]) -> ProductView:
        with db.transaction(write=False) as conn:
            product_id = conn.execute(sa.select(t.skus.c.product_id).where(t.skus.c.code == code)).scalar()
            if product_id is None:
                raise NotFound(f"SKU {code} not found", code="sku_not_found")
            return product_or_404(conn, product_id)

    @patch("/catalog/skus/{code:str}", sync_to_thread=True, tags=["catalog"])
    def update_sku(code: FromPath[str], data: JSONBody[SkuPatch], principal: Caller) -> ProductView:
        with db.transaction() as conn:
            row = conn.execute(
                sa.select(t.skus.c.shop, t.skus.c.product_id).where(t.skus.c.code == code)
            ).first()
            if row is None:
                raise NotFound(f"SKU {code} not found", code="sku_not_found")
            _may_manage(principal, row.shop)
            values = {k: v for k, v in _fields(data).items() if v is not None}
            if values:
                conn.execute(
                    t.skus.update().where(t.skus.c.code == code).values(**values, updated_at=utcnow())
                )
            return product_or_404(conn, row.product_id)

    @post("/catalog/categories", status_code=201, sync_to_thread=True, tags=["catalog"])
    def create_category(data: JSONBody[CategoryIn], principal: Caller) -> CategoryView:
        require(principal, "admin")
        with db.transaction() as conn:
            if data.parent_id is not None:
                parent_kind = conn.execute(
                    sa.select(t.categories.c.kind).where(t.categories.c.id == data.parent_id)
                ).scalar()
                if parent_kind != data.kind:
                    raise InvalidInput(
                        "the parent must be a category of the same kind", code="category_invalid"
                    )
            if data.shows and data.kind != "front":
                raise InvalidInput("only front categories show back categories", code="category_invalid")
            category_id = conn.execute(
                t.categories.insert()
                .values(name=data.name, kind=data.kind, parent_id=data.parent_id, created_at=utcnow())
                .returning(t.categories.c.id)
            ).scalar_one()
            if data.shows:
                backs = (
                    conn.execute(
                        sa.select(t.categories.c.id).where(
                            t.categories.c.id.in_(data.shows), t.categories.c.kind == "back"
                        )
                    )
                    .scalars()
                    .all()
                )
                if len(set(backs)) != len(set(data.shows)):
                    raise InvalidInput("shows must list back categories", code="category_invalid")
                conn.execute(
                    t.category_links.insert(),
                    [{"front_id": category_id, "back_id": b} for b in sorted(set(backs))],
                )
        return CategoryView(
            id=category_id,
            name=data.name,
            kind=data.kind,
            parent_id=data.parent_id,
            shows=sorted(set(data.shows)),
        )

    @get("/catalog/categories", sync_to_thread=True, tags=["catalog"])
    def list_categories(kind: FromQuery[str | None] = None) -> list[CategoryView]:
        c = t.categories.c
        stmt = sa.select(t.categories).order_by(c.id)
        if kind:
            stmt = stmt.where(c.kind == kind)
        with db.transaction(write=False) as conn:
            links: dict[int, list[int]] = {}
            for front, back in conn.execute(
                sa.select(t.category_links.c.front_id, t.category_links.c.back_id)
            ):
                links.setdefault(front, []).append(back)
            return [
                CategoryView(
                    id=r.id,
                    name=r.name,
                    kind=r.kind,
                    parent_id=r.parent_id,
                    shows=sorted(links.get(r.id, [])),
                )
                for r in conn.execute(stmt)
            ]

    return [
        create_product,
        list_products,
        get_product,
        update_product,
        add_skus,
        get_sku,
        update_sku,
        create_category,
        list_categories,
    ]


def _fields(struct: Any) -> dict[str, Any]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}
