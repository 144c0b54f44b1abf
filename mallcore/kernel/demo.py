"""``mallcore demo``: a demo shop with sample data and a token for every role."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
import sqlalchemy as sa

from . import tables as t
from .types import utcnow

if TYPE_CHECKING:
    from .kernel import Kernel

DEMO_SHOP = "demo"

# (role, subject, shop); PLATFORM instead of a shop: staff of the whole platform.
PLATFORM = "(platform)"
PEOPLE = [
    ("customer", "alice", None),
    ("customer", "bob", None),
    ("merchant", "merchant@demo", DEMO_SHOP),
    # Warehouses are platform objects: the platform's warehouse staff create
    # them; a shop's warehouse staff move that shop's stock.
    ("warehouse", "warehouse", PLATFORM),
    ("warehouse", "warehouse@demo", DEMO_SHOP),
    ("finance", "finance@demo", DEMO_SHOP),
    ("finance", "finance-lead@demo", DEMO_SHOP),
    ("admin", "admin", None),
]


class Demo(msgspec.Struct, kw_only=True):
    """What centers see in ``center_demo``: the shop, SKUs made so far, notes to print."""

    shop: str
    skus: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)


def seed(kernel: Kernel, base_url: str = "http://127.0.0.1:8000") -> list[str]:
    with kernel.db.transaction() as conn:
        kernel.shops.ensure(conn, DEMO_SHOP, "演示店铺", kernel.config.orders.currency)
        # Each demo run issues fresh tokens; the previous run's stop working.
        conn.execute(
            t.api_tokens.update()
            .where(t.api_tokens.c.label == "demo", t.api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
    demo = Demo(shop=DEMO_SHOP)
    kernel.call_each("center_demo", kernel=kernel, demo=demo)
    lines = [f"demo shop '{DEMO_SHOP}' ready on {kernel.db.url.render_as_string(hide_password=True)}"]
    lines += [f"  {note}" for note in demo.notes]
    lines.append("tokens (send as 'Authorization: Bearer <token>'):")
    first: dict[str, str] = {}
    for role, subject, shop in PEOPLE:
        platform = shop == PLATFORM
        token = kernel.auth.issue_token(
            subject, [role], None if platform else shop, "demo", platform=platform
        )
        first.setdefault(role, token)
        where = " platform" if platform else f" shop={shop}" if shop else ""
        lines.append(f"  {role:<9} {subject:<18}{where:<11} {token}")
    sku = demo.skus[0] if demo.skus else "SKU"
    lines += [
        "try:",
        f"  curl -s -X POST {base_url}/orders -H 'Authorization: Bearer {first['customer']}' "
        f'-H \'Content-Type: application/json\' -d \'{{"shop": "{DEMO_SHOP}", "lines": [{{"sku": "{sku}", '
        f'"quantity": 1}}], "address": {{"name": "Alice", "phone": "13800000000", '
        f'"region": "310000", "detail": "1 West Lake Rd"}}}}\'',
        f"  OpenAPI: {base_url}/schema (its request body examples are written for this demo)",
    ]
    with kernel.db.transaction(write=False) as conn:
        orders = conn.execute(sa.select(sa.func.count()).select_from(t.orders)).scalar_one()
    lines.append(f"orders so far: {orders}")
    return lines
