"""Who manages a campaign or template, and what its scope may list.

- A shop's campaigns and templates: that shop's merchants (and platform
  merchants, and admins). Another shop's answers 404, as if it did not exist.
- The platform's (``shop`` null): admins only (403 ``platform_only``); shop
  staff do not see them at all (404).
- A scope lists SKUs of the owner's shop (any shop's for the platform) that
  the catalog knows (422 ``sku_unknown`` / ``sku_not_in_shop``), and catalog
  categories that exist (422 ``category_unknown``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Forbidden, InvalidInput, NotFound, Principal

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

# The catalog's SKUs and categories. Only these columns of its tables are relied on.
catalog_skus = sa.table("catalog_skus", sa.column("code"), sa.column("shop"), sa.column("price"))
catalog_categories = sa.table("catalog_categories", sa.column("id"))


def may_manage(principal: Principal, shop: str | None, what: str) -> None:
    """Raise unless ``principal`` may create or change ``what`` owned by ``shop``."""
    if shop is None:
        if not principal.is_admin:
            raise Forbidden(f"only admins manage the platform's {what}", code="platform_only")
        return
    if not principal.can_act_for_shop(shop, "merchant"):
        raise NotFound(f"shop {shop} not found", code="shop_not_found")


def may_see(principal: Principal, shop: str | None) -> bool:
    """Staff see their shop's objects (platform staff and admins: all, the platform's too)."""
    if principal.is_admin:
        return True
    if shop is None:
        return principal.is_platform
    return principal.can_act_for_shop(shop, "merchant")


def owned_row(
    kernel: Kernel,
    conn: sa.Connection,
    table: sa.Table,
    row_id: int,
    what: str,
    *,
    principal: Principal | None = None,
    lock: bool = False,
) -> Any:
    """A campaign's or template's row (locked if asked); 404 ``<what>_not_found`` when it does
    not exist or, given a ``principal``, is not theirs to see."""
    stmt = sa.select(table).where(table.c.id == row_id)
    row = conn.execute(kernel.db.lock_clause(stmt) if lock else stmt).first()
    if row is None or (principal is not None and not may_see(principal, row.shop)):
        label = "coupon template" if what == "template" else what
        raise NotFound(f"{label} {row_id} not found", code=f"{what}_not_found")
    return row


def currency_of(kernel: Kernel, shop: str | None) -> str:
    return kernel.config.orders.currency if shop is None else kernel.shops.get(shop).currency


def check_scope(
    conn: sa.Connection, shop: str | None, skus: Sequence[str], categories: Sequence[int]
) -> dict[str, int]:
    """The list prices of ``skus`` (checked against the catalog); categories checked too."""
    prices: dict[str, int] = {}
    if skus:
        s = catalog_skus.c
        found = {r.code: r for r in conn.execute(sa.select(s.code, s.shop, s.price).where(s.code.in_(skus)))}
        unknown = [code for code in skus if code not in found]
        if unknown:
            raise InvalidInput(
                f"unknown SKU: {', '.join(unknown)}", code="sku_unknown", extra={"skus": unknown}
            )
        foreign = [code for code in skus if shop is not None and found[code].shop != shop]
        if foreign:
            raise InvalidInput(
                f"SKU not sold by shop {shop}: {', '.join(foreign)}",
                code="sku_not_in_shop",
                extra={"skus": foreign},
            )
        prices = {code: int(found[code].price) for code in skus}
    if categories:
        c = catalog_categories.c
        known = {r.id for r in conn.execute(sa.select(c.id).where(c.id.in_(categories)))}
        missing = [i for i in categories if i not in known]
        if missing:
            raise InvalidInput(
                f"unknown category: {', '.join(map(str, missing))}",
                code="category_unknown",
                extra={"categories": missing},
            )
    return prices


def window(starts: datetime | None, ends: datetime | None, now: datetime) -> None:
    """422 ``window_invalid`` unless the window ends after it starts, and after ``now``."""
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidInput("the window ends before it starts", code="window_invalid")
    if ends is not None and ends <= now:
        raise InvalidInput("the window has ended already", code="window_invalid")
