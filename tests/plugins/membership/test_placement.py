"""Member benefits at placement: points spent, the member price, free-shipping vouchers."""

from __future__ import annotations

import msgspec

from mallcore.kernel import Principal
from mallcore.kernel.schemas import PlaceOrder
from tests.helpers import ADDRESS, snapshot

from .kit import Campaigns, Freight, Shop


def adjustments(order, code):
    return [a for a in order["adjustments"] if a["code"] == code]


def test_points_spent_at_placement_are_held_out_of_the_balance_and_come_back_on_cancel(mallcore):
    shop = Shop(mallcore)
    shop.give("alice", 5_000)
    order = shop.placed(points=1_000)
    [points] = adjustments(order, "points")
    assert (points["source"], points["phase"], points["amount"], points["funded_by"]) == (
        "membership",
        "points",
        -1_000,
        "platform",
    )
    assert "1000 points" in points["reason"]
    assert order["total"] == 9_000 and order["points"] == 1_000
    me = shop.member()
    assert (me["points"], me["held"]) == (4_000, 1_000)
    shop.cancel(order)
    me = shop.member()
    assert (me["points"], me["held"]) == (5_000, 0)
    assert [(r["kind"], r["delta"], r["balance"], r["order_id"]) for r in shop.ledger()] == [
        ("adjust", 5_000, 5_000, None),
        ("hold", -1_000, 4_000, order["id"]),
        ("release", 1_000, 5_000, order["id"]),
    ]
    shop.invariant()


def test_bad_points_figures_are_refused_with_their_code_and_nothing_is_written(mallcore):
    shop = Shop(mallcore, membership={"spend_multiple": 10})
    shop.give("alice", 20_000)
    shop.give("bob", 100)
    unknown = shop.admin.put("/membership/shops/s2", json={"enabled": False})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "shop_unknown")
    mallcore.product(shop.kernel, shop="s2", skus=[("S2-TEE", 10_000)])
    assert shop.merchant.put("/membership/shops/s2", json={"enabled": False}).status_code == 404  # not theirs
    assert shop.admin.put("/membership/shops/s2", json={"points": False}).status_code == 200
    before = snapshot(shop.kernel)
    cases = [
        ("bob", [("TEE", 1)], 200, {}, 422, "points_insufficient"),
        ("alice", [("TEE", 1)], 5_010, {}, 422, "points_over_cap"),  # half of 100.00 at most
        ("alice", [("TEE", 1)], 15, {}, 422, "points_not_multiple"),
        ("alice", [("TEE", 1)], 2**30, {}, 422, "points_too_large"),
        ("alice", [("TEE", 1)], 2**31, {}, 400, "invalid_request"),  # beyond the kernel's 32-bit column
        ("alice", [("TEE", 1)], -1, {}, 400, "invalid_request"),  # the kernel's schema
        ("alice", [("S2-TEE", 1)], 100, {"shop": "s2"}, 422, "points_not_accepted"),
    ]
    for customer, lines, points, extra, status, code in cases:
        r = shop.place(customer, lines, **extra, points=points) if points else None
        assert r is not None
        assert (r.status_code, r.json()["code"]) == (status, code), (points, r.text)
    assert shop.place("alice", points=5_010).json()["max_points"] == 5_000
    assert snapshot(shop.kernel) == before
    assert shop.placed(points=5_000)["total"] == 5_000  # the cap itself is fine


def test_the_member_price_follows_the_level_at_placement_time_and_comes_after_promotions(mallcore):
    shop = Shop(mallcore, extra=(Campaigns,))
    lines = [("TEE", 1), ("MUG", 2)]  # 200.00, 10% off: each line stands at 90.00
    assert adjustments(shop.placed(lines=lines), "member_price") == []  # a new member: no member price
    shop.set_level("alice", "gold")
    gold = shop.placed(lines=lines)
    prices = adjustments(gold, "member_price")
    # every line is eligible: one adjustment, shared over the lines like the promotion before it
    assert [(a["amount"], a["phase"], a["funded_by"]) for a in prices] == [(-900, "membership", "shop")]
    assert [x["amount"] for x in prices[0]["allocation"]] == [-450, -450]
    assert "Gold member price: 5% off (黄金会员专享价)" in prices[0]["reason"]
    assert gold["total"] == 18_000 - 900
    assert shop.merchant.put("/membership/shops/s1", json={"excluded_skus": ["MUG"]}).status_code == 200
    excluded = shop.placed(lines=lines)
    [tee_only] = adjustments(excluded, "member_price")
    assert (tee_only["amount"], tee_only["line_id"]) == (-450, excluded["lines"][0]["id"])
    assert "5% off TEE" in tee_only["reason"]
    shop.set_level("alice", "silver")
    silver = shop.placed(lines=lines)
    assert [a["amount"] for a in adjustments(silver, "member_price")] == [-180]  # 2% of TEE's 90.00


