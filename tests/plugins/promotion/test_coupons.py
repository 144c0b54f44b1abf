"""Coupons: claimed into a wallet, locked at placement, used at payment, returned when the order is
cancelled or fully refunded, never on a partial refund; refused with a specific code otherwise."""

from __future__ import annotations

from typing import Any

from mallcore.kernel import hookimpl
from tests.helpers import count, snapshot

from .support import Shop, later, promo

REFUND = ["catalog", "payment", "refund", "promotion"]


def pay(shop: Shop, order: dict[str, Any], customer: str = "alice") -> None:
    r = shop.customer(customer).post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
    assert r.status_code == 201, r.text


def refund_only(shop: Shop, order: dict[str, Any], lines: list[tuple[int, int]]) -> None:
    r = shop.customer().post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "refund_only",
            "reason": "not_wanted",
            "lines": [{"line_id": line_id, "quantity": q} for line_id, q in lines],
        },
    )
    assert r.status_code == 201, r.text


def test_a_claimed_coupon_takes_its_value_off_and_moves_through_the_wallet(mallcore):
    shop = Shop(mallcore)
    code = shop.coupon(name="满100减10", min_spend=10000)
    assert shop.wallet() == {code: "available"}
    order = shop.place([("A", 1), ("C", 1)], coupons=[code]).json()  # 120.00
    assert order["discount"] == 1000
    assert promo(order) == [(f"coupon:{code}", -1000, "coupon 满100减10: 10.00 off, goods 120.00 ≥ 100.00")]
    assert order["adjustments"][0]["phase"] == "coupon" and order["adjustments"][0]["funded_by"] == "shop"
    assert shop.wallet() == {code: "locked"}
    pay(shop, order)
    assert shop.wallet() == {code: "used"}
    assert shop.wallet(status="used") == {code: "used"} and shop.wallet(status="available") == {}
    mine = shop.customer().get(f"/promotion/coupons/{code}").json()
    assert (mine["status"], mine["order_id"], mine["label"]) == ("used", order["id"], "满100减10")


def test_a_coupon_is_refused_with_a_code_saying_why_and_nothing_is_written(mallcore):
    shop = Shop(mallcore)
    mine = shop.coupon(min_spend=10000)
    bobs = shop.coupon("bob")
    only_b = shop.coupon(skus=["B"])
    before = snapshot(shop.kernel)

    def refused(lines: list[tuple[str, int]], codes: list[str]) -> tuple[int, str]:
        r = shop.place(lines, coupons=codes)
        return r.status_code, r.json()["code"]

    assert refused([("A", 1)], ["NOSUCHCOUPON"]) == (422, "coupon_not_found")
    unknown = shop.place([("A", 1)], coupons=["NOSUCHCOUPON"]).json()
    foreign = shop.place([("A", 1)], coupons=[bobs]).json()
    # Bob's code answers exactly like one that does not exist (but for the code itself).
    assert {**foreign, "detail": "", "coupon": ""} == {**unknown, "detail": "", "coupon": ""}
    assert foreign["detail"] == f"no coupon {bobs} in your wallet"
    assert refused([("C", 1)], [mine]) == (422, "coupon_min_spend")
    assert refused([("A", 1)], [only_b]) == (422, "coupon_not_applicable")
    assert refused([("A", 1)], [mine, only_b]) == (422, "coupon_not_stackable")
    assert snapshot(shop.kernel) == before
    first = shop.place([("A", 1)], coupons=[mine])
    assert first.status_code == 201
    assert refused([("A", 1)], [mine]) == (422, "coupon_used")  # locked by the first order
    pay(shop, first.json())
    assert refused([("A", 1)], [mine]) == (422, "coupon_used")


def test_an_expired_coupon_is_refused_and_shown_expired(mallcore):
    shop = Shop(mallcore)
    code = shop.coupon()
    coupons = shop.kernel.metadatas["promotion"].tables["promotion_coupons"]
    from datetime import UTC, datetime, timedelta

    with shop.kernel.db.transaction() as conn:
        conn.execute(coupons.update().values(valid_to=datetime.now(UTC) - timedelta(seconds=1)))
    r = shop.place([("A", 1)], coupons=[code])
    assert (r.status_code, r.json()["code"]) == (422, "coupon_expired")
    assert shop.wallet() == {code: "expired"}
    assert shop.wallet(status="expired") == {code: "expired"} and shop.wallet(status="available") == {}
    stats = shop.merchant.get(f"/promotion/coupon-templates/{shop.template_ids()[0]}/stats").json()
    assert (stats["expired"], stats["available"]) == (1, 0)


