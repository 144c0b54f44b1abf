"""Shared set-up of the TMS tests: a shop with goods, templates, signed webhooks."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Kernel
from mallcore.kernel.signing import HEADER, sign

CENTERS = ("catalog", "payment", "tms")
SHOP = "s1"

# (code, price in fen, weight in grams)
GOODS = [("A", 3000, 400), ("B", 5000, 1200), ("C", 12000, 100)]


def address(region: str = "310000") -> dict[str, str]:
    return {"name": "Alice", "phone": "13800000000", "region": region, "detail": "1 West Lake Rd"}


# By weight: ¥8 first kg + ¥3 per started kg; Zhejiang ¥6 + ¥2; Hangzhou ¥5 +
# ¥1 per started 500 g; Tibet and Urumqi ¥20 + ¥10; rest of Xinjiang and Hong
# Kong not delivered. Free over ¥99; Zhejiang: free from 3 pieces; Tibet and
# Xinjiang: free over ¥299.
WEIGHT_TEMPLATE: dict[str, Any] = {
    "name": "W",
    "mode": "weight",
    "default_rule": {"first": 1000, "first_fee": 800, "additional": 1000, "additional_fee": 300},
    "rules": [
        {"name": "Zhejiang", "regions": ["33"], "first_fee": 600, "additional_fee": 200},
        {
            "name": "Hangzhou",
            "regions": ["3301"],
            "first": 1000,
            "first_fee": 500,
            "additional": 500,
            "additional_fee": 100,
        },
        {"name": "Remote", "regions": ["54", "6501"], "first_fee": 2000, "additional_fee": 1000},
    ],
    "free": [
        {"min_amount": 9900},
        {"regions": ["33"], "min_quantity": 3},
        {"regions": ["54", "65"], "min_amount": 29900},
    ],
    "not_delivered": ["65", "81"],
}

# By piece: ¥10 first piece + ¥5 each; Jiangsu: ¥12 for the first 2 + ¥4 per
# started 2 more; free from 5 pieces and ¥200 together.
PIECE_TEMPLATE: dict[str, Any] = {
    "name": "P",
    "mode": "piece",
    "default_rule": {"first_fee": 1000, "additional_fee": 500},
    "rules": [
        {
            "name": "Jiangsu",
            "regions": ["32"],
            "first": 2,
            "first_fee": 1200,
            "additional": 2,
            "additional_fee": 400,
        }
    ],
    "free": [{"min_quantity": 5, "min_amount": 20000}],
}


def shop_kernel(mallcore: Any, *, centers: tuple[str, ...] = CENTERS, **kwargs: Any) -> Kernel:
    kernel = mallcore.kernel(centers=list(centers), **kwargs)
    mallcore.product(kernel, shop=SHOP, skus=GOODS)
    return kernel


def add_template(mallcore: Any, kernel: Kernel, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    merchant = mallcore.client(kernel, "merchant", "m1", shop=SHOP)
    r = merchant.post("/tms/templates", json={"shop": SHOP, **body, **extra})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def order_body(lines: list[tuple[str, int]], region: str | None = "310000") -> dict[str, Any]:
    body: dict[str, Any] = {"shop": SHOP, "lines": [{"sku": s, "quantity": q} for s, q in lines]}
    if region is not None:
        body["address"] = address(region)
    return body


def paid_order(
    mallcore: Any, kernel: Kernel, lines: list[tuple[str, int]], customer: str = "alice"
) -> dict[str, Any]:
    client = mallcore.client(kernel, "customer", customer)
    r = client.post("/orders", json=order_body(lines))
    assert r.status_code == 201, r.text
    order = r.json()
    r = client.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert r.status_code == 201, r.text
    return order  # type: ignore[no-any-return]


def carrier_secret(client: Any, carrier: str = "sandbox") -> str:
    """The webhook secret the kernel behind ``client`` checks for ``carrier``."""
    return str(client.kernel.centers["tms"].carriers[carrier].secret)


def signed(
    client: Any,
    carrier: str,
    event: dict[str, Any],
    *,
    secret: str | None = None,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> Any:
    raw = body if body is not None else msgspec.json.encode(event)
    if secret is None:
        secret = carrier_secret(client, carrier)
    header = sign(secret, raw, timestamp if timestamp is not None else int(time.time()))
    return client.post(
        f"/tms/webhooks/{carrier}",
        content=raw,
        headers={HEADER: header, "Content-Type": "application/json"},
    )


def rows(kernel: Kernel, table: str, **where: Any) -> list[Any]:
    t = kernel.metadatas["tms"].tables[table]
    stmt = sa.select(t)
    for key, value in where.items():
        stmt = stmt.where(t.c[key] == value)
    with kernel.db.transaction(write=False) as conn:
        return list(conn.execute(stmt.order_by(t.c[t.primary_key.columns.keys()[0]])).all())


def order_status(kernel: Kernel, order_id: int) -> str:
    with kernel.db.transaction(write=False) as conn:
        order = kernel.orders.load(conn, order_id)
    assert order is not None
    return order.status


def snapshot(kernel: Kernel) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for "nothing changed" checks."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with kernel.db.transaction(write=False) as conn:
        for metadata in kernel.metadatas.values():
            for name, table in metadata.tables.items():
                if name in ("kernel_meta", "job_leases", "idempotency_keys"):
                    continue
                out[name] = sorted((tuple(r) for r in conn.execute(sa.select(table))), key=repr)
    return out
