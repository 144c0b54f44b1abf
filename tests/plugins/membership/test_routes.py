"""The /membership routes: the contract's fields, who may see and do what, the wallet."""

from __future__ import annotations

from mallcore.kernel import Center, hookimpl
from tests.helpers import count

from .kit import Shop


class Coupons(Center):
    name = "coupons"

    @hookimpl
    def customer_coupons(self, kernel, conn, customer):
        return [{"code": "WELCOME-10", "name": "¥10 off ¥99", "status": "available", "valid_until": None}]


def test_the_member_page_and_the_points_history_carry_the_contracts_fields(mallcore):
    shop = Shop(mallcore)
    fresh = shop.member("alice")  # no member row yet: where a customer starts
    assert {k: fresh[k] for k in ("level", "growth", "points", "next_level", "growth_to_next")} == {
        "level": "normal", "growth": 0, "points": 0, "next_level": "silver", "growth_to_next": 1_000,
    }  # fmt: skip
    assert count(shop.kernel, "membership_members") == 0  # reading writes nothing
    shop.set_level("alice", "gold")
    shop.give("alice", 2_000)
    order = shop.placed(points=500)
    me = shop.customer().get("/membership/me", headers={"Accept-Language": "zh"}).json()
    assert {
        "customer",
        "level",
        "level_name",
        "growth",
        "next_level",
        "growth_to_next",
        "points",
        "benefits",
    } <= set(me)
    assert (me["customer"], me["level_name"], me["points"], me["held"]) == ("alice", "黄金会员", 1_500, 500)
    assert [b["code"] for b in me["benefits"]] == ["member_price", "free_shipping", "points_multiplier"]
    rows = shop.customer().get("/membership/me/points").json()
    assert {"at", "delta", "balance", "kind", "order_id", "case_id", "reason"} <= set(rows[0])
    assert [(r["kind"], r["delta"], r["balance"], r["order_id"]) for r in rows] == [
        ("hold", -500, 1_500, order["id"]),
        ("adjust", 2_000, 2_000, None),
    ]
    older = shop.customer().get(f"/membership/me/points?before={rows[0]['id']}").json()
    assert [r["kind"] for r in older] == ["adjust"]


def test_admins_adjust_points_with_a_reason_and_bad_adjustments_write_nothing(mallcore):
    shop = Shop(mallcore)
    body = {"delta": 300, "reason": "sorry for the late parcel"}
    first = shop.admin.post("/membership/members/alice/points", json=body, headers={"Idempotency-Key": "k1"})
    again = shop.admin.post("/membership/members/alice/points", json=body, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    row = first.json()
    assert (row["kind"], row["delta"], row["balance"], row["reason"], row["actor"]) == (
        "adjust", 300, 300, "sorry for the late parcel", "root",
    )  # fmt: skip
    refused = [
        ({"delta": -100}, 422, "reason_required"),
        ({"delta": -100, "reason": "   "}, 422, "reason_required"),
        ({"delta": 0, "reason": "nothing"}, 422, "points_delta_zero"),
        ({"delta": -301, "reason": "too much"}, 422, "points_insufficient"),
        ({"delta": 2**40, "reason": "overflow"}, 400, "invalid_request"),
    ]
    for body, status, code in refused:
        r = shop.admin.post("/membership/members/alice/points", json=body)
        assert (r.status_code, r.json()["code"]) == (status, code), body
    assert count(shop.kernel, "membership_points") == 1
    for who in (shop.merchant, shop.customer("alice")):
        r = who.post("/membership/members/alice/points", json={"delta": 5, "reason": "me"})
        assert (r.status_code, r.json()["code"]) == (403, "role_required")


def test_members_are_seen_by_themselves_and_by_staff_of_shops_they_ordered_from_only(mallcore):
    shop = Shop(mallcore)
    shop.placed("bob")  # bob has ordered from s1
    shop.give("bob", 5)
    shop.give("carol", 10)  # carol has not
    alice = shop.customer("alice")
    assert alice.get("/membership/members/alice").status_code == 200
    for path in (
        "/membership/members/bob",
        "/membership/members/bob/points",
        "/membership/members/bob/history",
    ):
        r = alice.get(path)
        assert (r.status_code, r.json()["code"]) == (404, "member_not_found"), path
    assert shop.merchant.get("/membership/members/bob").status_code == 200
    assert shop.merchant.get("/membership/members/carol").status_code == 404
    listed = shop.merchant.get("/membership/members").json()
    assert [m["customer"] for m in listed["items"]] == ["bob"]
    platform = mallcore.client(shop.kernel, "merchant", "ops", platform=True)
    assert [m["customer"] for m in platform.get("/membership/members").json()["items"]] == ["bob", "carol"]
    page = platform.get("/membership/members?limit=1").json()
    assert (len(page["items"]), page["next"]) == (1, "bob")
    assert [m["customer"] for m in platform.get("/membership/members?after=bob").json()["items"]] == ["carol"]
    assert platform.get("/membership/members?q=ca").json()["items"][0]["customer"] == "carol"
    assert alice.get("/membership/members").json()["code"] == "role_required"
    stats = platform.get("/membership/stats").json()
    assert (stats["members"], stats["points"], stats["outstanding"]) == (2, 15, 15)
    assert shop.merchant.get("/membership/stats").json()["code"] == "platform_only"


def test_the_wallet_shows_coupons_from_the_centers_that_keep_them_vouchers_and_points(mallcore):
    plain = Shop(mallcore)
    plain.give("alice", 120)
    wallet = plain.customer().get("/membership/me/wallet").json()
    assert (wallet["points"], wallet["coupons"], wallet["coupon_sources"]) == (120, [], [])
    with_coupons = Shop(mallcore, extra=(Coupons,))
    with_coupons.set_level("alice", "silver")
    wallet = with_coupons.customer().get("/membership/me/wallet").json()
    assert wallet["coupon_sources"] == ["coupons"]
    assert wallet["coupons"][0] | {} == {
        "code": "WELCOME-10", "name": "¥10 off ¥99", "status": "available", "valid_until": None, "source": "coupons",
    }  # fmt: skip
    assert (wallet["vouchers"]["per_month"], wallet["vouchers"]["left"]) == (1, 1)


def test_merchants_set_their_own_shops_part_in_the_program(mallcore):
    shop = Shop(mallcore)
    assert shop.merchant.get("/membership/shops/s1").json()["custom"] is False
    r = shop.merchant.put("/membership/shops/s1", json={"points": False, "excluded_skus": ["CAP"]})
    assert r.status_code == 200
    assert shop.merchant.get("/membership/shops/s1").json() | {} == {
        "shop": "s1", "enabled": True, "points": False, "member_price": True, "excluded_skus": ["CAP"], "custom": True,
    }  # fmt: skip
    assert [p["shop"] for p in shop.merchant.get("/membership/shops").json()] == ["s1"]
    other = mallcore.client(shop.kernel, "merchant", "m2", shop="s2")
    assert other.get("/membership/shops/s1").status_code == 404
    assert other.get("/membership/shops").json() == []
    shop.give("alice", 100)
    assert shop.place(points=100).json()["code"] == "points_not_accepted"
