"""A review holds the order: it can be paid, not dispatched; release dispatches it,
reject cancels it and refunds what was paid; the timeline shows each step to staff
and nothing of why to the customer."""

from __future__ import annotations

import pytest

from .support import order, risk_kernel, rule, staff

CENTERS = ("catalog", "payment", "wms", "risk")


@pytest.fixture
def kernel(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    rule(staff(mallcore, kernel), "order.quantity >= 2", "review", name="two or more", score=30)
    return kernel


def held_and_paid(mallcore, kernel):
    alice = mallcore.client(kernel, "customer", "alice")
    placed = alice.post("/orders", json=order(quantity=2))
    assert (placed.status_code, placed.json()["hold"]) == (201, "risk_review"), placed.text
    paid = alice.post(f"/orders/{placed.json()['id']}/payments", json={"method": "sandbox"})
    assert paid.status_code == 201, paid.text
    return alice, placed.json()["id"]


def test_a_held_order_can_be_paid_but_not_dispatched(mallcore, kernel):
    alice, order_id = held_and_paid(mallcore, kernel)
    assert alice.get(f"/orders/{order_id}").json()["status"] == "paid"  # WMS did not dispatch it
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    refused = merchant.post(f"/orders/{order_id}/dispatch")
    assert (refused.status_code, refused.json()["code"]) == (409, "order_on_hold")


def test_the_queue_shows_held_orders_oldest_first_with_facts_and_fired_rules(mallcore, kernel):
    _, first = held_and_paid(mallcore, kernel)
    _, second = held_and_paid(mallcore, kernel)
    queue = staff(mallcore, kernel).get("/risk/reviews").json()
    assert [r["order_id"] for r in queue] == [first, second]
    top = queue[0]
    assert (top["kind"], top["stage"], top["status"], top["score"]) == ("order", "place", "open", 30)
    assert [r["name"] for r in top["rules"]] == ["two or more"]
    assert top["facts"]["order"]["quantity"] == 2 and top["facts"]["customer"]["id"] == "alice"
    assert "customer_orders_1h" in top["signals"]
    page = staff(mallcore, kernel).get("/risk/reviews", params={"after": top["id"]}).json()
    assert [r["order_id"] for r in page] == [second]
    # a shop's risk staff see their shop's queue; another shop's, nothing
    assert len(staff(mallcore, kernel, shop="s1", subject="r-s1").get("/risk/reviews").json()) == 2
    assert staff(mallcore, kernel, shop="s2", subject="r-s2").get("/risk/reviews").json() == []
    assert (
        staff(mallcore, kernel, shop="s2", subject="r-s2").get(f"/risk/reviews/{top['id']}").status_code
        == 404
    )


def test_release_dispatches_the_paid_order_and_notes_it_for_staff(mallcore, kernel):
    alice, order_id = held_and_paid(mallcore, kernel)
    risk = staff(mallcore, kernel)
    review = risk.get("/risk/reviews").json()[0]
    released = risk.post(f"/risk/reviews/{review['id']}/release", json={"note": "called the customer"})
    assert released.status_code == 200, released.text
    assert (released.json()["status"], released.json()["decided_by"]) == ("released", "risk-1")
    view = alice.get(f"/orders/{order_id}").json()
    assert (view["hold"], view["status"]) == (None, "dispatched")
    again = risk.post(f"/risk/reviews/{review['id']}/reject", json={"note": "changed my mind"})
    assert (again.status_code, again.json()["code"]) == (409, "review_closed")
    staff_timeline = (
        mallcore.client(kernel, "merchant", "m1", shop="s1").get(f"/orders/{order_id}/timeline").json()
    )
    kinds = [e["kind"] for e in staff_timeline]
    assert kinds.index("order.held") < kinds.index("order.released") < kinds.index("order.dispatched")
    note = next(e for e in staff_timeline if e["kind"] == "risk.review_released")
    assert "called the customer" in note["message"] and note["actor"] == "risk-1" and not note["public"]
    customer_timeline = alice.get(f"/orders/{order_id}/timeline").json()
    assert not {"order.held", "order.released", "risk.review_released"} & {
        e["kind"] for e in customer_timeline
    }


def test_reject_cancels_the_order_refunds_it_releases_stock_and_lowers_credit(mallcore, kernel):
    alice, order_id = held_and_paid(mallcore, kernel)
    risk = staff(mallcore, kernel)
    review = risk.get("/risk/reviews").json()[0]
    rejected = risk.post(
        f"/risk/reviews/{review['id']}/reject",
        json={"note": "stolen card"},
        headers={"Idempotency-Key": "rej-1"},
    )
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected"), rejected.text
    replay = risk.post(
        f"/risk/reviews/{review['id']}/reject",
        json={"note": "stolen card"},
        headers={"Idempotency-Key": "rej-1"},
    )
    assert replay.headers.get("Idempotent-Replayed") == "true"
    view = alice.get(f"/orders/{order_id}").json()
    assert (view["status"], view["refunded"], view["paid"]) == ("cancelled", 2000, 2000)
    wh = mallcore.client(kernel, "warehouse", "wh-admin", platform=True)
    stock = wh.get("/wms/stock", params={"sku": "SKU-1"}).json()
    assert stock and sum(s["reserved"] for s in stock) == 0, stock
    customer_timeline = alice.get(f"/orders/{order_id}/timeline").json()
    cancelled = next(e for e in customer_timeline if e["kind"] == "order.cancelled")
    assert "stolen" not in cancelled["message"] and "risk" not in cancelled["message"].lower()
    profile = risk.get("/risk/customers/alice").json()
    assert (profile["credit"], profile["rejected_reviews"]) == (550, 1)
    assert profile["events"][0]["kind"] == "review_rejected"


def test_an_unpaid_held_order_rejected_is_cancelled_without_a_refund(mallcore, kernel):
    alice = mallcore.client(kernel, "customer", "alice")
    placed = alice.post("/orders", json=order(quantity=3)).json()
    risk = staff(mallcore, kernel)
    review = risk.get("/risk/reviews").json()[0]
    assert risk.post(f"/risk/reviews/{review['id']}/reject", json={"note": "ring"}).status_code == 200
    view = alice.get(f"/orders/{placed['id']}").json()
    assert (view["status"], view["refunded"]) == ("cancelled", 0)


def test_merchants_see_decisions_on_their_shop_s_orders_only_and_customers_none(mallcore, kernel):
    _, order_id = held_and_paid(mallcore, kernel)
    mallcore.client(kernel, "customer", "bob").post("/orders", json=order(shop="s2", sku="OTHER-1"))
    s1 = mallcore.client(kernel, "merchant", "m1", shop="s1").get("/risk/decisions").json()
    assert {d["shop"] for d in s1} == {"s1"} and order_id in {d["order_id"] for d in s1}
    s2 = mallcore.client(kernel, "merchant", "m2", shop="s2")
    assert {d["shop"] for d in s2.get("/risk/decisions").json()} == {"s2"}
    assert s2.get(f"/risk/decisions/{s1[0]['id']}").status_code == 404
    assert s2.get("/risk/reviews").status_code == 403
    customer = mallcore.client(kernel, "customer", "alice").get("/risk/decisions")
    assert (customer.status_code, customer.json()["code"]) == (403, "role_required")
