"""Refunds held for review (finance's part of the contract, played by a stand-in here).

The real finance center is tested with us in ``test_full_stack.py``; these
tests pin the refund center's side of the contract with a reviewer that
holds every after-sale refund and approves or rejects it through the
kernel, as ``POST /finance/refunds/{id}/approve|reject`` does.
"""

from __future__ import annotations

from typing import Any

from mallcore.kernel import Center, Principal, Refund, hookimpl
from mallcore.plugins.refund import sla

from .conftest import Shop, StandInCarrier

FINANCE = Principal("f1", frozenset({"finance"}), "s1")


class StandInReviewer(Center):
    name = "reviewer"

    @hookimpl
    def order_refund(self, ctx: Any, refund: Refund) -> None:
        if refund.status == "requested" and refund.source == "refund":
            refund.require_review("reviewer", "every after-sale refund")


def _shop(mallcore: Any, **settings: Any) -> Shop:
    carrier = StandInCarrier()
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "refund"],
        extra=[carrier, StandInReviewer],
        settings={"refund": settings},
    )
    mallcore.product(kernel, shop="s1", skus=[("TEE-M", 7900), ("MUG", 3900)])
    return Shop(
        kit=mallcore,
        kernel=kernel,
        carrier=carrier,
        alice=mallcore.client(kernel, "customer", "alice"),
        bob=mallcore.client(kernel, "customer", "bob"),
        merchant=mallcore.client(kernel, "merchant", "m1", shop="s1"),
        warehouse=mallcore.client(kernel, "warehouse", "w1", shop="s1"),
        admin=mallcore.client(kernel, "admin", "root"),
    )


def review(shop: Shop, refund_id: int, *, approve: bool, note: str = "") -> None:
    kernel = shop.kernel
    order_id = kernel.refunds.order_of(refund_id)
    with kernel.orders.stage("refund_review", order_id, FINANCE) as ctx:
        if approve:
            kernel.refunds.approve(ctx, refund_id, FINANCE.subject)
        else:
            kernel.refunds.reject(ctx, refund_id, FINANCE.subject, note)


def test_return_waits_for_finance_then_refunds(mallcore: Any) -> None:
    shop = _shop(mallcore)
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF3030303", "phone": "13800000000"},
    )
    pending = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).json()
    assert pending["status"] == "refund_pending_review"
    assert pending["refund_status"] == "pending_review" and pending["refund_amount"] == 7900
    zh = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    assert zh["status_text"] == "退款申请已提交,等待财务审核"
    assert any(e["message"].endswith("等待财务审核") for e in zh["timeline"])
    refund = shop.kernel.refunds
    with shop.kernel.db.transaction(write=False) as conn:
        held = refund.load(conn, pending["refund_id"])
    # what finance needs for maker-checker
    assert held.data == {"case_id": case["id"], "approved_by": "m1", "received_by": "w1"}
    assert held.requested_by == "w1"
    review(shop, pending["refund_id"], approve=True)
    done = shop.case(case["id"])
    assert done["status"] == "refunded" and done["refund_status"] == "refunded"
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["status"] == "closed" and o["refunded"] == o["paid"]


def test_finance_rejection_goes_back_to_the_merchant(mallcore: Any) -> None:
    shop = _shop(mallcore)
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    case = shop.open(order, "refund_only", [(order["lines"][1]["id"], 1)], reason="missing").json()
    pending = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert pending["status"] == "refund_pending_review"
    review(shop, pending["refund_id"], approve=False, note="photo evidence missing")
    back = shop.case(case["id"])
    assert back["status"] == "requested" and back["refund_status"] == "rejected"
    # the merchant must act: silence would reject the request, not resubmit the refund
    assert back["timer"] == "reject"
    assert any("photo evidence missing" in e["message"] for e in back["timeline"])
    assert back["refundable_amount"] == 3900
    again = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert again["status"] == "refund_pending_review" and again["refund_id"] != pending["refund_id"]
    assert again["timer"] != "reject"
    review(shop, again["refund_id"], approve=True)
    assert shop.case(case["id"])["status"] == "refunded"
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 3900


def test_a_silent_merchant_after_finance_rejection_ends_the_request(mallcore: Any) -> None:
    shop = _shop(mallcore)
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    case = shop.open(order, "refund_only", [(order["lines"][1]["id"], 1)], reason="missing").json()
    pending = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    review(shop, pending["refund_id"], approve=False, note="photo evidence missing")
    requested = shop.carrier.refund_calls.count("requested")
    shop.later(hours=47)
    assert sla.run(shop.center) == 0
    shop.later(hours=2)
    assert sla.run(shop.center) == 1
    ended = shop.alice.get(f"/after-sales/{case['id']}").json()
    assert ended["status"] == "rejected" and ended["timer"] is None and ended["due_at"] is None
    last = ended["timeline"][-1]
    assert last["kind"] == "after_sale.rejected" and "photo evidence missing" in last["message"]
    zh = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    assert "财务审核未通过(photo evidence missing)" in zh["timeline"][-1]["message"]
    # no refund was requested again, then or later
    shop.later(hours=100)
    assert sla.run(shop.center) == 0
    assert shop.carrier.refund_calls.count("requested") == requested
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_a_return_rejected_by_finance_and_left_by_the_merchant_is_rejected(mallcore: Any) -> None:
    shop = _shop(mallcore)
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF6060606", "phone": "13800000000"},
    )
    pending = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).json()
    review(shop, pending["refund_id"], approve=False, note="tags removed")
    back = shop.case(case["id"])
    assert back["status"] == "inspected" and back["timer"] == "reject"
    shop.later(hours=49)
    assert sla.run(shop.center) == 1
    ended = shop.case(case["id"])
    assert ended["status"] == "rejected" and ended["timer"] is None
    assert any("tags removed" in e["message"] and e["public"] for e in ended["timeline"])
    # staff learn the goods stayed with them unpaid
    assert any(e["kind"] == "after_sale.rejected_goods_kept" and not e["public"] for e in ended["timeline"])
    assert not any(
        e["kind"] == "after_sale.rejected_goods_kept"
        for e in shop.alice.get(f"/after-sales/{case['id']}").json()["timeline"]
    )


