"""The orders contract (docs/architecture.md, "The HTTP contract"), through HTTP, as a shop would use it."""

import pytest

from tests.helpers import ADDRESS, count, order_body


@pytest.fixture
def shop(mallcore):
    kernel = mallcore.kernel()
    mallcore.product(kernel, shop="s1", skus=[("TEE", 1999, 200), ("MUG", 3900, 400)])
    mallcore.product(kernel, shop="s2", skus=[("HAT", 500)], name="Other shop's hat")
    return kernel


def place(client, **kw):
    return client.post("/orders", json=order_body(lines=[("TEE", 2), ("MUG", 1)], **kw))


def test_place_returns_totals_lines_and_a_signed_tracking_link(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    r = place(alice)
    assert r.status_code == 201
    order = r.json()
    assert order["status"] == "awaiting_payment"
    assert (order["currency"], order["subtotal"], order["discount"], order["shipping"], order["total"]) == (
        "CNY",
        7898,
        0,
        0,
        7898,
    )
    assert [(l["sku"], l["quantity"], l["unit_price"], l["total"]) for l in order["lines"]] == [
        ("TEE", 2, 1999, 3998),
        ("MUG", 1, 3900, 3900),
    ]
    assert all(isinstance(l["id"], int) for l in order["lines"])
    assert order["adjustments"] == []
    assert order["shipments"] == []
    assert order["tracking_url"].startswith(f"/track/{order['id']}?token=")
    assert order["address"] == ADDRESS
    token = order["tracking_url"].split("token=")[1]
    assert shop.auth.check_tracking_token(order["id"], token)
    assert not shop.auth.check_tracking_token(order["id"] + 1, token)


def test_the_same_sku_twice_is_one_line(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    r = alice.post("/orders", json=order_body(lines=[("TEE", 1), ("TEE", 2)]))
    assert [(l["sku"], l["quantity"]) for l in r.json()["lines"]] == [("TEE", 3)]


def test_get_list_and_visibility(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    bob = mallcore.client(shop, "customer", "bob")
    order_id = place(alice).json()["id"]
    assert alice.get(f"/orders/{order_id}").json()["id"] == order_id
    # another customer's order does not exist for them
    r = bob.get(f"/orders/{order_id}")
    assert (r.status_code, r.json()["code"]) == (404, "order_not_found")
    assert bob.get(f"/orders/{order_id}/timeline").status_code == 404
    assert bob.post(f"/orders/{order_id}/payments", json={"method": "sandbox"}).status_code == 404
    assert bob.post(f"/orders/{order_id}/cancel", json={}).status_code == 404
    assert [o["id"] for o in bob.get("/orders").json()] == []
    assert [o["id"] for o in alice.get("/orders").json()] == [order_id]
    # staff see their shop only
    s1 = mallcore.client(shop, "merchant", "m1", shop="s1")
    s2 = mallcore.client(shop, "merchant", "m2", shop="s2")
    assert s1.get(f"/orders/{order_id}").status_code == 200
    assert s2.get(f"/orders/{order_id}").status_code == 404
    assert [o["id"] for o in s2.get("/orders").json()] == []
    assert [o["id"] for o in s1.get("/orders?status=awaiting_payment").json()] == [order_id]
    assert mallcore.client(shop, "admin", "root").get(f"/orders/{order_id}").status_code == 200
    # no token, bad token
    assert mallcore.client(shop, None).get(f"/orders/{order_id}").json()["code"] == "unauthenticated"
    r = mallcore.client(shop, None).get(f"/orders/{order_id}", headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()["code"]) == (401, "invalid_token")


def test_pay_then_timeline_in_both_languages(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    order = place(alice).json()
    r = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox", "amount": order["total"]})
    assert r.status_code == 201
    payment = r.json()
    assert (payment["status"], payment["amount"], payment["order_status"]) == ("captured", 7898, "paid")
    assert payment["reference"].startswith("sbx_pay_")
    got = alice.get(f"/orders/{order['id']}").json()
    assert (got["status"], got["paid"]) == ("paid", 7898)
    assert got["extra"]["payments"][0]["status"] == "captured"
    en = alice.get(f"/orders/{order['id']}/timeline").json()
    assert [e["kind"] for e in en] == ["order.placed", "order.paid"]
    assert en[1]["message"] == "Payment received"
    assert set(en[0]) >= {"at", "kind", "actor", "message", "public"}
    zh = alice.get(
        f"/orders/{order['id']}/timeline", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}
    ).json()
    assert zh[1]["message"] == "已付款"
    # paying twice is refused
    again = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert (again.status_code, again.json()["code"]) == (409, "order_not_payable")


def test_a_wrong_amount_or_unknown_method_is_refused_and_nothing_changes(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    order = place(alice).json()
    r = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox", "amount": 1})
    assert (r.status_code, r.json()["code"]) == (422, "amount_mismatch")
    r = alice.post(f"/orders/{order['id']}/payments", json={"method": "bitcoin"})
    assert (r.status_code, r.json()["code"]) == (422, "payment_method_unsupported")
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    assert count(shop, "payment_payments") == 0


def test_a_declined_payment_is_recorded_and_leaves_the_order_unpaid(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    order = place(alice).json()
    r = alice.post(
        f"/orders/{order['id']}/payments", json={"method": "sandbox", "data": {"simulate": "decline"}}
    )
    assert (r.status_code, r.json()["code"]) == (402, "payment_failed")
    assert r.json()["payment"]["failure"] == "card_declined"
    assert alice.get(f"/orders/{order['id']}").json()["status"] == "awaiting_payment"
    assert count(shop, "payment_payments", status="failed") == 1
    kinds = [e["kind"] for e in alice.get(f"/orders/{order['id']}/timeline").json()]
    assert kinds == ["order.placed", "payment.failed"]
    # a later attempt succeeds
    ok = alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert ok.json()["order_status"] == "paid"


def test_cancel_before_payment_and_after_payment_refunds(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    first = place(alice).json()
    r = alice.post(f"/orders/{first['id']}/cancel", json={"reason": "changed my mind"})
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "cancelled", 0)
    second = place(alice).json()
    alice.post(f"/orders/{second['id']}/payments", json={"method": "sandbox"})
    r = alice.post(f"/orders/{second['id']}/cancel", json={"reason": "too slow"})
    assert (r.json()["status"], r.json()["paid"], r.json()["refunded"]) == ("cancelled", 7898, 7898)
    timeline = alice.get(f"/orders/{second['id']}/timeline").json()
    assert [e["kind"] for e in timeline][-3:] == ["refund.requested", "refund.refunded", "order.cancelled"]
    assert "too slow" in timeline[-1]["message"]
    payments = alice.get(f"/orders/{second['id']}").json()["extra"]["payments"]
    assert (payments[0]["status"], payments[0]["refunded"]) == ("refunded", 7898)
    # cancelling twice is a conflict
    again = alice.post(f"/orders/{second['id']}/cancel", json={})
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")


def test_staff_walk_an_order_to_completion_by_hand_and_cancel_is_refused_after_dispatch(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    staff = mallcore.client(shop, "warehouse", "w1", shop="s1")
    other = mallcore.client(shop, "warehouse", "w2", shop="s2")
    order = place(alice).json()
    oid = order["id"]
    r = staff.post(f"/orders/{oid}/dispatch")
    assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")
    alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    assert alice.post(f"/orders/{oid}/dispatch").status_code == 404
    assert other.post(f"/orders/{oid}/dispatch").status_code == 404
    assert staff.post(f"/orders/{oid}/dispatch").json()["status"] == "dispatched"
    r = alice.post(f"/orders/{oid}/cancel", json={})
    assert (r.status_code, r.json()["code"]) == (409, "invalid_transition")
    assert staff.post(f"/orders/{oid}/ship").json()["status"] == "shipped"
    # the shop cannot declare its own order delivered (it would release the money to itself)
    claimed = staff.post(f"/orders/{oid}/deliver", json={"note": "trust me"})
    assert (claimed.status_code, claimed.json()["code"]) == (403, "delivery_needs_confirmation")
    assert other.post(f"/orders/{oid}/deliver").status_code == 404
    delivered = alice.post(f"/orders/{oid}/deliver", json={"note": "left with the concierge"})
    assert delivered.json()["status"] == "delivered"
    assert staff.post(f"/orders/{oid}/complete").json()["status"] == "completed"
    timeline = alice.get(f"/orders/{oid}/timeline").json()
    # what staff noted when marking a step by hand is on that step's entry
    entry = next(e for e in timeline if e["kind"] == "order.delivered")
    assert entry["message"] == "Parcel delivered: left with the concierge"
    assert entry["data"] == {"from": "shipped", "note": "left with the concierge"}
    kinds = [e["kind"] for e in timeline]
    assert kinds == [
        "order.placed",
        "order.paid",
        "order.dispatched",
        "order.shipped",
        "order.delivered",
        "order.completed",
    ]


def test_a_customer_cannot_order_for_a_shop_with_another_shops_sku(mallcore, shop):
    alice = mallcore.client(shop, "customer", "alice")
    r = alice.post("/orders", json=order_body(shop="s1", lines=[("HAT", 1)]))
    assert (r.status_code, r.json()["code"]) == (422, "sku_not_in_shop")
    r = alice.post("/orders", json=order_body(shop="nowhere", lines=[("HAT", 1)]))
    assert (r.status_code, r.json()["code"]) == (422, "shop_unknown")


def test_staff_cannot_place_orders_and_preview_explains_prices(mallcore, shop):
    merchant = mallcore.client(shop, "merchant", "m1", shop="s1")
    r = merchant.post("/orders", json=order_body(lines=[("TEE", 1)]))
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    alice = mallcore.client(shop, "customer", "alice")
    preview = alice.post("/orders/preview", json=order_body(lines=[("TEE", 1)]))
    assert preview.status_code == 200
    assert preview.json()["total"] == 1999
    assert count(shop, "orders") == 0


def test_shops_are_listed_and_only_admins_create_them(mallcore, shop):
    admin = mallcore.client(shop, "admin", "root")
    assert {s["code"] for s in admin.get("/shops").json()} == {"s1", "s2"}
    r = admin.post("/shops", json={"code": "s3", "name": "Third", "currency": "USD"})
    assert (r.status_code, r.json()["currency"]) == (201, "USD")
    assert admin.post("/shops", json={"code": "s3", "name": "Again"}).json()["code"] == "shop_exists"
    assert (
        mallcore.client(shop, "merchant", "m", shop="s1")
        .post("/shops", json={"code": "x", "name": "x"})
        .status_code
        == 403
    )
    me = mallcore.client(shop, "merchant", "m", shop="s1").get("/me").json()
    assert me == {"subject": "m", "roles": ["merchant"], "shop": "s1", "platform": False}


def test_an_order_on_hold_is_not_dispatched(mallcore, shop):
    from mallcore.kernel import SYSTEM

    alice = mallcore.client(shop, "customer", "alice")
    staff = mallcore.client(shop, "warehouse", "w1", shop="s1")
    oid = place(alice).json()["id"]
    alice.post(f"/orders/{oid}/payments", json={"method": "sandbox"})
    with shop.orders.stage("hold", oid, SYSTEM) as ctx:
        ctx.set(hold="risk review: new device")
    r = staff.post(f"/orders/{oid}/dispatch")
    assert (r.status_code, r.json()["code"], r.json()["hold"]) == (
        409,
        "order_on_hold",
        "risk review: new device",
    )
    with shop.orders.stage("release", oid, SYSTEM) as ctx:
        ctx.set(hold=None)
    assert staff.post(f"/orders/{oid}/dispatch").json()["status"] == "dispatched"
