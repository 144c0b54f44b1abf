"""Catalog routes under ``/catalog``: anyone reads the goods, merchants manage their shop's.

Reading products, SKUs and categories needs no token; listing inactive
products too (``include_inactive=true``) takes a staff token, and shows a
shop's staff the inactive products of their shop only. Writing products and
SKUs admits merchants (403 ``role_required``) of the product's shop (403
``shop_forbidden``: the catalog is public, so refusing says nothing hidden);
creating categories admits admins.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import sqlalchemy as sa
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
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
    visible_to,
)
from mallcore.kernel.http import center_router, principal_of, roles

from . import tables as t
from .schemas import (
    CategoryIn,
    CategoryView,
    ProductIn,
    ProductPatch,
    ProductView,
    SkuIn,
    SkuList,
    SkuPatch,
    SkuView,
)

if TYPE_CHECKING:
    from litestar import Router

    from . import CatalogCenter

# Declare ``catalog: Catalog`` in a handler to receive the center (see center_router).
Catalog: TypeAlias = NamedDependency["CatalogCenter"]
TAGS = ["catalog"]
MERCHANT = [roles("merchant")]


def router(center: CatalogCenter) -> Router:
    return center_router(center, [ProductController, SkuController, CategoryController])


def _may_manage(principal: Caller, shop: str) -> None:
    if not principal.can_act_for_shop(shop, "merchant"):
        raise Forbidden(f"you do not manage shop {shop}", code="shop_forbidden")


def load_products(kernel: Kernel, conn: sa.Connection, where: Any, limit: int = 50) -> list[ProductView]:
    p, s = t.products.c, t.skus.c
    rows = conn.execute(sa.select(t.products).where(where).order_by(p.id.desc()).limit(limit)).all()
    if not rows:
        return []
    skus: dict[int, list[SkuView]] = {}
    currency = {shop.code: shop.currency for shop in kernel.shops.all()}
    for r in conn.execute(sa.select(t.skus).where(s.product_id.in_([row.id for row in rows])).order_by(s.id)):
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


def product_or_404(kernel: Kernel, conn: sa.Connection, product_id: int) -> ProductView:
    found = load_products(kernel, conn, t.products.c.id == product_id, 1)
    if not found:
        raise NotFound(f"product {product_id} not found", code="product_not_found")
    return found[0]


def insert_skus(conn: sa.Connection, product_id: int, shop: str, skus: list[SkuIn]) -> None:
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
        kind = conn.execute(sa.select(t.categories.c.kind).where(t.categories.c.id == category_id)).scalar()
        if kind != "back":
            raise InvalidInput(f"category {category_id} is not a back category", code="category_invalid")


def _set_fields(struct: Any) -> dict[str, Any]:
    """The fields of a patch that were sent (not ``None``)."""
    return {name: v for name in struct.__struct_fields__ if (v := getattr(struct, name)) is not None}


class ProductController(Controller):
    path = "/products"
    tags = TAGS

    @post("/", status_code=201, sync_to_thread=True, guards=MERCHANT)
    def create_product(self, data: JSONBody[ProductIn], principal: Caller, catalog: Catalog) -> ProductView:
        """Create a product with its SKUs in the caller's shop (merchant; platform staff for any shop). A
        SKU code already taken answers 409.
        """
        _may_manage(principal, data.shop)
        kernel = catalog.kernel
        now = utcnow()
        try:
            with kernel.db.transaction() as conn:
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
        with kernel.db.transaction(write=False) as conn:
            return product_or_404(kernel, conn, product_id)

    @get("/", sync_to_thread=True)
    def list_products(
        self,
        catalog: Catalog,
        request: Request[Any, Any, Any],
        shop: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
        category_id: FromQuery[int | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        include_inactive: FromQuery[bool] = False,
    ) -> list[ProductView]:
        """Active products, newest first, filtered by shop, name (`q`, wildcards taken literally) or
        category. Public. `include_inactive=true` needs a staff token and adds the inactive products of
        the caller's shop only.
        """
        p = t.products.c
        where: list[sa.ColumnElement[bool]] = [sa.true()]
        if shop:
            where.append(p.shop == shop)
        if q:
            # % and _ in the query are letters, not wildcards
            where.append(p.name.icontains(q, autoescape=True))
        if category_id is not None:
            where.append(p.category_id == category_id)
        if before:
            where.append(p.id < before)
        if not include_inactive:
            where.append(p.active.is_(True))
        else:
            # Inactive products are for the staff who manage them: the shop's, or the platform's.
            staff = principal_of(request)
            require(staff, "merchant", "warehouse", "finance", "risk")
            where.append(sa.or_(p.active.is_(True), visible_to(staff, p.shop)))
        with catalog.kernel.db.transaction(write=False) as conn:
            return load_products(catalog.kernel, conn, sa.and_(*where), limit)

    @get("/{product_id:int}", sync_to_thread=True)
    def get_product(self, product_id: FromPath[int], catalog: Catalog) -> ProductView:
        """A product with its SKUs and prices. Public; an unknown id answers 404 `product_not_found`."""
        with catalog.kernel.db.transaction(write=False) as conn:
            return product_or_404(catalog.kernel, conn, product_id)

    @patch("/{product_id:int}", sync_to_thread=True, guards=MERCHANT)
    def update_product(
        self, product_id: FromPath[int], data: JSONBody[ProductPatch], principal: Caller, catalog: Catalog
    ) -> ProductView:
        """Change a product's name, description, category or active flag (the shop's merchant, or platform
        staff). Another shop's product answers 403 `shop_forbidden` (products are public).
        """
        kernel = catalog.kernel
        with kernel.db.transaction() as conn:
            product = product_or_404(kernel, conn, product_id)
            _may_manage(principal, product.shop)
            values = _set_fields(data)
            if "category_id" in values:
                check_category(conn, values["category_id"])
            if values:
                conn.execute(
                    t.products.update()
                    .where(t.products.c.id == product_id)
                    .values(**values, updated_at=utcnow())
                )
            return product_or_404(kernel, conn, product_id)

    @post("/{product_id:int}/skus", status_code=201, sync_to_thread=True, guards=MERCHANT)
    def add_skus(
        self, product_id: FromPath[int], data: JSONBody[SkuList], principal: Caller, catalog: Catalog
    ) -> ProductView:
        """Add SKUs to a product (the shop's merchant, or platform staff; another shop's product: 403
        `shop_forbidden`, products are public). A SKU code already taken answers 409.
        """
        if not data:
            raise InvalidInput("send at least one SKU", code="sku_missing")
        kernel = catalog.kernel
        try:
            with kernel.db.transaction() as conn:
                product = product_or_404(kernel, conn, product_id)
                _may_manage(principal, product.shop)
                insert_skus(conn, product_id, product.shop, data)
        except IntegrityError as exc:
            raise Conflict("SKU code already in use", code="sku_code_taken") from exc
        with kernel.db.transaction(write=False) as conn:
            return product_or_404(kernel, conn, product_id)


class SkuController(Controller):
    path = "/skus"
    tags = TAGS

    @get("/{code:str}", sync_to_thread=True)
    def get_sku(self, code: FromPath[str], catalog: Catalog) -> ProductView:
        """The product a SKU code belongs to. Public; an unknown code answers 404 `sku_not_found`."""
        with catalog.kernel.db.transaction(write=False) as conn:
            product_id = conn.execute(sa.select(t.skus.c.product_id).where(t.skus.c.code == code)).scalar()
            if product_id is None:
                raise NotFound(f"SKU {code} not found", code="sku_not_found")
            return product_or_404(catalog.kernel, conn, product_id)

    @patch("/{code:str}", sync_to_thread=True, guards=MERCHANT)
    def update_sku(
        self, code: FromPath[str], data: JSONBody[SkuPatch], principal: Caller, catalog: Catalog
    ) -> ProductView:
        """Change a SKU's price, name or active flag (the shop's merchant, or platform staff). Another
        shop's SKU answers 403 `shop_forbidden` (SKUs are public).
        """
        with catalog.kernel.db.transaction() as conn:
            row = conn.execute(
                sa.select(t.skus.c.shop, t.skus.c.product_id).where(t.skus.c.code == code)
            ).first()
            if row is None:
                raise NotFound(f"SKU {code} not found", code="sku_not_found")
            _may_manage(principal, row.shop)
            values = _set_fields(data)
            if values:
                conn.execute(
                    t.skus.update().where(t.skus.c.code == code).values(**values, updated_at=utcnow())
                )
            return product_or_404(catalog.kernel, conn, row.product_id)


class CategoryController(Controller):
    path = "/categories"
    tags = TAGS

    @post("/", status_code=201, sync_to_thread=True, guards=[roles("admin")])
    def create_category(self, data: JSONBody[CategoryIn], catalog: Catalog) -> CategoryView:
        """Create a category (admin): front categories (what shoppers browse) or back categories (what
        products are filed under); a parent must be of the same kind.
        """
        c = t.categories.c
        with catalog.kernel.db.transaction() as conn:
            if data.parent_id is not None:
                parent_kind = conn.execute(sa.select(c.kind).where(c.id == data.parent_id)).scalar()
                if parent_kind != data.kind:
                    raise InvalidInput(
                        "the parent must be a category of the same kind", code="category_invalid"
                    )
            if data.shows and data.kind != "front":
                raise InvalidInput("only front categories show back categories", code="category_invalid")
            category_id = conn.execute(
                t.categories.insert()
                .values(name=data.name, kind=data.kind, parent_id=data.parent_id, created_at=utcnow())
                .returning(c.id)
            ).scalar_one()
            if data.shows:
                backs = (
                    conn.execute(sa.select(c.id).where(c.id.in_(data.shows), c.kind == "back"))
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

    @get("/", sync_to_thread=True)
    def list_categories(self, catalog: Catalog, kind: FromQuery[str | None] = None) -> list[CategoryView]:
        """The category tree, with the back categories each front category shows. Public."""
        c = t.categories.c
        stmt = sa.select(t.categories).order_by(c.id)
        if kind:
            stmt = stmt.where(c.kind == kind)
        with catalog.kernel.db.transaction(write=False) as conn:
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
