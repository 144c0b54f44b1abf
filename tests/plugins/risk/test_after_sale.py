"""After-sale requests and refunds under risk: a refund held for review is not paid out
until released (finance or anyone else gets 409 refund_on_hold); a block rule refuses
the request; refund abuse holds new refund-only cases for review."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mallcore.kernel import utcnow
from mallcore.plugins.refund import sla

from .support import order, risk_kernel, rule, staff

CENTERS = ("catalog", "payment", "refund", "risk")


def paid_order(mallcore, kernel, customer="alice"):
    """A paid order the merchant shipped by hand (a refund only after shipment is reviewable)."""
    client = mallcore.client(kernel, "customer", customer)
    placed = client.post("/orders", json=order(quantity=2)).json()
    assert client.post(f"/orders/{placed['id']}/payments", json={"method": "sandbox"}).status_code == 201
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    for step in ("dispatch", "ship", "deliver"):  # the customer confirms delivery
        assert (client if step == "deliver" else merchant).post(
            f"/orders/{placed['id']}/{step}"
        ).status_code == 200
    return client, placed


def refund_only(client, placed, approve_with=None):
    line = placed["lines"][0]["id"]
    opened = client.post(
        "/after-sales",
        json={
            "order_id": placed["id"],
            "type": "refund_only",
            "lines": [{"line_id": line, "quantity": 1}],
            "reason": "no_reason",
        },
    )
    if approve_with is not None and opened.status_code == 201:
        approved = approve_with.post(f"/after-sales/{opened.json()['id']}/approve", json={})
        assert approved.status_code == 200, approved.text
    return opened


def test_a_refund_under_risk_review_is_not_paid_out_until_released(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    risk = staff(mallcore, kernel)
    rule(risk, "refund.amount >= 500", "review", name="refunds over 5.00", stages=["refund"])
    alice, placed = paid_order(mallcore, kernel)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    opened = refund_only(alice, placed, approve_with=merchant)  # approved: the refund requested
    assert opened.status_code == 201, opened.text
    assert alice.get(f"/orders/{placed['id']}").json()["refunded"] == 0
    review = risk.get("/risk/reviews", params={"kind": "refund"}).json()[0]
    assert review["facts"]["refund"]["amount"] == 1000 and review["co_reviewers"] == []
    # nobody pays it out past the open review
    kernel_refunds = kernel.refunds
    with pytest.raises(Exception) as held, kernel.orders.stage("test_approve", placed["id"]) as ctx:
        kernel_refunds.approve(ctx, review["refund_id"], "finance-1")
    assert getattr(held.value, "code", None) == "refund_on_hold"
    released = risk.post(f"/risk/reviews/{review['id']}/release", json={"note": "long-standing customer"})
    assert released.status_code == 200, released.text
    assert alice.get(f"/orders/{placed['id']}").json()["refunded"] == 1000


def test_a_refund_rejected_by_risk_is_refused_and_lowers_credit(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    risk = staff(mallcore, kernel)
    rule(risk, "true", "review", name="every refund", stages=["refund"])
    alice, placed = paid_order(mallcore, kernel)
    assert refund_only(alice, placed, mallcore.client(kernel, "merchant", "m1", shop="s1")).status_code == 201
    review = risk.get("/risk/reviews").json()[0]
    assert risk.post(f"/risk/reviews/{review['id']}/reject", json={"note": "abuse"}).status_code == 200
    assert alice.get(f"/orders/{placed['id']}").json()["refunded"] == 0
    assert risk.get("/risk/customers/alice").json()["abusive_refunds"] == 1


def test_a_block_rule_refuses_an_after_sale_request(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    rule(
        staff(mallcore, kernel),
        "case.type == 'refund_only' && customer.credit < 700",
        "block",
        stages=["after_sale"],
    )
    alice, placed = paid_order(mallcore, kernel)
    refused = refund_only(alice, placed)
    assert (refused.status_code, refused.json()["code"]) == (403, "risk_blocked")
    assert alice.get("/after-sales", params={"order_id": placed["id"]}).json() == []


def test_refund_abuse_holds_new_refund_only_cases_instead_of_approving_them(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    risk = staff(mallcore, kernel)
    rule(
        risk,
        "case.type == 'refund_only' && signals.paid_orders >= 2 && signals.refund_rate >= 50",
        "review",
        name="refund-only abuse",
        stages=["after_sale"],
    )
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    alice, first = paid_order(mallcore, kernel)
    assert refund_only(alice, first, merchant).status_code == 201  # refunded: 1 of 1 paid orders
    _, second = paid_order(mallcore, kernel)
    held = refund_only(alice, second)
    assert held.status_code == 201
    # the merchant-silence timer must not approve it: the refund center skips held cases
    later = utcnow() + timedelta(days=30)
    kernel.centers["refund"].clock = lambda: later
    sla.run(kernel.centers["refund"], later)
    review = risk.get("/risk/reviews", params={"kind": "case"}).json()[0]
    assert review["signals"]["refund_rate"] == 50
    # held: not approved (no refund) until risk releases it
    assert alice.get(f"/orders/{second['id']}").json()["refunded"] == 0
    assert merchant.get(f"/after-sales/{held.json()['id']}").json()["hold"] == "risk_review"
    assert risk.post(f"/risk/reviews/{review['id']}/release", json={"note": "ok"}).status_code == 200
    # released, it goes on as if never held: its deadline passed, so the next SLA run approves it
    assert sla.run(kernel.centers["refund"], later) == 1
    assert alice.get(f"/orders/{second['id']}").json()["refunded"] == 1000


def test_risk_staff_rejecting_a_held_case_has_it_rejected_and_lowers_credit(mallcore):
    kernel = risk_kernel(mallcore, centers=CENTERS)
    risk = staff(mallcore, kernel)
    rule(risk, "case.type == 'refund_only'", "review", name="every refund-only", stages=["after_sale"])
    alice, placed = paid_order(mallcore, kernel)
    case = refund_only(alice, placed).json()
    review = risk.get("/risk/reviews", params={"kind": "case"}).json()[0]
    assert risk.post(f"/risk/reviews/{review['id']}/reject", json={"note": "abuse ring"}).status_code == 200
    mine = alice.get(f"/after-sales/{case['id']}").json()
    assert mine["status"] == "rejected" and "abuse" not in str(mine)
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    staff_view = merchant.get(f"/after-sales/{case['id']}").json()
    decided = {"risk.review_rejected", "after_sale.hold_rejected", "after_sale.rejected"}
    # the review's entries name the risk staff member, though the stage ran as the system
    assert {(e["kind"], e["actor"]) for e in staff_view["timeline"] if e["kind"] in decided} == {
        (kind, "risk-1") for kind in decided
    }
    assert risk.get("/risk/customers/alice").json()["abusive_refunds"] == 1
