"""Points and growth through an order's life: earned at completion, spent at payment,
returned and clawed back by refunds in parts that add up to the whole."""

from __future__ import annotations

from mallcore.kernel import SYSTEM, share

from .kit import Freight, Shop


def kinds(shop, customer="alice", order_id=None):
    return [
        (r["kind"], r["delta"])
        for r in shop.ledger(customer)
        if order_id is None or r["order_id"] == order_id
    ]


def test_points_are_earned_at_completion_on_goods_paid_times_the_level_multiplier_never_on_freight(mallcore):
    shop = Shop(mallcore, extra=(Freight,))
    shop.give("bob", 1_000)
    order = shop.placed("bob", points=1_000)  # 100.00 of goods, 10.00 in points, 12.00 freight
    assert order["total"] == 9_000 + 1_200
    shop.pay(order, "bob")
    assert kinds(shop, "bob", order["id"]) == [("hold", -1_000), ("release", 1_000), ("spend", -1_000)]
    shop.complete(order)
    assert kinds(shop, "bob", order["id"])[-1] == ("earn", 90)  # 90.00 paid for goods, x1
    me = shop.member("bob")
    assert (me["points"], me["growth"]) == (90, 90)
    shop.set_level("alice", "gold")  # 5% off, x1.5, free-shipping vouchers
    gold = shop.placed(lines=[("MUG", 2)])
    shop.pay(gold)
    shop.complete(gold)
    assert kinds(shop, order_id=gold["id"]) == [("earn", 142)]  # 95.00 x 1.5 = 142.5, rounded down
    shop.invariant()


def test_partial_refunds_return_spent_points_and_claw_back_earned_ones_in_parts_that_add_up(mallcore):
    shop = Shop(mallcore)
    shop.give("alice", 7_777)
    order = shop.placed(lines=[("TEE", 1), ("MUG", 3)], points=7_777)  # 250.00 of goods
    shop.pay(order)
    shop.complete(order)
    earned = dict(kinds(shop, order_id=order["id"]))["earn"]
    assert earned == 172  # 172.23 paid for goods, a point a yuan, rounded down
    tee, mug = order["lines"]
    returned = clawed = 0
    steps = [(mug, 1), (mug, 1), (tee, 1), (mug, 1)]
    for line, quantity in steps:
        shop.refund(order["id"], [(line["id"], quantity)])
        moves = kinds(shop, order_id=order["id"])
        returned = sum(d for k, d in moves if k == "return")
        clawed = -sum(d for k, d in moves if k == "clawback")
        assert 0 <= clawed <= earned and 0 <= returned <= 7_777
        shop.invariant()
    assert (returned, clawed) == (7_777, earned)
    assert shop.member()["points"] == 7_777  # as before the order
    assert shop.member()["growth"] == 0
    # the first refund (one of three mugs) returned that mug's share of the points spent on mugs
    first_return = next(d for k, d in kinds(shop, order_id=order["id"]) if k == "return")
    mug_points = -next(a for a in order["adjustments"][0]["allocation"] if a["line_id"] == mug["id"])[
        "amount"
    ]
    assert first_return == share(mug_points, mug["total"], share(mug["total"], 3, 1))


def test_a_claw_back_beyond_the_balance_is_a_recorded_debt_that_the_next_points_pay_off(mallcore):
    shop = Shop(mallcore)
    first = shop.placed()
    shop.pay(first)
    shop.complete(first)  # earns 100
    second = shop.placed(lines=[("CAP", 1)], points=100)
    shop.pay(second)  # spends them
    shop.refund(first["id"], [(first["lines"][0]["id"], 1)])
    claw = shop.ledger()[-1]
    assert (claw["kind"], claw["delta"], claw["balance"], claw["debt"]) == ("clawback", -100, -100, 100)
    assert "100 points owed" in claw["reason"]
    me = shop.member()
    assert (me["points"], me["debt"]) == (-100, 100)
    r = shop.place(lines=[("CAP", 1)], points=1)
    assert r.json()["code"] == "points_insufficient"
    shop.give("alice", 150)
    assert (shop.member()["points"], shop.member()["debt"]) == (50, 0)
    shop.invariant()


def test_a_paid_order_cancelled_gets_its_points_back_once_and_an_unpaid_one_that_expires_releases_them(
    mallcore,
):
    shop = Shop(mallcore)
    shop.give("alice", 3_000)
    paid = shop.placed(points=1_000)
    shop.pay(paid)
    shop.cancel(paid)  # refunds the money too: the refund hook must not return the points again
    assert kinds(shop, order_id=paid["id"]) == [
        ("hold", -1_000), ("release", 1_000), ("spend", -1_000), ("return", 1_000),
    ]  # fmt: skip
    unpaid = shop.placed(points=2_000)
    with shop.kernel.orders.stage("expire", unpaid["id"], SYSTEM) as ctx:  # what WMS's expiry job does
        shop.kernel.orders.cancel_in(ctx, "not paid in time")
    assert kinds(shop, order_id=unpaid["id"]) == [("hold", -2_000), ("release", 2_000)]
    assert (shop.member()["points"], shop.member()["held"]) == (3_000, 0)
    shop.invariant()
