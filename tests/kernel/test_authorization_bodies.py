"""Objects named in a request body rather than its path: another customer's order or order
line in an after-sale request, another customer's coupon in an order or a redemption, another
shop's order in a risk report or a chargeback, another shop's SKU in a
warehouse's inbound, transfer or stocktake. Asked with the other side's real id, each route
answers exactly what it answers for an id that does not exist (404, or the route's own 4xx;
403 ``shop_forbidden`` for another shop's SKU, as documented for the stock routes), and
writes nothing. The ids in paths: test_authorization_objects.py (same seeded shops).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from tests.helpers import snapshot
from tests.kernel.test_authorization_objects import SIDES, _answer, _table, seed

MISSING_ID = 987654
MISSING_CODE = "NOPE-404"
ADDRESS = {"name": "Private", "phone": "13800000000", "region": "310000", "detail": "1 Rd"}


def objects(kernel: Any, shop: str) -> dict[str, Any]:
    """``shop``'s side: its customer's paid order without an after-sale case, that order's line,
    its customer's claimed coupon, its SKU."""
    orders, lines = _table(kernel, "orders"), _table(kernel, "order_lines")
    cases, coupons = _table(kernel, "refund_cases"), _table(kernel, "promotion_coupons")
    with kernel.db.transaction(write=False) as conn:
        order = conn.execute(
            sa.select(orders.c.id)
            .where(
                orders.c.shop == shop,
                orders.c.status.in_(("paid", "dispatched")),
                orders.c.id.not_in(sa.select(cases.c.order_id)),
            )
            .order_by(orders.c.id)
            .limit(1)
        ).scalar_one()
        line = conn.execute(sa.select(lines.c.id).where(lines.c.order_id == order).limit(1)).scalar_one()
        coupon = conn.execute(
            sa.select(coupons.c.code).where(coupons.c.customer == SIDES[shop]).limit(1)
        ).scalar_one()
    return {"order": order, "line": line, "coupon": coupon, "sku": f"{shop.upper()}-1"}


def after_sale(order: int, line: int) -> dict[str, Any]:
    return {
        "order_id": order,
        "type": "refund_only",
        "lines": [{"line_id": line, "quantity": 1}],
        "reason": "not_wanted",
    }


def placement(coupon: str) -> dict[str, Any]:
    return {
        "shop": "beta",
        "lines": [{"sku": "BETA-1", "quantity": 1}],
        "address": ADDRESS,
        "coupons": [coupon],
    }


Case = tuple[str, str | None, str, str | None, str, str, Callable[[dict[str, Any], bool], dict[str, Any]]]


def cases(own: dict[str, Any]) -> list[Case]:
    """(label, role, subject, shop, method, path, body from the other side's ids or missing ones).
    Everyone is of alpha (alice its customer) and names beta's (bob's) objects."""

    def pick(their: dict[str, Any], missing: bool, key: str) -> Any:
        return (MISSING_CODE if key in ("coupon", "sku") else MISSING_ID) if missing else their[key]

    return [
        (
            "customer alice",
            "customer",
            "alice",
            None,
            "POST",
            "/after-sales",
            lambda t, m: after_sale(pick(t, m, "order"), pick(t, m, "line")),
        ),
        (
            "customer alice, her order, bob's line",
            "customer",
            "alice",
            None,
            "POST",
            "/after-sales",
            lambda t, m: after_sale(own["order"], pick(t, m, "line")),
        ),
        (
            "customer alice",
            "customer",
            "alice",
            None,
            "POST",
            "/orders",
            lambda t, m: placement(pick(t, m, "coupon")),
        ),
        (
            "customer alice",
            "customer",
            "alice",
            None,
            "POST",
            "/orders/preview",
            lambda t, m: placement(pick(t, m, "coupon")),
        ),
        (
            "customer alice",
            "customer",
            "alice",
            None,
            "POST",
            "/promotion/coupons/redeem",
            lambda t, m: {"code": pick(t, m, "coupon")},
        ),
        (
            "merchant@alpha",
            "merchant",
            "merchant-alpha",
            "alpha",
            "POST",
            "/risk/reports",
            lambda t, m: {
                "shop": "alpha",
                "customer": "bob",
                "reason": "abuse",
                "order_id": pick(t, m, "order"),
            },
        ),
        (
            "risk@alpha",
            "risk",
            "risk-alpha",
            "alpha",
            "POST",
            "/risk/customers/alice/chargebacks",
            lambda t, m: {"note": "bank says so", "order_id": pick(t, m, "order")},
        ),
        (
            "warehouse@alpha",
            "warehouse",
            "warehouse-alpha",
            "alpha",
            "POST",
            "/wms/inbound",
            lambda t, m: {"warehouse": "SH", "sku": pick(t, m, "sku"), "quantity": 1},
        ),
        (
            "warehouse@alpha",
            "warehouse",
            "warehouse-alpha",
            "alpha",
            "POST",
            "/wms/stocktakes",
            lambda t, m: {"warehouse": "SH", "counts": [{"sku": pick(t, m, "sku"), "counted": 0}]},
        ),
        (
            "warehouse@alpha",
            "warehouse",
            "warehouse-alpha",
            "alpha",
            "POST",
            "/wms/transfers",
            lambda t, m: {
                "sku": pick(t, m, "sku"),
                "from_warehouse": "SH",
                "to_warehouse": "BJ",
                "quantity": 1,
            },
        ),
    ]


def test_no_route_lets_an_outsider_use_an_object_named_in_the_body(mallcore):
    kernel = seed(mallcore)
    admin = mallcore.client(kernel, "admin", "root")
    assert (
        admin.post("/wms/warehouses", json={"code": "BJ", "name": "BJ", "region": "110000"}).status_code
        == 201
    )
    own, theirs = objects(kernel, "alpha"), objects(kernel, "beta")
    leaks, written = [], []
    for label, role, subject, shop, method, path, body in cases(own):
        client = mallcore.client(kernel, role, subject, shop=shop)
        answers = []
        for missing in (False, True):
            before = snapshot(kernel)
            r = client.request(method, path, json=body(theirs, missing))
            assert r.status_code < 500, (label, path, r.text)
            if snapshot(kernel) != before:
                written.append(f"{label} {method} {path} (missing id: {missing}) -> {r.status_code} {r.text}")
            answers.append(_answer(r))
        real, fake = answers
        documented = path.startswith("/wms/") and real == (403, "shop_forbidden")
        if not documented and (real != fake or not 400 <= real[0] < 500):
            leaks.append(f"{label} {method} {path}: {real} (missing object: {fake})")
    assert leaks == [] and written == []
