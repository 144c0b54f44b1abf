"""Every console route keeps to the API's rules: another shop's staff meet 404 (or their
own empty list), a customer is sent to sign in, and a form without its CSRF token is refused.

The routes are read from the app itself, so a page added later is checked too (a new
path parameter must be given a value here, or the test fails saying which).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Browser
from .story import Story

EVERY_STAFF_ROLE = ("merchant", "warehouse", "finance", "risk")
# Fields enough for every console form to reach its object (and be refused there).
FORM = {"note": "x", "reason": "x", "unit-1-line": "1", "warehouse": "SH", "sku": "TEE-M", "quantity": "1"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mallcore.testing import Kit

    kit = Kit(tmp_path_factory.mktemp("console-access"))
    story = Story(kit, full=True)
    order, case = story.refund_waiting()
    yield kit, story, order, case
    kit.close()


def console_routes(app: Any) -> list[tuple[str, str, bool]]:
    """(method, path, public) of every console route."""
    out = []
    for route in app.routes:
        if not route.path.startswith("/console"):
            continue
        for handler in route.route_handlers:
            for method in sorted(handler.http_methods - {"HEAD", "OPTIONS"}):
                out.append((method, route.path, bool(handler.opt.get("console.public"))))
    return sorted(set(out))


def fill(path: str, method: str, ids: dict[str, Any]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "step":
            return "approve" if "/after-sales/" in path else "dispatch"
        assert name in ids, f"give the path parameter '{name}' of {method} {path} a value in test_access.py"
        return str(ids[name])

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def test_every_console_route_keeps_other_shops_and_customers_out(world: Any) -> None:
    kit, story, order, case = world
    kernel = story.kernel
    app = kit.app(kernel)
    ids = {
        "order_id": order["id"],
        "case_id": case["id"],
        "refund_id": case["refund_id"],
        "run_id": 1,
        "shipment_id": order["shipments"][0]["id"],
        "form": "inbound",
        "review_id": 1,  # (no risk review exists: 404 for everyone but an admin)
        "verdict": "release",
        "customer": "alice",
    }
    routes = [r for r in console_routes(app) if not r[2]]
    assert len(routes) >= 10, routes
    assert ("GET", "/console/after-sales/{case_id:int}", False) in console_routes(app)

    stock = story.warehouse.get("/wms/stock/TEE-M").json()
    stranger = Browser(kit, kernel)
    token = kit.token(kernel, list(EVERY_STAFF_ROLE), "s2-staff", "s2")
    assert stranger.post("/console/sign-in", {"token": token}).status_code == 303
    anonymous = Browser(kit, kernel)
    customer = kit.token(kernel, "customer", "alice")
    mine = (
        f"/console/orders/{order['id']}",
        f"/console/after-sales/{case['id']}",
        f"refund-{case['refund_id']}",
    )
    for method, template, _ in routes:
        path = fill(template, method, ids)
        if method == "GET":
            r = stranger.get(path)
            if "{" in template:
                assert r.status_code == 404, (path, r.status_code)
            else:
                assert r.status_code == 200, (path, r.status_code)
                assert not any(link in r.text for link in mine), path
            for who in (anonymous, Browser(kit, kernel)):
                headers = {} if who is anonymous else {"Authorization": f"Bearer {customer}"}
                r = who.get(path, headers=headers)
                assert r.status_code == 303 and "/console/sign-in" in r.headers["location"], (
                    path,
                    r.status_code,
                )
        else:
            assert stranger.post(path, csrf=False).status_code == 403, path  # no CSRF token
            r = stranger.post(path, FORM)
            # 404; WMS's moves answer another shop's SKU with 403 shop_forbidden, in the API too
            refused = r.status_code == 404 or (r.status_code == 403 and "shop_forbidden" in r.text)
            assert refused or ("{" not in template and r.status_code == 303), (path, r.status_code)
            r = anonymous.post(path)
            assert r.status_code == 303 and "/console/sign-in" in r.headers["location"], path
    # nothing moved
    assert story.case(case["id"])["status"] == "refund_pending_review"
    assert story.merchant.get(f"/orders/{order['id']}").json()["status"] == "delivered"
    assert story.warehouse.get("/wms/stock/TEE-M").json() == stock


def test_a_form_without_its_token_is_refused_even_for_the_shops_own_staff(world: Any) -> None:
    kit, story, _, _ = world
    order = story.delivered_order()
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    r = merchant.post(f"/console/orders/{order['id']}/complete", {"note": "x"}, csrf=False)
    assert r.status_code == 403 and "csrf_failed" in r.text
    assert story.merchant.get(f"/orders/{order['id']}").json()["status"] == "delivered"
    r = merchant.post(f"/console/orders/{order['id']}/complete", {"note": "done by hand"})
    assert r.status_code == 303
    assert story.merchant.get(f"/orders/{order['id']}").json()["status"] == "completed"