def test_a_preview_shows_benefits_and_what_points_could_pay_and_writes_nothing(mallcore):
    shop = Shop(mallcore)
    shop.set_level("alice", "gold")
    shop.give("alice", 3_000)
    before = snapshot(shop.kernel)
    body = {"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}], "address": ADDRESS}
    plain = shop.customer().post("/orders/preview", json=body, headers={"Accept-Language": "zh"}).json()
    assert [a["amount"] for a in adjustments(plain, "member_price")] == [-500]
    [hint] = [h for h in plain["hints"] if h["code"] == "points_available"]
    assert hint["data"] == {"points": 3_000, "balance": 3_000}
    assert "3000 积分" in hint["message"]
    spent = shop.customer().post("/orders/preview", json={**body, "points": 2_000}).json()
    assert spent["total"] == 9_500 - 2_000
    too_many = shop.customer().post("/orders/preview", json={**body, "points": 4_000})
    assert too_many.json()["code"] == "points_insufficient"
    assert snapshot(shop.kernel) == before


def test_a_free_shipping_voucher_waives_freight_within_the_levels_monthly_quota(mallcore):
    shop = Shop(mallcore, extra=(Freight,))
    shop.set_level("alice", "silver")  # one voucher a month
    shop.give("alice", 1_000)
    first = shop.placed(points=500)  # the voucher and points in the same statement
    [voucher] = adjustments(first, "free_shipping_voucher")
    assert (voucher["amount"], voucher["phase"], voucher["funded_by"]) == (
        -1_200,
        "shipping_discount",
        "platform",
    )
    assert first["shipping"] == 0 and first["total"] == 10_000 - 200 - 500  # silver: 2% member price
    assert shop.member()["vouchers"] | {"month": None} == {
        "month": None, "per_month": 1, "held": 1, "used": 0, "left": 0,
    }  # fmt: skip
    second = shop.placed()
    assert adjustments(second, "free_shipping_voucher") == [] and second["shipping"] == 1_200
    shop.cancel(first)  # unpaid: the voucher comes back
    assert shop.member()["vouchers"]["left"] == 1
    third = shop.placed()
    assert adjustments(third, "free_shipping_voucher")
    shop.pay(third)  # used at payment
    assert (shop.member()["vouchers"]["held"], shop.member()["vouchers"]["used"]) == (0, 1)
    shop.cancel(third)  # paid, then cancelled: returned
    assert shop.member()["vouchers"]["left"] == 1
    bob = shop.placed("bob")  # a member at the first level has no vouchers
    assert adjustments(bob, "free_shipping_voucher") == []


def test_membership_adds_at_most_two_statements_to_a_placement_and_none_when_nothing_applies(mallcore):
    """Against the same placement without membership, with freight and without: the kernel keeps the
    order's adjustments on its row, so a discount costs no statement of its own."""
    shop = Shop(mallcore, extra=(Freight,))
    bare = mallcore.kernel(centers=["catalog", "payment"], extra=[Freight])
    mallcore.product(bare, shop="s1", skus=[("TEE", 10_000)])
    shop.set_level("alice", "gold")
    shop.give("alice", 100_000)
    alice = Principal("alice", frozenset({"customer"}))

    def statements(kernel, points=0, address=ADDRESS):
        req = msgspec.convert(
            {"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}], "points": points, "address": address},
            PlaceOrder,
        )
        kernel.orders.place(alice, req)  # warm the caches
        with kernel.db.count_statements() as counter:
            kernel.orders.place(alice, req)
        return counter.count

    base = statements(bare)
    assert statements(shop.kernel, points=100) == base + 2  # member price and points: UPDATE, INSERT
    assert statements(shop.kernel, points=100, address=None) == statements(bare, address=None) + 2
    assert statements(shop.kernel) == base + 1  # member price: the member's level is read
    assert shop.merchant.put("/membership/shops/s1", json={"member_price": False}).status_code == 200
    assert statements(shop.kernel) == base + 1  # no member price, but a voucher might waive the freight
    assert statements(shop.kernel, address=None) == statements(bare, address=None)  # nothing applies