def test_refund_before_return_pays_at_approval(mallcore: Any) -> None:
    shop = _shop(mallcore, refund_before_return=True)
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    approved = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert approved["status"] == "awaiting_return" and approved["refund_status"] == "pending_review"
    review(shop, approved["refund_id"], approve=True)
    paid = shop.case(case["id"])
    assert paid["status"] == "awaiting_return" and paid["refund_status"] == "refunded"
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 7900
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF4040404", "phone": "13800000000"},
    )
    done = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).json()
    assert done["status"] == "refunded"
    # no second refund
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 7900


def test_refund_only_before_shipment_is_never_held_for_review(mallcore: Any) -> None:
    # A cancellation of those lines (issue 5): paid at once, as the kernel pays a cancelled order.
    shop = _shop(mallcore)
    order = shop.order([("TEE-M", 2)])
    case = shop.open(order, "refund_only", [(order["lines"][0]["id"], 1)]).json()
    assert case["status"] == "refunded" and case["refund_status"] == "refunded"
    assert case["timer"] is None
    kinds = [e["kind"] for e in shop.admin.get(f"/orders/{order['id']}/timeline").json()]
    assert "refund.pending_review" not in kinds and "refund.refunded" in kinds
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 7900
    # the rest of the order may still be cancelled; the finished case is left as it is
    r = shop.alice.post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 2 * 7900
    assert shop.case(case["id"])["status"] == "refunded"


def _early(mallcore: Any, quantity: int = 1) -> tuple[Shop, dict[str, Any], dict[str, Any]]:
    shop = _shop(mallcore, refund_before_return=True)
    order = shop.delivered_order([("TEE-M", quantity)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], quantity)]).json()
    approved = shop.merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert approved["status"] == "awaiting_return" and approved["refund_status"] == "pending_review"
    return shop, order, approved


def _refund_status(shop: Shop, refund_id: int) -> str:
    with shop.kernel.db.transaction(write=False) as conn:
        return shop.kernel.refunds.load(conn, refund_id).status


def _cannot_approve(shop: Shop, refund_id: int) -> None:
    import pytest

    from mallcore.kernel import Conflict

    with pytest.raises(Conflict) as refused:
        review(shop, refund_id, approve=True)
    assert refused.value.code == "refund_not_pending"


def test_an_early_refund_waiting_for_review_is_rejected_when_the_goods_never_come_back(
    mallcore: Any,
) -> None:
    shop, order, case = _early(mallcore)
    shop.later(days=7, minutes=1)
    assert sla.run(shop.center) == 1
    closed = shop.alice.get(f"/after-sales/{case['id']}").json()
    assert closed["status"] == "closed" and closed["refund_status"] == "rejected"
    assert _refund_status(shop, case["refund_id"]) == "rejected"
    _cannot_approve(shop, case["refund_id"])
    withdrawn = [e for e in closed["timeline"] if e["kind"] == "after_sale.refund_withdrawn"]
    assert withdrawn and "not sent back within 7 days" in withdrawn[0]["message"]
    # nothing left for staff to recover by hand: no money went out
    assert not any(e["kind"] == "after_sale.refund_without_goods" for e in shop.case(case["id"])["timeline"])
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_an_early_refund_waiting_for_review_is_rejected_when_the_goods_fail_inspection(
    mallcore: Any,
) -> None:
    shop, order, case = _early(mallcore)
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF7070707", "phone": "13800000000"},
    )
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": False, "note": "worn"})
    assert r.status_code == 200, r.text
    failed = r.json()
    assert failed["status"] == "rejected" and failed["refund_status"] == "rejected"
    assert any(e["kind"] == "after_sale.refund_withdrawn" for e in failed["timeline"])
    _cannot_approve(shop, case["refund_id"])
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_an_early_refund_is_redone_for_the_units_that_passed(mallcore: Any) -> None:
    shop, order, case = _early(mallcore, quantity=2)
    assert case["refund_amount"] == 2 * 7900
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF8080808", "phone": "13800000000"},
    )
    line_id = order["lines"][0]["id"]
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive",
        json={
            "inspections": [
                {"line_id": line_id, "quantity": 1, "passed": True},
                {"line_id": line_id, "quantity": 1, "passed": False},
            ]
        },
    )
    assert r.status_code == 200, r.text
    redone = r.json()
    assert redone["status"] == "refund_pending_review"
    assert redone["refund_id"] != case["refund_id"] and redone["refund_amount"] == 7900
    assert _refund_status(shop, case["refund_id"]) == "rejected"
    review(shop, redone["refund_id"], approve=True)
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 7900
