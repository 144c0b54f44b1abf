"""财务审核: the refund review queue, maker-checker, two approvals above the threshold, shop scoping."""

from __future__ import annotations

from .kit import Shop


def order_with_refund(shop: Shop, quantity: int = 1, **kw) -> tuple[dict, dict]:
    order = shop.paid_order([("TEE", 5)])
    refund = shop.refund(order["id"], [(order["lines"][0]["id"], quantity)], **kw)
    return order, refund


def test_after_sale_refunds_wait_for_finance_and_approval_pays_out(mallcore):
    shop = Shop(mallcore)
    order, refund = order_with_refund(shop)
    assert refund["status"] == "pending_review"
    queue = shop.platform.get("/finance/refunds").json()
    assert [(q["refund_id"], q["status"], q["amount"], q["required_approvals"]) for q in queue] == [
        (refund["id"], "pending", 1999, 1)
    ]
    assert queue[0]["you_may_decide"] is True
    # Nothing is paid or booked while it waits.
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0
    assert [e["kind"] for e in shop.platform.get("/finance/entries").json()] == ["payment"]

    r = shop.fin1.post(f"/finance/refunds/{refund['id']}/approve", json={"note": "ok"})
    assert r.status_code == 200, r.text
    review = r.json()
    assert review["status"] == "approved" and review["decided_by"] == "fin-s1"
    assert [a["subject"] for a in review["approvals"]] == ["fin-s1"]
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 1999
    assert [e["kind"] for e in shop.platform.get("/finance/entries").json()] == ["refund", "payment"]
    timeline = shop.alice.get(f"/orders/{order['id']}/timeline").json()
    assert "refund.refunded" in [t["kind"] for t in timeline]
    assert shop.platform.get("/finance/refunds").json() == []
    again = shop.fin1b.post(f"/finance/refunds/{refund['id']}/approve")
    assert again.status_code == 409 and again.json()["code"] == "refund_not_pending"


def test_maker_checker_the_requester_case_approver_and_receiver_may_not_approve(mallcore):
    shop = Shop(mallcore)
    # The merchant who asks is requester; the case was approved by fin-s1 and received by fin-s1-lead
    # (people can hold several hats in a small shop).
    order, refund = order_with_refund(shop, approved_by="fin-s1", received_by="fin-s1-lead")
    for who, what in (
        (shop.fin1, "approved the after-sale case"),
        (shop.fin1b, "received the returned goods"),
    ):
        r = who.post(f"/finance/refunds/{refund['id']}/approve")
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "maker_checker" and what in r.json()["detail"]
        r = who.post(f"/finance/refunds/{refund['id']}/reject", json={"reason": "no"})
        assert r.status_code == 403 and r.json()["code"] == "maker_checker"
    views = {v["refund_id"]: v for v in shop.fin1.get("/finance/refunds").json()}
    assert views[refund["id"]]["you_may_decide"] is False
    # Whoever requested the refund cannot approve it, admin or not; another finance user can.
    checker = shop.client("finance", "fin-checker", shop="s1")
    order2 = shop.paid_order([("TEE", 1)])
    own = shop.refund(order2["id"], [(order2["lines"][0]["id"], 1)], approved_by=None, requester=shop.admin)
    r = shop.admin.post(f"/finance/refunds/{own['id']}/approve")
    assert r.status_code == 403 and r.json()["code"] == "maker_checker"
    assert "requested the refund" in r.json()["detail"]
    assert checker.post(f"/finance/refunds/{own['id']}/approve").status_code == 200
    # Refused attempts changed nothing.
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0
    assert shop.platform.get(f"/finance/refunds/{refund['id']}").json()["approvals"] == []


