"""Finance tells who paid for a discount: a shop is never charged for what the platform funds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from mallcore.plugins.finance import tables as ft
from tests.plugins.finance.kit import RefundDesk

from .support import later


def balance(kernel: Any, account: str) -> int:
    p = ft.postings.c
    with kernel.db.transaction(write=False) as conn:
        return int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(p.amount), 0)).where(p.account == account)
            ).scalar_one()
        )


def test_platform_funded_discounts_are_made_up_to_the_shop_and_taken_back_with_refunded_units(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "finance", "promotion"],
        extra=[RefundDesk],
        settings={"finance": {"review_refunds": False, "commission_bp": 500}},
    )
    mallcore.product(kernel, shop="s1", skus=[("A", 10000)])
    admin, merchant = (
        mallcore.client(kernel, "admin", "root"),
        mallcore.client(kernel, "merchant", "m1", shop="s1"),
    )
    alice = mallcore.client(kernel, "customer", "alice")
    campaign = {
        "shop": "s1",
        "name": "店铺9折",
        "type": "percent_off",
        "ends_at": later(),
        "rules": {"percent": 10},
    }
    assert merchant.post("/promotion/campaigns", json=campaign).status_code == 201
    template = admin.post(
        "/promotion/coupon-templates",
        json={"name": "平台券", "kind": "amount", "value": 1000, "total": 10, "valid_to": later()},
    ).json()
    code = alice.post(f"/promotion/coupon-templates/{template['id']}/claim").json()["code"]
    order = alice.post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "A", "quantity": 2}], "coupons": [code]}
    ).json()
    # 200.00, 10% off funded by the shop (20.00), 10.00 coupon funded by the platform: 170.00
    assert order["total"] == 17000
    assert {a["funded_by"]: -a["amount"] for a in order["adjustments"]} == {"shop": 2000, "platform": 1000}
    assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    for step in ("dispatch", "deliver"):  # the customer confirms delivery
        assert (alice if step == "deliver" else merchant).post(
            f"/orders/{order['id']}/{step}"
        ).status_code == 200

    # the shop is paid 170.00 the customer paid plus the platform's 10.00, less 5% commission on 170.00
    assert balance(kernel, "shop_payable:s1") == -(17000 + 1000 - 850)
    assert balance(kernel, "coupon_liability") == 1000
    today = datetime.now(UTC).date().isoformat()
    finance = mallcore.client(kernel, "finance", "fin", platform=True)
    statement = finance.get("/finance/statements", params={"shop": "s1", "from": today, "to": today}).json()
    assert (statement["gross_sales"], statement["commission"], statement["net_payable"]) == (
        18000,
        850,
        17150,
    )

    line = order["lines"][0]["id"]
    for _ in range(2):  # one unit, then the other: the platform's share comes back unit by unit
        r = merchant.post(
            f"/refunddesk/{order['id']}",
            json={"items": [{"line_id": line, "quantity": 1}], "approved_by": "m1"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["amount"] == 8500
    assert balance(kernel, "coupon_liability") == 0
    statement = finance.get("/finance/statements", params={"shop": "s1", "from": today, "to": today}).json()
    assert statement["refunds"] == 17000 + 1000
    assert statement["net_payable"] == 0  # every unit came back; the commission with them
    p = ft.postings.c
    with kernel.db.transaction(write=False) as conn:
        unbalanced = conn.execute(
            sa.select(p.entry_id).group_by(p.entry_id).having(sa.func.sum(p.amount) != 0)
        ).all()
    assert unbalanced == []


def test_shop_funded_discounts_post_nothing_more_than_the_sale(mallcore):
    kernel = mallcore.kernel(
        centers=["catalog", "payment", "finance", "promotion"], settings={"finance": {"commission_bp": 0}}
    )
    mallcore.product(kernel, shop="s1", skus=[("A", 10000)])
    merchant, alice = (
        mallcore.client(kernel, "merchant", "m1", shop="s1"),
        mallcore.client(kernel, "customer", "alice"),
    )
    campaign = {
        "shop": "s1",
        "name": "x",
        "type": "percent_off",
        "ends_at": later(),
        "rules": {"percent": 10},
    }
    assert merchant.post("/promotion/campaigns", json=campaign).status_code == 201
    order = alice.post("/orders", json={"shop": "s1", "lines": [{"sku": "A", "quantity": 1}]}).json()
    assert alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    for step in ("dispatch", "deliver"):  # the customer confirms delivery
        assert (alice if step == "deliver" else merchant).post(
            f"/orders/{order['id']}/{step}"
        ).status_code == 200
    assert balance(kernel, "shop_payable:s1") == -9000
    assert balance(kernel, "coupon_liability") == 0
