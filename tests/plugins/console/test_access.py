"""Every console route keeps to the API's rules: another shop's staff meet 404 (or their
own empty list), a customer is sent to sign in, and a form without its CSRF token is refused.

The routes are read from the app itself, so a page added later is checked too (a new
path parameter must be given a value here, or the test fails saying which).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
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
    kernel = story.kernel
    # shop s1's objects behind the console's forms: a settlement, a reconciliation mismatch,
    # a risk list entry and rule, a freight template
    finance = kit.client(kernel, "finance", "pf", platform=True)
    day = (datetime.now(UTC) - timedelta(days=3)).date().isoformat()
    r = finance.post("/finance/settlements", json={"shop": "s1", "start": day, "end": day})
    assert r.status_code == 201, r.text
    today = datetime.now(UTC).date().isoformat()
    header, *rows = finance.get("/payment/statements/sandbox", params={"date": today}).text.splitlines()
    cells = rows[0].split(",")
    cells[4] = str(int(cells[4]) + 1)  # the provider says one fen more for s1's charge
    r = finance.post(
        "/finance/reconciliations",
        content="\n".join([header, ",".join(cells)]),
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 201 and r.json()["items"][0]["shop"] == "s1", r.text
    risk = kit.client(kernel, "risk", "r1", shop="s1")
    entry = {"kind": "customer", "value": "mallory", "action": "review", "reason": "x", "shop": "s1"}
    assert risk.post("/risk/lists", json=entry).status_code == 201
    rule = {"name": "big", "condition": "order.total > 900000", "shop": "s1"}
    assert risk.post("/risk/rules", json=rule).status_code == 201
    body = {"shop": "s1", "name": "T", "mode": "piece", "default_rule": {"first_fee": 1000}}
    assert story.merchant.post("/tms/templates", json=body).status_code == 201
    ends = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    campaign = {"name": "c", "type": "percent_off", "ends_at": ends, "shop": "s1", "rules": {"percent": 10}}
    assert story.merchant.post("/promotion/campaigns", json=campaign).status_code == 201
    coupon = {"name": "k", "kind": "amount", "value": 500, "total": 10, "shop": "s1", "valid_days": 3}
    assert story.merchant.post("/promotion/coupon-templates", json=coupon).status_code == 201
    yield kit, story, order, case
    kit.close()


def snapshot(kit: Any, story: Story) -> dict[str, Any]:
    """What the forms could change, read through the API."""
    kernel = story.kernel
    finance = kit.client(kernel, "finance", "pf", platform=True)
    risk = kit.client(kernel, "risk", "r", platform=True)
    return {
        "settlements": finance.get("/finance/settlements").json(),
        "runs": [
            finance.get(f"/finance/reconciliations/{r['id']}").json()
            for r in finance.get("/finance/reconciliations").json()
        ],
        "lists": risk.get("/risk/lists").json(),
        "rules": risk.get("/risk/rules").json(),
        "templates": story.merchant.get("/tms/templates").json(),
        "campaigns": story.merchant.get("/promotion/campaigns").json(),
        "coupons": story.merchant.get("/promotion/coupon-templates").json(),
        "warehouses": story.warehouse.get("/wms/warehouses?include_inactive=true").json(),
    }


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
        "settlement_id": snapshot(kit, story)["settlements"][0]["id"],
        "mismatch_id": snapshot(kit, story)["runs"][0]["items"][0]["id"],
        "entry_id": snapshot(kit, story)["lists"][0]["id"],
        "rule_id": snapshot(kit, story)["rules"][0]["id"],
        # one name for two objects: the freight template and the coupon template, both s1's
        "template_id": snapshot(kit, story)["templates"][0]["id"],
        "campaign_id": snapshot(kit, story)["campaigns"][0]["id"],
        "code": "SH",
    }
    before = snapshot(kit, story)
    assert before["coupons"][0]["id"] == ids["template_id"]
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
            if template.startswith("/console/finance/reconciliations/"):
                # a run is the platform's, read by every shop's finance for their own lines (as the API)
                assert r.status_code == 200 and f'id="mismatch-{ids["mismatch_id"]}"' not in r.text, path
            elif template.startswith("/console/wms/warehouses/"):
                assert r.status_code == 200, path  # a platform object every shop's staff read (as the API)
            elif "{" in template:
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
            # 404; WMS's moves answer another shop's SKU with 403 shop_forbidden, in the API too,
            # and platform objects (settlements, warehouses) 403 platform_only to a shop's staff
            refused = r.status_code == 404 or (
                r.status_code == 403 and ("shop_forbidden" in r.text or "platform_only" in r.text)
            )
            # a form of their own (no object in the path): done in their shop, or refused for its fields
            assert refused or ("{" not in template and r.status_code in (303, 403, 422)), (
                path,
                r.status_code,
            )
            r = anonymous.post(path)
            assert r.status_code == 303 and "/console/sign-in" in r.headers["location"], path
    # nothing moved
    assert story.case(case["id"])["status"] == "refund_pending_review"
    assert story.merchant.get(f"/orders/{order['id']}").json()["status"] == "delivered"
    assert story.warehouse.get("/wms/stock/TEE-M").json() == stock
    assert snapshot(kit, story) == before


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
