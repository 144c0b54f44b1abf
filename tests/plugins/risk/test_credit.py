"""信用分 and 恶意买家: completed orders raise a customer's credit, chargebacks lower it
within its bounds, and rules read it; merchants report customers, and a report risk
staff confirm lists what the reported order showed."""

from __future__ import annotations

from .support import order, risk_kernel, rule, staff

CENTERS = ("catalog", "payment", "risk")


def completed(mallcore, kernel, client):
    placed = client.post("/orders", json=order()).json()
    assert client.post(f"/orders/{placed['id']}/payments", json={"method": "sandbox"}).status_code == 201
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    for step in ("dispatch", "ship", "deliver", "complete"):  # the customer confirms delivery
        assert (client if step == "deliver" else merchant).post(
            f"/orders/{placed['id']}/{step}"
        ).status_code == 200
    return placed


def test_completed_orders_raise_credit_chargebacks_lower_it_within_bounds_and_rules_read_it(mallcore):
    kernel = risk_kernel(
        mallcore,
        centers=CENTERS,
        risk={"credit": {"order_completed": 10, "chargeback": -200, "minimum": 300}},
    )
    risk = staff(mallcore, kernel)
    alice = mallcore.client(kernel, "customer", "alice")
    placed = completed(mallcore, kernel, alice)
    profile = risk.get("/risk/customers/alice").json()
    assert (profile["credit"], profile["completed_orders"]) == (610, 1)
    for _ in range(2):
        r = risk.post(
            "/risk/customers/alice/chargebacks", json={"note": "card dispute", "order_id": placed["id"]}
        )
        assert r.status_code == 201, r.text
    profile = risk.get("/risk/customers/alice").json()
    assert (profile["credit"], profile["chargebacks"]) == (300, 2)  # 610 - 400, held at the minimum
    assert [e["kind"] for e in profile["events"]] == ["chargeback", "chargeback", "order_completed"]
    assert [e["credit"] for e in profile["events"]] == [300, 410, 610]
    rule(risk, "customer.credit < 400 && customer.chargebacks > 0", "review", name="disputed and low")
    assert alice.post("/orders", json=order()).json()["hold"] == "risk_review"
    bob = mallcore.client(kernel, "customer", "bob")
    assert bob.post("/orders", json=order()).json()["hold"] is None
    # a chargeback names an order of that customer, or none
    other = bob.post("/orders", json=order()).json()
    wrong = risk.post("/risk/customers/alice/chargebacks", json={"note": "x", "order_id": other["id"]})
    assert (wrong.status_code, wrong.json()["code"]) == (404, "order_not_found")


def test_a_confirmed_report_lists_the_customer_and_what_the_order_showed_on_the_shop_s_list(mallcore, peers):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    alice = peers.client(kernel, "203.0.113.40", subject="alice", **{"X-Device-Id": "alice-phone"})
    placed = alice.post("/orders", json=order()).json()
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    filed = merchant.post(
        "/risk/reports",
        json={"shop": "s1", "customer": "alice", "order_id": placed["id"], "reason": "claims never received"},
    )
    assert filed.status_code == 201, filed.text
    report = filed.json()
    # another shop's merchant sees nothing of it, and cannot report for s1
    stranger = mallcore.client(kernel, "merchant", "m2", shop="s2")
    assert stranger.get(f"/risk/reports/{report['id']}").status_code == 404
    body = {"shop": "s1", "customer": "alice", "reason": "x"}
    assert stranger.post("/risk/reports", json=body).json()["code"] == "shop_not_found"
    assert merchant.post(f"/risk/reports/{report['id']}/confirm", json={"note": "x"}).status_code == 403
    risk = staff(mallcore, kernel, shop="s1")
    confirmed = risk.post(
        f"/risk/reports/{report['id']}/confirm",
        json={"note": "pattern of false claims", "kinds": ["customer", "device", "phone"]},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "confirmed" and len(confirmed.json()["entries"]) == 3
    entries = risk.get("/risk/lists", params={"shop": "s1"}).json()
    assert {(e["kind"], e["value"], e["source"]) for e in entries} == {
        ("customer", "alice", "report"),
        ("device", "alice-phone", "report"),
        ("phone", "13800000000", "report"),
    }
    assert risk.get("/risk/customers/alice").json()["credit"] == 550
    # the shop's list: refused at s1, welcome elsewhere; a second account on the device too
    assert alice.post("/orders", json=order()).json()["code"] == "risk_blocked"
    assert alice.post("/orders", json=order(shop="s2", sku="OTHER-1")).status_code == 201
    second = peers.client(kernel, "203.0.113.41", subject="alice2", **{"X-Device-Id": "alice-phone"})
    assert second.post("/orders", json=order()).json()["code"] == "risk_blocked"
    again = risk.post(f"/risk/reports/{report['id']}/dismiss", json={"note": "x"})
    assert (again.status_code, again.json()["code"]) == (409, "report_closed")