def test_one_shop_coupon_and_one_platform_coupon_stack_the_shops_first(mallcore):
    shop = Shop(mallcore)
    own = shop.coupon(value=1000)
    platform = shop.template(by=shop.admin, shop=None, name="平台券", kind="percent", value=10, cap=5000)
    r = shop.customer().post(f"/promotion/coupon-templates/{platform['id']}/claim")
    code = r.json()["code"]
    order = shop.place([("A", 1)], coupons=[code, own]).json()  # 100.00 - 10.00 = 90.00; 10% = 9.00
    assert [(c, a) for c, a, _ in promo(order)] == [(f"coupon:{own}", -1000), (f"coupon:{code}", -900)]
    assert {a["code"]: a["funded_by"] for a in order["adjustments"]} == {
        f"coupon:{own}": "shop",
        f"coupon:{code}": "platform",
    }


def test_cancelling_the_order_returns_the_coupon_and_it_can_be_used_again(mallcore):
    shop = Shop(mallcore)
    code = shop.coupon()
    order = shop.place([("A", 1)], coupons=[code]).json()
    r = shop.customer().post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert shop.wallet() == {code: "available"}
    timeline = (
        shop.customer().get(f"/orders/{order['id']}/timeline", headers={"Accept-Language": "zh"}).json()
    )
    assert f"优惠券 {code} 已退回(订单已取消)" in [e["message"] for e in timeline]
    again = shop.place([("A", 1)], coupons=[code])
    assert again.status_code == 201 and again.json()["discount"] == 1000
    assert shop.wallet() == {code: "locked"}


def test_a_paid_order_cancelled_returns_its_coupon(mallcore):
    shop = Shop(mallcore)
    code = shop.coupon()
    order = shop.place([("A", 1)], coupons=[code]).json()
    pay(shop, order)
    assert shop.customer().post(f"/orders/{order['id']}/cancel", json={}).status_code == 200
    assert shop.wallet() == {code: "available"}


def test_a_full_refund_returns_the_coupon_a_partial_one_does_not(mallcore):
    shop = Shop(mallcore, centers=REFUND)
    full, part = shop.coupon(name="full"), shop.coupon(name="part")
    one = shop.place([("A", 1)], coupons=[full]).json()
    two = shop.place([("A", 1), ("B", 2)], coupons=[part]).json()
    pay(shop, one)
    pay(shop, two)
    refund_only(shop, two, [(two["lines"][1]["id"], 2)])
    assert shop.wallet() == {full: "used", part: "used"}
    refund_only(shop, one, [(one["lines"][0]["id"], 1)])
    assert shop.wallet() == {full: "available", part: "used"}
    # the rest of the second order: now fully refunded, its coupon comes back too
    refund_only(shop, two, [(two["lines"][0]["id"], 1)])
    assert shop.wallet() == {full: "available", part: "available"}
    stats = shop.merchant.get(f"/promotion/coupon-templates/{shop.template_ids()[0]}/stats").json()
    assert (stats["orders"], stats["refunded_orders"]) == (0, 1)


def test_the_full_refund_policy_can_keep_the_coupon_used(mallcore):
    shop = Shop(mallcore, centers=REFUND, settings={"promotion": {"return_coupons_on_full_refund": False}})
    code = shop.coupon()
    order = shop.place([("A", 1)], coupons=[code]).json()
    pay(shop, order)
    refund_only(shop, order, [(order["lines"][0]["id"], 1)])
    assert shop.wallet() == {code: "used"}


def test_claims_respect_the_per_customer_limit_and_the_total(mallcore):
    shop = Shop(mallcore)
    t = shop.template(total=2, per_customer=1)
    claim = f"/promotion/coupon-templates/{t['id']}/claim"
    assert shop.customer("alice").post(claim).status_code == 201
    r = shop.customer("alice").post(claim)
    assert (r.status_code, r.json()["code"]) == (409, "coupon_limit_reached")
    assert shop.customer("bob").post(claim).status_code == 201
    r = shop.customer("carol").post(claim)
    assert (r.status_code, r.json()["code"]) == (409, "coupons_sold_out")
    view = shop.merchant.get(f"/promotion/coupon-templates/{t['id']}").json()
    assert (view["issued"], view["left"]) == (2, 0)
    assert count(shop.kernel, "promotion_coupons") == 2