def test_above_the_threshold_two_different_finance_users_must_approve(mallcore):
    shop = Shop(mallcore, settings={"second_approval_above": 5000})
    order, small = order_with_refund(shop, quantity=2)  # 3998: one approval
    big = shop.refund(order["id"], [(order["lines"][0]["id"], 3)])  # 5997: two
    views = {v["refund_id"]: v for v in shop.platform.get("/finance/refunds").json()}
    assert views[small["id"]]["required_approvals"] == 1
    assert views[big["id"]]["required_approvals"] == 2

    r = shop.fin1.post(f"/finance/refunds/{big['id']}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_second_approval"
    assert [a["subject"] for a in r.json()["approvals"]] == ["fin-s1"]
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0  # not paid yet

    r = shop.fin1.post(f"/finance/refunds/{big['id']}/approve")
    assert r.status_code == 409
    assert r.json()["code"] == "second_approval_required"
    assert r.json()["status"] == "awaiting_second_approval"
    queue = shop.fin1.get("/finance/refunds").json()
    assert {(q["refund_id"], q["status"], q["you_may_decide"]) for q in queue} == {
        (small["id"], "pending", True),
        (big["id"], "awaiting_second_approval", False),
    }
    awaiting = shop.fin1.get("/finance/refunds", params={"status": "awaiting_second_approval"}).json()
    assert [q["refund_id"] for q in awaiting] == [big["id"]]

    r = shop.fin1b.post(f"/finance/refunds/{big['id']}/approve")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert [a["subject"] for a in r.json()["approvals"]] == ["fin-s1", "fin-s1-lead"]
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 5997
    staff_timeline = shop.merchant.get(f"/orders/{order['id']}/timeline").json()
    assert "finance.refund_first_approval" in [t["kind"] for t in staff_timeline]
    customer_timeline = shop.alice.get(f"/orders/{order['id']}/timeline").json()
    assert "finance.refund_first_approval" not in [t["kind"] for t in customer_timeline]


def test_rejection_puts_the_reason_on_the_timeline_and_books_nothing(mallcore):
    shop = Shop(mallcore, settings={"second_approval_above": 1000})
    order, refund = order_with_refund(shop)
    assert shop.fin1.post(f"/finance/refunds/{refund['id']}/approve").json()["status"] == (
        "awaiting_second_approval"
    )
    r = shop.fin1b.post(f"/finance/refunds/{refund['id']}/reject", json={"reason": "goods not received"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected" and r.json()["note"] == "goods not received"
    timeline = shop.alice.get(f"/orders/{order['id']}/timeline", headers={"Accept-Language": "zh"}).json()
    rejected = [t for t in timeline if t["kind"] == "refund.rejected"]
    assert rejected and "goods not received" in rejected[0]["message"]
    assert [e["kind"] for e in shop.platform.get("/finance/entries").json()] == ["payment"]
    r = shop.fin1b.post(f"/finance/refunds/{refund['id']}/reject", json={"reason": ""})
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request")  # a reason is required
    assert (
        shop.platform.get("/finance/refunds", params={"status": "rejected"}).json()[0]["refund_id"]
        == (refund["id"])
    )
    # The rejected amount can be asked for again.
    again = shop.refund(order["id"], [(order["lines"][0]["id"], 1)])
    assert again["status"] == "pending_review"


def test_a_shops_finance_user_sees_and_acts_on_that_shop_only(mallcore):
    shop = Shop(mallcore)
    _, r1 = order_with_refund(shop)
    o2 = shop.paid_order([("CAP", 1)], shop="s2")
    r2 = shop.refund(o2["id"], [(o2["lines"][0]["id"], 1)], requester=shop.merchant2, approved_by="m2")
    assert [q["refund_id"] for q in shop.fin1.get("/finance/refunds").json()] == [r1["id"]]
    assert [q["refund_id"] for q in shop.fin2.get("/finance/refunds").json()] == [r2["id"]]
    assert [q["refund_id"] for q in shop.platform.get("/finance/refunds").json()] == [r1["id"], r2["id"]]
    assert shop.fin1.get("/finance/refunds", params={"shop": "s2"}).json() == []
    for call in (
        lambda: shop.fin1.get(f"/finance/refunds/{r2['id']}"),
        lambda: shop.fin1.post(f"/finance/refunds/{r2['id']}/approve"),
        lambda: shop.fin1.post(f"/finance/refunds/{r2['id']}/reject", json={"reason": "x"}),
    ):
        r = call()
        assert r.status_code == 404, r.text
    assert shop.merchant.post(f"/finance/refunds/{r1['id']}/approve").status_code == 403
    assert shop.alice.get("/finance/refunds").status_code == 403
    assert shop.platform.post(f"/finance/refunds/{r2['id']}/approve").status_code == 200


def test_review_policy_can_be_switched_off_or_limited(mallcore):
    shop = Shop(mallcore, settings={"review_refunds": False})
    _, refund = order_with_refund(shop)
    assert refund["status"] == "refunded"
    shop = Shop(mallcore, settings={"review_from_amount": 2000})
    _, small = order_with_refund(shop)  # 1999
    _, big = order_with_refund(shop, quantity=2)
    assert (small["status"], big["status"]) == ("refunded", "pending_review")
    shop = Shop(mallcore, settings={"review_sources": ["refund"]})
    _, other = order_with_refund(shop)
    assert other["status"] == "refunded"


def test_an_approval_replayed_with_its_idempotency_key_pays_once(mallcore):
    shop = Shop(mallcore)
    order, refund = order_with_refund(shop)
    key = {"Idempotency-Key": "approve-once"}
    first = shop.fin1.post(f"/finance/refunds/{refund['id']}/approve", headers=key)
    again = shop.fin1.post(f"/finance/refunds/{refund['id']}/approve", headers=key)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json() and first.json()["status"] == "approved"
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 1999
    assert len(shop.platform.get("/finance/entries", params={"kind": "refund"}).json()) == 1
    other = shop.fin1.post(f"/finance/refunds/{refund['id']}/reject", json={"reason": "x"}, headers=key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"


def test_the_queue_takes_the_kernels_status_name_and_refuses_unknown_ones(mallcore):
    shop = Shop(mallcore)
    _, refund = order_with_refund(shop)
    listed = shop.platform.get("/finance/refunds", params={"status": "pending_review"}).json()
    assert [q["refund_id"] for q in listed] == [refund["id"]]
    r = shop.platform.get("/finance/refunds", params={"status": "waiting"})
    assert r.status_code == 422 and r.json()["code"] == "status_unknown"


def test_the_approval_on_the_timeline_reads_in_the_order_currency(mallcore):
    # JPY has no minor unit: 1999 is JP¥1999, never "JP¥19.99".
    shop = Shop(mallcore, config={"orders": {"currency": "JPY"}})
    order, refund = order_with_refund(shop)
    assert shop.fin1.post(f"/finance/refunds/{refund['id']}/approve").status_code == 200
    timeline = shop.alice.get(f"/orders/{order['id']}/timeline", headers={"Accept-Language": "zh"}).json()
    approved = next(t for t in timeline if t["kind"] == "finance.refund_approved")
    assert approved["message"] == "财务审核通过,退款 JP¥1999"
