"""The finance center books points as they move: its points liability always equals what members hold."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mallcore.kernel import utcnow
from mallcore.plugins.finance import tables as ft
from mallcore.plugins.membership import tables as t

from .kit import Shop

FINANCE = {"finance": {"review_refunds": False, "commission_bp": 500}}


def balances(shop: Shop) -> dict[str, int]:
    finance = shop.mallcore.client(shop.kernel, "finance", "f-platform", platform=True)
    r = finance.get("/finance/accounts")
    assert r.status_code == 200, r.text
    return {a["account"]: a["balance"] for a in r.json()}


def held_by_members(shop: Shop) -> int:
    """Spendable plus held points of every member, as the membership center keeps them."""
    m = t.members.c
    with shop.kernel.db.transaction(write=False) as conn:
        return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(m.points + m.held), 0))).scalar_one())


def order_accounts(shop: Shop, order_id: int) -> dict[str, int]:
    p = ft.postings.c
    with shop.kernel.db.transaction(write=False) as conn:
        rows = conn.execute(
            sa.select(p.account, sa.func.sum(p.amount)).where(p.order_id == order_id).group_by(p.account)
        )
        return {account: int(total) for account, total in rows}


def test_the_points_liability_equals_the_points_members_hold_after_every_kind_of_movement(mallcore):
    shop = Shop(mallcore, centers=("finance",), settings=FINANCE)

    def liability_matches() -> None:
        assert -balances(shop).get("points_liability", 0) == held_by_members(shop)
        shop.invariant()

    shop.give("alice", 5_000)
    shop.give("bob", 800)
    liability_matches()
    first = shop.placed(lines=[("TEE", 1), ("MUG", 2)], points=3_000)  # 200.00 of goods
    liability_matches()  # held points are still owed
    shop.pay(first)
    liability_matches()
    shop.complete(first)  # earns 170 points on the 170.00 paid
    liability_matches()
    tee, mug = first["lines"]
    shop.refund(first["id"], [(mug["id"], 1)])  # after the sale: 1 of 2 mugs
    liability_matches()
    unpaid = shop.placed("bob", points=500)
    liability_matches()
    shop.cancel(unpaid, "bob")
    liability_matches()
    r = shop.admin.post("/membership/members/bob/points", json={"delta": -300, "reason": "duplicate welcome"})
    assert r.status_code == 201, r.text
    liability_matches()
    assert shop.center.expiry.run(utcnow() + timedelta(days=400)) > 0
    liability_matches()
    assert held_by_members(shop) == shop.member("alice")["points"] + shop.member("bob")["points"]


def test_a_full_refund_after_delivery_leaves_the_shop_and_the_platform_nothing_of_an_order_paid_with_points(
    mallcore,
):
    shop = Shop(mallcore, centers=("finance",), settings=FINANCE)
    shop.give("alice", 5_000)
    order = shop.placed(lines=[("TEE", 1), ("MUG", 1)], points=4_000)  # 150.00 of goods, 40.00 in points
    shop.pay(order)
    shop.complete(order)
    accounts = order_accounts(shop, order["id"])
    # the sale paid the shop the full price, less commission on all of it
    assert accounts["shop_payable:s1"] == -(15_000 - 750)
    assert accounts["commission"] == -750
    shop.refund(order["id"], [(line["id"], 1) for line in order["lines"]])
    after = order_accounts(shop, order["id"])
    assert after.get("shop_payable:s1", 0) == 0
    assert after.get("commission", 0) == 0
    assert after.get("customer_clearing", 0) == 0
    assert shop.member()["points"] == 5_000  # 4000 returned, the 110 earned clawed back
    assert -balances(shop)["points_liability"] == 5_000