def test_a_claim_is_an_event_with_the_device_a_risk_center_can_count(mallcore):
    seen: list[dict[str, Any]] = []

    class Listener:
        name = "listener"

        @hookimpl
        def center_subscriptions(self, kernel: Any) -> list[Any]:
            return [("promotion.*", lambda k, event: seen.append(event.payload))]

    kernel = mallcore.kernel(centers=["catalog", "payment", "promotion"], extra=[Listener()])
    mallcore.product(kernel, shop="s1")
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    t = merchant.post(
        "/promotion/coupon-templates",
        json={"shop": "s1", "name": "c", "kind": "amount", "value": 100, "total": 5, "valid_to": later()},
    ).json()
    alice = mallcore.client(kernel, "customer", "alice")
    r = alice.post(f"/promotion/coupon-templates/{t['id']}/claim", headers={"X-Device-Id": "dev-42"})
    assert r.status_code == 201
    assert seen == [
        {
            "customer": "alice",
            "template_id": t["id"],
            "shop": "s1",
            "via": "claim",
            "device_id": "dev-42",
            "ip": "testclient",
        }
    ]
    assert count(kernel, "outbox", topic="promotion.coupon_claimed") == 1


def test_batch_codes_are_redeemed_once_into_a_wallet(mallcore):
    shop = Shop(mallcore)
    t = shop.template(total=3, claimable=False)
    r = shop.merchant.post(f"/promotion/coupon-templates/{t['id']}/codes", json={"count": 2})
    assert r.status_code == 201, r.text
    codes = r.json()["codes"]
    assert len(set(codes)) == 2 and all(len(c) == 16 for c in codes) and r.json()["left"] == 1
    r = shop.merchant.post(f"/promotion/coupon-templates/{t['id']}/codes", json={"count": 2})
    assert (r.status_code, r.json()["code"]) == (409, "coupons_sold_out")
    claim = shop.customer().post(f"/promotion/coupon-templates/{t['id']}/claim")
    assert (claim.status_code, claim.json()["code"]) == (404, "template_not_found")
    assert shop.place([("A", 1)], coupons=[codes[0]]).json()["code"] == "coupon_not_found"
    r = shop.customer().post("/promotion/coupons/redeem", json={"code": codes[0].lower()})
    assert (r.status_code, r.json()["status"]) == (201, "available")
    r = shop.customer("bob").post("/promotion/coupons/redeem", json={"code": codes[0]})
    assert (r.status_code, r.json()["code"]) == (404, "coupon_not_found")
    assert shop.wallet() == {codes[0]: "available"}
    listed = shop.merchant.get(f"/promotion/coupon-templates/{t['id']}/coupons").json()
    assert {c["code"]: c["status"] for c in listed} == {codes[0]: "available", codes[1]: "unredeemed"}
    assert shop.place([("A", 1)], coupons=[codes[0]]).status_code == 201


def test_another_center_grants_a_coupon_through_the_hook_in_its_own_transaction(mallcore):
    shop = Shop(mallcore)
    t = shop.template(total=1, per_customer=1, name="生日券")
    kernel = shop.kernel
    with kernel.db.transaction() as conn:
        code = kernel.hook.coupon_grant(
            kernel=kernel,
            conn=conn,
            customer="alice",
            template=t["id"],
            reason="birthday",
            source="membership",
        )
    mine = shop.customer().get(f"/promotion/coupons/{code}").json()
    assert (mine["source"], mine["reason"], mine["status"]) == ("grant", "birthday", "available")
    from mallcore.kernel import Conflict

    try:
        with kernel.db.transaction() as conn:
            kernel.hook.coupon_grant(
                kernel=kernel, conn=conn, customer="bob", template=t["id"], reason="x", source="m"
            )
    except Conflict as exc:
        assert exc.code == "coupons_sold_out"
    else:
        raise AssertionError("a used-up template granted a coupon")
    assert count(kernel, "promotion_coupons") == 1


def test_staff_see_their_shops_coupons_and_a_customer_only_their_own(mallcore):
    shop = Shop(mallcore)
    code = shop.coupon()
    shop.coupon("bob")
    assert list(shop.wallet("bob")) != [code]
    r = shop.customer("bob").get(f"/promotion/coupons/{code}")
    assert (r.status_code, r.json()["code"]) == (404, "coupon_not_found")
    staff = shop.merchant.get("/promotion/coupons", params={"customer": "alice"}).json()
    assert [c["code"] for c in staff] == [code]
    other = mallcore.client(shop.kernel, "merchant", "m2", shop="s2")
    assert other.get("/promotion/coupons").json() == []
