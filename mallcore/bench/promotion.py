"""The ``promotion`` scenario: placement with the promotion center on, against the same
placement with it off, in one run.

Both kernels run catalog, payment and WMS on their own fresh database; the
second adds promotion with three live campaigns in scope of every order (满减
on the whole shop, 5% off the three SKUs ordered, buy one get one half price
on one of them: all three fire) and a coupon of its own on each order (so a
coupon is read, locked and recorded every time). Orders are placed in
process, in alternating batches (both kernels see the same moments of
machine noise), and the medians of the batch times are compared; the SQL
statements of one placement are counted on each side. Targets: at most 15%
slower, at most 3 statements more.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

LINES = [("BENCH-1", 1), ("BENCH-2", 2), ("BENCH-3", 1)]
BATCH = 50
WARM = 100


def _kernel(target: Any, folder: Path, promotion: bool) -> tuple[Any, Any]:
    from litestar.testing import TestClient

    from mallcore.kernel import Kernel, Principal, load_config
    from mallcore.kernel.http.app import create_app

    from . import ADMIN, SKUS, kernel_config

    url, schema = target.fresh()
    extra = ("promotion",) if promotion else ()
    config = load_config(
        kernel_config(url, schema, folder, extra), env={}, overrides={"logging": {"level": "warning"}}
    )
    kernel = Kernel(config)
    kernel.create_schema()
    with TestClient(create_app(kernel, lifecycle=False)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        skus = [{"code": s, "price": p} for s, (p, _) in SKUS.items()]
        client.post(
            "/catalog/products", json={"name": "Bench", "shop": "bench", "skus": skus}
        ).raise_for_status()
        client.post(
            "/wms/warehouses", json={"code": "WH1", "name": "Bench", "region": "310000"}
        ).raise_for_status()
        for sku, (_, qty) in SKUS.items():
            client.post(
                "/wms/inbound", json={"warehouse": "WH1", "sku": sku, "quantity": qty}
            ).raise_for_status()
        if promotion:
            _campaigns(client)
    return kernel, Principal("bench-customer", frozenset({"customer"}))


def _campaigns(client: Any) -> None:
    from datetime import UTC, datetime, timedelta

    ends = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for body in (
        {
            "type": "threshold_off",
            "rules": {"tiers": [{"threshold": 3000, "off": 300}, {"threshold": 10000, "off": 1500}]},
        },
        {
            "type": "percent_off",
            "rules": {"percent": 5},
            "skus": [s for s, _ in LINES],
            "stacking_group": "sku",
        },
        {"type": "buy_x_get_y", "rules": {"buy": 1, "get": 1, "percent_off_get": 50}, "skus": ["BENCH-2"]},
    ):
        r = client.post(
            "/promotion/campaigns", json={"shop": "bench", "name": body["type"], "ends_at": ends, **body}
        )
        r.raise_for_status()


def _coupons(kernel: Any, customer: str, n: int) -> list[str]:
    """``n`` coupons (1.00 off, no minimum) in ``customer``'s wallet, written in one go."""
    from datetime import timedelta

    from mallcore.kernel import utcnow
    from mallcore.plugins.promotion import tables as t
    from mallcore.plugins.promotion.cache import bump_version
    from mallcore.plugins.promotion.coupons import new_code

    now = utcnow()
    with kernel.db.transaction() as conn:
        template_id = conn.execute(
            t.templates.insert()
            .values(
                shop="bench",
                name="bench coupon",
                kind="amount",
                value=100,
                cap=None,
                min_spend=0,
                currency="CNY",
                skus=[],
                categories=[],
                total=n,
                issued=n,
                per_customer=n,
                valid_to=now + timedelta(days=1),
                claimable=False,
                status="active",
                created_by="bench",
                created_at=now,
                updated_at=now,
            )
            .returning(t.templates.c.id)
        ).scalar_one()
        codes = [new_code() for _ in range(n)]
        conn.execute(
            t.coupons.insert(),
            [
                {
                    "code": code,
                    "template_id": template_id,
                    "shop": "bench",
                    "customer": customer,
                    "status": "available",
                    "source": "batch",
                    "reason": "bench",
                    "valid_from": None,
                    "valid_to": now + timedelta(days=1),
                    "order_id": None,
                    "issued_at": now,
                    "claimed_at": now,
                    "used_at": None,
                    "updated_at": now,
                }
                for code in codes
            ],
        )
        bump_version(conn, "bench")  # the template's terms reach the cache
    kernel.centers["promotion"].changed("bench")
    return codes


def run(target: Any, folder: Path, orders: int, rounds: int) -> dict[str, Any]:
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    batches = max(20, orders * rounds // BATCH)
    kernels = {"without": _kernel(target, folder, False), "with": _kernel(target, folder, True)}
    kernel, principal = kernels["with"]
    codes = iter(_coupons(kernel, principal.subject, WARM + batches * BATCH + 10))

    def request(name: str) -> PlaceOrder:
        # The same order on both sides; without promotion nobody reads the coupon.
        code = next(codes) if name == "with" else "X" * 16
        return PlaceOrder(shop="bench", lines=[LineIn(sku=s, quantity=q) for s, q in LINES], coupons=[code])

    times: dict[str, list[float]] = {name: [] for name in kernels}
    statements: dict[str, int] = {}
    sample: dict[str, Any] = {}
    try:
        for name, (k, who) in kernels.items():
            for _ in range(WARM // 2):
                k.orders.place(who, request(name))
            with k.db.count_statements(keep=True) as counter:
                view, _ = k.orders.place(who, request(name))
            statements[name] = counter.count
            if name == "with":
                sample = {
                    "total": view.total,
                    "discount": view.discount,
                    "adjustments": [(a.code, a.amount) for a in view.adjustments],
                    "statements": [s.split("\n")[0][:100] for s in counter.statements],
                }
        for i in range(batches):
            order = list(kernels.items()) if i % 2 == 0 else list(reversed(kernels.items()))
            for name, (k, who) in order:
                reqs = [request(name) for _ in range(BATCH)]
                started = time.perf_counter()
                for req in reqs:
                    k.orders.place(who, req)
                times[name].append((time.perf_counter() - started) / BATCH)
    finally:
        for k, _ in kernels.values():
            k.close()
    median = {name: statistics.median(t) for name, t in times.items()}
    return {
        "orders": batches * BATCH,
        "us_per_order": {name: round(t * 1e6, 1) for name, t in median.items()},
        "slower": round(median["with"] / median["without"] - 1, 4),
        "statements_per_placement": statements,
        "extra_statements": statements["with"] - statements["without"],
        "sample_order": sample,
    }


def line(r: dict[str, Any]) -> str:
    us, st = r["us_per_order"], r["statements_per_placement"]
    return (
        f"  promotion  off {us['without']} µs/order ({st['without']} statements), "
        f"on with 3 campaigns + a coupon {us['with']} µs/order ({st['with']} statements): "
        f"{r['slower']:+.1%}, {r['extra_statements']:+d} statements"
    )
