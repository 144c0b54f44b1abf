"""Finance with the real refund center: after-sale refunds wait for finance, approval pays and books them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mallcore.kernel.plugins import installed_centers

from .kit import ADDRESS, Clock

pytestmark = pytest.mark.skipif("refund" not in installed_centers(), reason="refund center not installed")


def test_an_after_sale_refund_is_reviewed_paid_and_booked_and_a_rejection_goes_back(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "finance", "refund"])
    kernel.centers["finance"].clock = Clock()
    mallcore.product(kernel, shop="s1", skus=[("TEE", 1999), ("MUG", 3900)])
    alice = mallcore.client(kernel, "customer", "alice")
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    fin = mallcore.client(kernel, "finance", "f1", shop="s1")
    order = alice.post(
        "/orders",
        json={
            "shop": "s1",
            "lines": [{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 1}],
            "address": ADDRESS,
        },
    ).json()
    assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    tee, mug = order["lines"]
    for step in ("dispatch", "deliver"):  # the customer confirms delivery
        assert (alice if step == "deliver" else merchant).post(
            f"/orders/{order['id']}/{step}"
        ).status_code == 200

    def case_for(line: dict) -> dict:
        r = alice.post(
            "/after-sales",
            json={
                "order_id": order["id"],
                "type": "refund_only",
                "lines": [{"line_id": line["id"], "quantity": 1}],
                "reason": "no_reason",
            },
        )
        assert r.status_code == 201, r.text
        r = merchant.post(f"/after-sales/{r.json()['id']}/approve", json={"note": "ok"})
        assert r.status_code == 200, r.text
        return r.json()

    case = case_for(tee)
    assert case["status"] == "refund_pending_review" and case["refund_id"]
    review = fin.get(f"/finance/refunds/{case['refund_id']}").json()
    assert (review["status"], review["amount"], review["case_approved_by"]) == ("pending", 1999, "m1")
    # The merchant who approved the case, holding the finance role too, may not approve the refund.
    m1_fin = mallcore.client(kernel, ["merchant", "finance"], "m1", shop="s1")
    r = m1_fin.post(f"/finance/refunds/{case['refund_id']}/approve")
    assert r.status_code == 403 and r.json()["code"] == "maker_checker"
    r = fin.post(f"/finance/refunds/{case['refund_id']}/approve")
    assert r.status_code == 200, r.text
    assert alice.get(f"/after-sales/{case['id']}").json()["status"] == "refunded"
    refund = fin.get("/finance/entries", params={"kind": "refund"}).json()[0]
    assert refund["refund_id"] == case["refund_id"] and refund["amount"] == 1999
    # After delivery the refund comes back out of the shop's payable, with its commission.
    assert sorted((p["account"], p["amount"]) for p in refund["postings"]) == [
        ("commission", 100),
        ("provider_clearing:sandbox", -1999),
        ("refunds", -1999),
        ("refunds", 1999),
        ("shop_payable:s1", -100),
        ("shop_payable:s1", 1999),
    ]

    other = case_for(mug)
    r = fin.post(f"/finance/refunds/{other['refund_id']}/reject", json={"reason": "mug was used"})
    assert r.status_code == 200, r.text
    back = alice.get(f"/after-sales/{other['id']}").json()
    assert back["status"] != "refunded"
    assert any("mug was used" in e["message"] for e in back["timeline"])
    assert [e["kind"] for e in fin.get("/finance/entries").json()] == ["refund", "sale", "payment"]


def test_an_early_refund_whose_goods_never_come_back_leaves_the_queue_with_the_reason(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "finance", "refund"],
        settings={"refund": {"refund_before_return": True}},
    )
    mallcore.product(kernel, shop="s1", skus=[("TEE", 1999)])
    alice = mallcore.client(kernel, "customer", "alice")
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    fin = mallcore.client(kernel, "finance", "f1", shop="s1")
    order = alice.post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}], "address": ADDRESS}
    ).json()
    assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    for step in ("dispatch", "deliver"):  # the customer confirms delivery
        assert (alice if step == "deliver" else merchant).post(
            f"/orders/{order['id']}/{step}"
        ).status_code == 200
    case = alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "return_refund",
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
            "reason": "no_reason",
        },
    ).json()
    case = merchant.post(f"/after-sales/{case['id']}/approve").json()
    assert [q["refund_id"] for q in fin.get("/finance/refunds").json()] == [case["refund_id"]]

    from mallcore.plugins.refund import sla  # (here: the module skips where refund is not installed)

    refund_center = kernel.centers["refund"]
    later = refund_center.clock() + timedelta(days=8)
    refund_center.clock = lambda: later
    assert sla.run(refund_center) == 1
    assert fin.get("/finance/refunds").json() == []
    review = fin.get(f"/finance/refunds/{case['refund_id']}").json()
    assert review["status"] == "rejected" and review["decided_by"] == "system"
    assert "not sent back" in review["note"]
    r = fin.post(f"/finance/refunds/{case['refund_id']}/approve")
    assert r.status_code == 409 and r.json()["code"] == "refund_not_pending"
    assert alice.get(f"/orders/{order['id']}").json()["refunded"] == 0
