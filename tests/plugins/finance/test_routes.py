"""Who may call which finance route: the role rule of each controller, through HTTP."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.plugins.finance import tables as ft

from .kit import Shop

PERIOD = {"shop": "s1", "from": "2030-01-10", "to": "2030-01-10"}
# (method, path, query, JSON body) of the routes only platform finance (and admins) may call
PLATFORM = [
    ("POST", "/finance/entries", None, {"memo": "x", "currency": "CNY", "postings": []}),
    ("POST", "/finance/entries/1/reverse", None, {"memo": "x"}),
    ("POST", "/finance/reconciliations", None, None),
    ("GET", "/finance/reconciliations", None, None),
    ("POST", "/finance/settlements", None, {"shop": "s1", "start": "2030-01-10", "end": "2030-01-10"}),
    ("POST", "/finance/settlements/1/pay", None, None),
]
# ... and those every finance user may call (seeing their shop's part only)
FINANCE = [
    ("GET", "/finance/refunds", None, None),
    ("GET", "/finance/refunds/1", None, None),
    ("POST", "/finance/refunds/1/approve", None, None),
    ("POST", "/finance/refunds/1/reject", None, {"reason": "x"}),
    ("GET", "/finance/entries", None, None),
    ("GET", "/finance/entries/1", None, None),
    ("GET", "/finance/accounts", None, None),
    ("GET", "/finance/reconciliations/1", None, None),
    ("GET", "/finance/mismatches", None, None),
    ("POST", "/finance/mismatches/1/resolve", None, {"note": "x"}),
    ("GET", "/finance/statements", PERIOD, None),
    ("GET", "/finance/settlements", None, None),
    ("GET", "/finance/settlements/1", None, None),
    ("GET", "/finance/settlements/1/csv", None, None),
    ("GET", "/finance/reports/daily", {"from": "2030-01-10", "to": "2030-01-10"}, None),
]


def call(client, method, path, query, body):
    return client.request(method, path, params=query, json=body)


def test_every_finance_route_refuses_callers_without_the_finance_role(mallcore):
    shop = Shop(mallcore)
    anonymous = mallcore.client(shop.kernel, None)
    for route in PLATFORM + FINANCE:
        for caller in (shop.merchant, shop.alice, shop.client("warehouse", "w1")):
            r = call(caller, *route)
            assert (r.status_code, r.json()["code"]) == (403, "role_required"), route
        assert call(anonymous, *route).status_code == 401, route


def test_a_shops_finance_user_may_not_settle_pay_import_or_correct(mallcore):
    shop = Shop(mallcore)
    for route in PLATFORM:
        r = call(shop.fin1, *route)
        assert (r.status_code, r.json()["code"]) == (403, "platform_only"), route
    for route in FINANCE:
        assert call(shop.fin1, *route).status_code in (200, 404), route
    for table in (ft.entries, ft.settlements, ft.recon_runs):
        assert shop.rows(sa.select(sa.func.count()).select_from(table))[0][0] == 0


def test_platform_finance_and_admins_pass_the_platform_rule(mallcore):
    shop = Shop(mallcore)
    for caller in (shop.platform, shop.admin):
        for route in PLATFORM:
            r = call(caller, *route)
            assert r.status_code in (200, 400, 404, 422), (route, r.text)


def test_a_correction_and_its_reversal_replayed_with_their_keys_post_once(mallcore):
    shop = Shop(mallcore)
    body = {
        "memo": "goodwill",
        "currency": "CNY",
        "postings": [{"account": "shop_payable:s1", "amount": -500}, {"account": "suspense", "amount": 500}],
    }
    key = {"Idempotency-Key": "fix-1"}
    first = shop.platform.post("/finance/entries", json=body, headers=key)
    again = shop.platform.post("/finance/entries", json=body, headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert (again.json(), again.headers["Idempotent-Replayed"]) == (first.json(), "true")
    entry = first.json()["id"]
    undo = {"Idempotency-Key": "undo-1"}
    reversed_ = shop.platform.post(f"/finance/entries/{entry}/reverse", json={"memo": "oops"}, headers=undo)
    replayed = shop.platform.post(f"/finance/entries/{entry}/reverse", json={"memo": "oops"}, headers=undo)
    assert (reversed_.status_code, replayed.json()) == (201, reversed_.json())
    assert [e["kind"] for e in shop.platform.get("/finance/entries").json()] == ["reversal", "adjustment"]
    # the key names one route: the same key on the other route is refused
    other = shop.platform.post("/finance/entries", json=body, headers=undo)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
