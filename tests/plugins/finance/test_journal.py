"""The journal: what each event posts, that it balances, and that it agrees with the payment center."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.plugins.finance import tables as ft

from .kit import Shop, approve_all


def postings(entry: dict) -> list[tuple[str, int, str]]:
    return sorted((p["account"], p["amount"], p["role"]) for p in entry["postings"])


def test_payment_posts_provider_and_customer_clearing_with_the_provider_reference(mallcore):
    shop = Shop(mallcore)
    order = shop.paid_order([("TEE", 2)])
    entries = shop.platform.get("/finance/entries", params={"order_id": order["id"]}).json()
    assert [e["kind"] for e in entries] == ["payment"]
    entry = entries[0]
    payment = shop.alice.get(f"/orders/{order['id']}").json()["extra"]["payments"][0]
    assert entry["provider"] == "sandbox"
    assert entry["provider_ref"] == payment["reference"]
    assert entry["payment_id"] == payment["id"]
    assert postings(entry) == [
        ("customer_clearing", -3998, "payment"),
        ("provider_clearing:sandbox", 3998, "payment"),
    ]
    assert entry["postings"][0]["provider_ref"] == payment["reference"]


def test_a_declined_payment_posts_nothing(mallcore):
    shop = Shop(mallcore)
    order = shop.alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}]}).json()
    r = shop.alice.post(
        f"/orders/{order['id']}/payments", json={"method": "sandbox", "data": {"simulate": "decline"}}
    )
    assert r.status_code == 402
    assert shop.platform.get("/finance/entries").json() == []


def test_delivery_recognises_the_sale_less_the_shops_commission_rate(mallcore):
    shop = Shop(mallcore, settings={"commission_bp": 500, "commission_bp_by_shop": {"s2": 1000}})
    o1 = shop.paid_order([("TEE", 1)])  # 1999
    o2 = shop.paid_order([("CAP", 2)], shop="s2")  # 5000
    shop.deliver(o1["id"])
    shop.deliver(o2["id"], shop="s2")
    sale1 = shop.platform.get("/finance/entries", params={"order_id": o1["id"], "kind": "sale"}).json()[0]
    sale2 = shop.platform.get("/finance/entries", params={"order_id": o2["id"], "kind": "sale"}).json()[0]
    # 5% of 1999 = 99.95 -> 100 (half up); 10% of 5000 = 500
    assert postings(sale1) == [
        ("commission", -100, "commission"),
        ("customer_clearing", 1999, "sale"),
        ("shop_payable:s1", -1999, "sale"),
        ("shop_payable:s1", 100, "commission"),
    ]
    assert sale1["data"]["rate_bp"] == 500
    assert sale2["data"]["rate_bp"] == 1000 and sale2["data"]["commission"] == 500
    assert shop.balance("shop_payable:s1") == -1899
    assert shop.balance("shop_payable:s2") == -4500
    assert shop.balance("customer_clearing") == 0


def test_freight_goes_to_the_shop_or_to_the_platform_as_configured(mallcore):
    shop = Shop(mallcore, freight=True)
    order = shop.paid_order([("TEE", 1)])  # 1999 + 800 freight
    shop.deliver(order["id"])
    assert shop.balance("shop_payable:s1") == -(1999 + 800 - 100)
    assert shop.balance("shipping_income") == 0

    shop = Shop(mallcore, freight=True, settings={"freight_to": "platform"})
    order = shop.paid_order([("TEE", 1)])
    shop.deliver(order["id"])
    assert shop.balance("shop_payable:s1") == -(1999 - 100)
    assert shop.balance("shipping_income") == -800
    # Refunding the freight after the sale takes it back from shipping income.
    line = order["lines"][0]["id"]
    shop.refund(order["id"], [(line, 1)], shipping="remaining")
    approve_all(shop)
    assert shop.balance("shipping_income") == 0
    assert shop.balance("shop_payable:s1") == 0
    assert shop.balance("commission") == 0


def test_refunds_before_the_sale_come_out_of_clearing_and_after_it_out_of_the_shop(mallcore):
    shop = Shop(mallcore)
    order = shop.paid_order([("TEE", 4)])  # 7996
    line = order["lines"][0]["id"]
    shop.refund(order["id"], [(line, 1)])
    approve_all(shop)
    assert shop.balance("customer_clearing") == -(7996 - 1999)
    shop.deliver(order["id"])
    sale = shop.platform.get("/finance/entries", params={"kind": "sale"}).json()[0]
    assert sale["amount"] == 5997 and sale["data"]["commission"] == 300  # 5% of 5997 = 299.85
    shop.refund(order["id"], [(line, 2)])
    approve_all(shop)
    refund = shop.platform.get("/finance/entries", params={"kind": "refund"}).json()[0]
    # 3998 back from the shop, commission on what is left (1999 -> 100) returned: 200
    assert postings(refund) == [
        ("commission", 200, "commission"),
        ("provider_clearing:sandbox", -3998, "refund"),
        ("refunds", -3998, "refund"),
        ("refunds", 3998, "refund"),
        ("shop_payable:s1", -200, "commission"),
        ("shop_payable:s1", 3998, "refund"),
    ]
    assert shop.balance("shop_payable:s1") == -(1999 - 100)
    assert shop.balance("commission") == -100
    assert shop.balance("provider_clearing:sandbox") == 1999
    assert shop.balance("refunds") == 0


def test_a_cancelled_paid_order_is_refunded_without_review_and_booked(mallcore):
    shop = Shop(mallcore)
    order = shop.paid_order([("TEE", 1)])
    r = shop.alice.post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert shop.platform.get("/finance/refunds", params={"status": "all"}).json() == []
    kinds = [e["kind"] for e in shop.platform.get("/finance/entries").json()]
    assert kinds == ["refund", "payment"]
    assert shop.balance("customer_clearing") == 0
    assert shop.balance("provider_clearing:sandbox") == 0
    assert shop.provider_side() == shop.payment_tables()


def test_the_journal_agrees_with_the_payment_centers_tables(mallcore):
    shop = Shop(mallcore, freight=True)
    orders = [shop.paid_order([("TEE", 3), ("MUG", 1)]) for _ in range(3)]
    a, b, c = orders
    shop.refund(a["id"], [(a["lines"][0]["id"], 1)], shipping="proportional")
    shop.deliver(b["id"])
    shop.refund(b["id"], [(b["lines"][1]["id"], 1)])
    approve_all(shop)
    shop.alice.post(f"/orders/{c['id']}/cancel", json={"reason": "no"})
    assert shop.provider_side() == shop.payment_tables()
    assert len(shop.payment_tables()) == 3 + 3
    assert shop.unbalanced_entries() == []


def test_corrections_are_new_entries_and_the_original_is_never_changed(mallcore):
    shop = Shop(mallcore)
    body = {
        "memo": "goodwill credit to shop s1",
        "currency": "CNY",
        "postings": [
            {"account": "suspense", "amount": 500},
            {"account": "shop_payable:s1", "amount": -500},
        ],
    }
    r = shop.platform.post("/finance/entries", json=body)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["kind"] == "adjustment" and entry["shop"] == "s1"
    before = shop.rows(sa.select(ft.postings).where(ft.postings.c.entry_id == entry["id"]))

    r = shop.platform.post(f"/finance/entries/{entry['id']}/reverse", json={"memo": "posted by mistake"})
    assert r.status_code == 201, r.text
    reversal = r.json()
    assert reversal["kind"] == "reversal" and reversal["reverses"] == entry["id"]
    assert postings(reversal) == [("shop_payable:s1", 500, "adjustment"), ("suspense", -500, "adjustment")]
    assert shop.rows(sa.select(ft.postings).where(ft.postings.c.entry_id == entry["id"])) == before
    assert shop.balance("shop_payable:s1") == 0

    again = shop.platform.post(f"/finance/entries/{entry['id']}/reverse", json={"memo": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "entry_already_reversed"


def test_an_unbalanced_or_unknown_correction_is_refused_and_writes_nothing(mallcore):
    shop = Shop(mallcore)
    bad = {
        "memo": "typo",
        "currency": "CNY",
        "postings": [{"account": "suspense", "amount": 500}, {"account": "bank", "amount": -499}],
    }
    r = shop.platform.post("/finance/entries", json=bad)
    assert r.status_code == 422 and r.json()["code"] == "entry_unbalanced"
    assert r.json()["imbalance"] == {"CNY": 1}
    unknown = dict(bad, postings=[{"account": "cash_box", "amount": 5}, {"account": "bank", "amount": -5}])
    r = shop.platform.post("/finance/entries", json=unknown)
    assert r.status_code == 422 and r.json()["code"] == "account_unknown"
    r = shop.fin1.post("/finance/entries", json=dict(bad, postings=bad["postings"][:1] * 2))
    assert r.status_code == 403 and r.json()["code"] == "platform_only"
    assert shop.rows(sa.select(sa.func.count()).select_from(ft.entries))[0][0] == 0


def test_finance_users_see_their_shops_books_only(mallcore):
    shop = Shop(mallcore)
    o1 = shop.paid_order([("TEE", 1)])
    o2 = shop.paid_order([("CAP", 1)], shop="s2")
    shop.deliver(o1["id"])
    shop.deliver(o2["id"], shop="s2")
    mine = shop.fin1.get("/finance/entries").json()
    assert {e["shop"] for e in mine} == {"s1"} and len(mine) == 2
    assert len(shop.platform.get("/finance/entries").json()) == 4
    other = shop.platform.get("/finance/entries", params={"order_id": o2["id"]}).json()[0]
    assert shop.fin1.get(f"/finance/entries/{other['id']}").status_code == 404
    assert [a["account"] for a in shop.fin1.get("/finance/accounts").json()] == ["shop_payable:s1"]
    assert len(shop.platform.get("/finance/accounts").json()) > 3
    assert shop.alice.get("/finance/entries").status_code == 403
    assert shop.merchant.get("/finance/accounts").status_code == 403
    assert mallcore.client(shop.kernel, None).get("/finance/entries").status_code == 401


def test_other_centers_post_with_plain_dicts_and_an_unbalanced_entry_raises(mallcore):
    import pytest

    from mallcore.kernel import InvalidInput

    shop = Shop(mallcore)
    journal = shop.finance.journal
    lines = [
        {"account": "points_liability", "amount": 500, "role": "points"},
        {"account": "shop_payable:s1", "amount": -500, "role": "points"},
    ]
    with shop.kernel.db.transaction() as conn:
        entry_id = journal.post(
            conn, kind="points", currency="CNY", amount=500, shop="s1", posted_by="membership", lines=lines
        )
    assert shop.platform.get(f"/finance/entries/{entry_id}").json()["kind"] == "points"
    with pytest.raises(InvalidInput) as raised, shop.kernel.db.transaction() as conn:
        journal.post(conn, kind="points", currency="CNY", amount=1, posted_by="x", lines=lines[:1])
    assert raised.value.code == "entry_unbalanced"
    assert shop.balance("points_liability") == 500


def test_a_pending_payment_is_booked_when_the_provider_confirms_it(mallcore):
    shop = Shop(mallcore)
    order = shop.alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}]}).json()
    r = shop.alice.post(
        f"/orders/{order['id']}/payments", json={"method": "sandbox", "data": {"simulate": "pending"}}
    )
    assert r.status_code == 201 and r.json()["status"] == "pending"
    assert shop.platform.get("/finance/entries").json() == []
    r = shop.admin.post(f"/payment/sandbox/{r.json()['reference']}/capture")
    assert r.status_code == 200 and r.json()["status"] == "applied"
    entries = shop.platform.get("/finance/entries").json()
    assert [(e["kind"], e["amount"]) for e in entries] == [("payment", 1999)]
    assert shop.provider_side() == shop.payment_tables()


def test_a_refund_spread_over_two_payments_is_split_like_the_payment_center_does():
    from mallcore.kernel import Refund
    from mallcore.plugins.finance.journal import OrderBooks, _allocate

    books = OrderBooks(
        payments=[("sandbox", "p1", 1000), ("other", "p2", 500)],
        refunded_from={"p1": 800},
        held=700,
        shipping_refunded_before_sale=0,
        sale=None,
        commission=0,
        goods_refunded_after_sale=0,
        refunded_ids={1},
    )
    refund = Refund(
        id=2,
        order_id=1,
        shop="s1",
        status="refunded",
        currency="CNY",
        amount=600,
        shipping=0,
        reason="r",
        source="test",
        requested_by="m1",
        lines=[],
        provider_ref="r1,r2",
    )
    assert _allocate(books, refund) == [
        {"provider": "sandbox", "payment_ref": "p1", "amount": 200, "refund_ref": "r1"},
        {"provider": "other", "payment_ref": "p2", "amount": 400, "refund_ref": "r2"},
    ]


def test_a_correction_out_of_range_or_for_an_unknown_shop_or_order_is_refused(mallcore):
    shop = Shop(mallcore)
    s2_order = shop.paid_order([("CAP", 1)], shop="s2")
    ok = {
        "memo": "fix",
        "currency": "CNY",
        "postings": [{"account": "suspense", "amount": 500}, {"account": "bank", "amount": -500}],
    }
    before = shop.rows(sa.select(sa.func.count()).select_from(ft.entries))[0][0]
    huge = [{"account": "bank", "amount": 2**70}, {"account": "suspense", "amount": -(2**70)}]
    s1_payable = [{"account": "shop_payable:s1", "amount": 5}, {"account": "bank", "amount": -5}]
    for bad, status, code in (
        (dict(ok, postings=huge), 400, "invalid_request"),
        (dict(ok, order_id=2**63), 400, "invalid_request"),
        (dict(ok, shop="x" * 100), 400, "invalid_request"),
        (dict(ok, shop="nope"), 422, "shop_unknown"),
        (
            dict(ok, postings=[{"account": "shop_payable:nope", "amount": 5}, ok["postings"][1]]),
            422,
            "shop_unknown",
        ),
        (dict(ok, order_id=10**9), 422, "order_unknown"),
        # an order's correction concerns that order's shop
        (dict(ok, order_id=s2_order["id"], postings=s1_payable), 422, "entry_shops"),
    ):
        r = shop.platform.post("/finance/entries", json=bad)
        assert (status, code) == (r.status_code, r.json()["code"]), (bad, r.text)
    assert before == shop.rows(sa.select(sa.func.count()).select_from(ft.entries))[0][0]
    r = shop.platform.post("/finance/entries", json=dict(ok, order_id=s2_order["id"]))
    assert r.status_code == 201 and r.json()["shop"] == "s2", r.text
    # so the shop's own finance user sees it
    assert [e["id"] for e in shop.fin2.get("/finance/entries", params={"kind": "adjustment"}).json()] == [
        r.json()["id"]
    ]
