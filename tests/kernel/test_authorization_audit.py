"""Every read route of the app, asked by every role from outside a shop, shows none of its data.

Shop ``alpha`` gets two orders paid by alice (dispatched by WMS at once), journal entries and a coupon. Then every ``GET``
route of the app (enumerated from the app itself, every center on) is asked
by the staff of shop ``beta`` in each staff role, by another customer and by
no one; a response that carries one of alpha's markers (alice's address, a
payment reference, alice's name) is a leak.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from mallcore.kernel.types import STAFF_ROLES

ADDRESS = {"name": "Alice Private", "phone": "13800000000", "region": "310000", "detail": "ZZ-SECRET-ADDR"}
CENTERS = ["catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership"]
# Routes whose answer is public by design (a shop's catalog, the docs), and operations'
# probes (health, readiness, metrics: no shop's data).
PUBLIC = re.compile(
    r"^/(schema|catalog/|shops$|promotion/offers|membership/levels|refund/reasons|tms/carriers"
    r"|health$|ready$|metrics$)"
)
OUTSIDERS = [*((role, f"{role}@beta", "beta") for role in sorted(STAFF_ROLES)), ("customer", "mallory", None)]


def _seed(mallcore: Any) -> tuple[Any, list[str]]:
    kernel = mallcore.kernel(centers=CENTERS)
    mallcore.product(kernel, shop="alpha", skus=[("ALPHA-1", 1000, 100)])
    mallcore.product(kernel, shop="beta", skus=[("BETA-1", 1000, 100)], name="Beta's")
    admin = mallcore.client(kernel, "admin", "root")
    warehouse = mallcore.client(kernel, "warehouse", "w-alpha", shop="alpha")
    assert (
        admin.post("/wms/warehouses", json={"code": "SH", "name": "SH", "region": "310000"}).status_code
        == 201
    )
    assert (
        warehouse.post("/wms/inbound", json={"warehouse": "SH", "sku": "ALPHA-1", "quantity": 10}).status_code
        == 201
    )
    alice = mallcore.client(kernel, "customer", "alice")
    references = []
    for _ in range(2):
        order = alice.post(
            "/orders",
            json={"shop": "alpha", "lines": [{"sku": "ALPHA-1", "quantity": 1}], "address": ADDRESS},
        )
        assert order.status_code == 201, order.text
        paid = alice.post(f"/orders/{order.json()['id']}/payments", json={"method": "sandbox"})
        assert paid.status_code == 201, paid.text
        references.append(paid.json()["reference"])
    merchant = mallcore.client(kernel, "merchant", "m-alpha", shop="alpha")
    merchant.post(
        "/promotion/coupon-templates",
        json={
            "shop": "alpha",
            "name": "c",
            "kind": "amount",
            "value": 100,
            "total": 5,
            "valid_to": "2999-01-01T00:00:00Z",
        },
    )
    return kernel, ["ZZ-SECRET-ADDR", "Alice Private", *references]


def _get_routes(app: Any) -> list[str]:
    paths = []
    for route in app.routes:
        if "GET" in getattr(route, "methods", ()) and not PUBLIC.match(route.path):
            paths.append(route.path)
    return sorted(set(paths))


_VALUES = {"provider": "sandbox", "customer": "alice", "shop": "alpha", "sku": "ALPHA-1", "code": "ALPHA-1"}


def _fill(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2)
        return "1" if kind == "int" else _VALUES.get(name, "alpha")

    return re.sub(r"\{(\w+):(\w+)\}", value, path)


def audit(mallcore: Any) -> tuple[int, list[str]]:
    kernel, markers = _seed(mallcore)
    routes = _get_routes(mallcore.app(kernel))
    checks, leaks = 0, []
    for role, subject, shop in OUTSIDERS:
        client = mallcore.client(kernel, role, subject, shop=shop)
        for path in routes:
            url = _fill(path)
            query = "?date=" + __import__("datetime").date.today().isoformat() if "statements" in url else ""
            r = client.get(url + query)
            checks += 1
            assert r.status_code < 500, (role, url, r.text)
            if r.status_code == 200 and any(m in r.text for m in markers):
                leaks.append(f"{role}@{shop} GET {url}")
    return checks, leaks


@pytest.mark.timeout(300)
def test_no_read_route_shows_a_shops_data_to_outsiders(mallcore):
    checks, leaks = audit(mallcore)
    print(f"authorization audit: {checks} requests (GET routes x outsider roles), {len(leaks)} leaked")
    assert checks > 200
    assert leaks == []
