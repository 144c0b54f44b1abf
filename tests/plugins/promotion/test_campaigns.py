"""Campaigns price orders, explain every discount and stack like Taobao and JD."""

from __future__ import annotations

from .support import Shop, earlier, later, promo

TIERS = {"tiers": [{"threshold": 10000, "off": 1000}, {"threshold": 20000, "off": 3000}]}


def test_a_threshold_campaign_takes_off_the_highest_tier_reached_and_says_why(mallcore):
    shop = Shop(mallcore)
    c = shop.campaign("threshold_off", TIERS, name="满200减30")
    r = shop.place([("A", 2), ("C", 2)])  # 200.00 + 40.00 = 240.00
    assert r.status_code == 201, r.text
    order = r.json()
    assert (order["subtotal"], order["discount"], order["total"]) == (24000, 3000, 21000)
    assert promo(order) == [(f"campaign:{c['id']}", -3000, "满200减30: subtotal 240.00 ≥ 200.00")]
    adj = order["adjustments"][0]
    assert adj["funded_by"] == "shop" and adj["line_id"] is None
    assert sum(a["amount"] for a in adj["allocation"]) == -3000
    assert sum(line["total"] for line in order["lines"]) == order["total"]


def test_a_repeating_threshold_counts_every_step_up_to_its_cap(mallcore):
    shop = Shop(mallcore)
    shop.campaign(
        "threshold_off",
        {"tiers": [{"threshold": 10000, "off": 1000}], "repeat": True, "cap": 2500},
        name="Every 100 saves 10",
    )
    two = shop.place([("A", 2), ("C", 1)]).json()  # 220.00: 2 steps
    assert two["discount"] == 2000
    assert promo(two)[0][2] == "Every 100 saves 10 (每满100减10): subtotal 220.00 ≥ 100.00 \u00d7 2"
    five = shop.place([("A", 5)]).json()  # 500.00: 5 steps, capped at 25.00
    assert five["discount"] == 2500
    assert promo(five)[0][2].endswith("\u00d7 5, capped at 25.00")


def test_a_percent_campaign_rounds_to_the_fen_in_the_customers_favour_and_keeps_its_cap(mallcore):
    shop = Shop(mallcore, skus=[("A", 1005), ("B", 100000)])
    shop.campaign("percent_off", {"percent": 10}, name="Spring sale", skus=["A"])
    order = shop.place([("A", 1), ("B", 1)]).json()
    # 10% of 10.05 is 1.005: 1.01 off (a half goes to the customer), on line A only
    assert promo(order) == [(promo(order)[0][0], -101, "Spring sale (9折): 10% off 10.05")]
    line_a = next(line for line in order["lines"] if line["sku"] == "A")
    assert order["adjustments"][0]["line_id"] == line_a["id"] and line_a["discount"] == 101
    capped = Shop(mallcore)
    capped.campaign("percent_off", {"percent": 20, "cap": 1500})
    assert capped.place([("A", 1)]).json()["discount"] == 1500


def test_buy_one_get_one_half_price_takes_half_off_the_cheaper_units(mallcore):
    shop = Shop(mallcore)
    shop.campaign(
        "buy_x_get_y", {"buy": 1, "get": 1, "percent_off_get": 50}, name="第二件半价", skus=["B", "C"]
    )
    order = shop.place([("B", 1), ("C", 3)]).json()  # units 50, 20, 20, 20: two groups, 20 + 20 half off
    assert order["discount"] == 2000
    ((code, amount, reason),) = promo(order)
    assert reason == "第二件半价: 4 units in scope, 2 at 50% off"
    line_c = next(line for line in order["lines"] if line["sku"] == "C")
    assert line_c["discount"] == 2000  # the cheaper units' line carries it


def test_free_shipping_cancels_the_freight_tms_added_once_the_goods_reach_the_threshold(mallcore):
    shop = Shop(mallcore, centers=["catalog", "payment", "tms", "promotion"])
    tpl = {"name": "Std", "mode": "piece", "default": True, "default_rule": {"first": 1, "first_fee": 800}}
    assert shop.admin.post("/tms/templates", json={**tpl, "shop": "s1"}).status_code == 201
    c = shop.campaign("free_shipping", {"threshold": 9900}, name="包邮")
    cheap = shop.place([("C", 1)]).json()
    assert (cheap["shipping"], cheap["total"]) == (800, 2800)
    hint = shop.preview([("C", 1)]).json()["hints"]
    assert [h["message"] for h in hint] == ["add 79.00 more for free shipping"]
    order = shop.place([("A", 1)]).json()
    assert (order["shipping"], order["total"]) == (0, 10000)
    waiver = [a for a in order["adjustments"] if a["code"] == f"campaign:{c['id']}"]
    assert waiver[0]["phase"] == "shipping_discount" and waiver[0]["amount"] == -800
    assert waiver[0]["reason"] == "包邮 (满99包邮): goods 100.00 ≥ 99.00, freight 8.00 waived"


def test_one_campaign_per_stacking_group_the_best_for_the_customer_wins(mallcore):
    shop = Shop(mallcore)
    shop.campaign("threshold_off", TIERS, name="满减")  # 300.00: 30.00 off
    best = shop.campaign("percent_off", {"percent": 15}, name="85折")  # 45.00 off, same default group "order"
    order = shop.place([("A", 3)]).json()
    assert [(code, amount) for code, amount, _ in promo(order)] == [(f"campaign:{best['id']}", -4500)]


def test_campaigns_of_different_groups_stack_item_offers_first_then_order_offers(mallcore):
    shop = Shop(mallcore)
    half = shop.campaign("buy_x_get_y", {"buy": 1, "get": 1, "percent_off_get": 50}, skus=["A"])
    tiers = shop.campaign("threshold_off", TIERS)
    order = shop.place([("A", 2), ("C", 1)]).json()  # 220.00; A half price: 50.00 off -> 170.00 -> 满100减10
    assert [(code, amount) for code, amount, _ in promo(order)] == [
        (f"campaign:{half['id']}", -5000),
        (f"campaign:{tiers['id']}", -1000),
    ]
    assert order["total"] == 22000 - 6000


def test_a_platform_campaign_applies_in_every_shop_and_is_funded_by_the_platform(mallcore):
    shop = Shop(mallcore)
    platform = shop.campaign("threshold_off", TIERS, by=shop.admin, shop=None, name="跨店满减")
    own = shop.campaign("threshold_off", TIERS, name="店铺满减")
    order = shop.place([("A", 2)]).json()
    funded = {code: (amount, a) for code, amount, a in promo(order) for a in [None]}
    assert set(funded) == {f"campaign:{own['id']}", f"campaign:{platform['id']}"}
    by_code = {a["code"]: a["funded_by"] for a in order["adjustments"]}
    assert by_code == {f"campaign:{own['id']}": "shop", f"campaign:{platform['id']}": "platform"}
    other = (
        shop.customer()
        .post("/orders", json={"shop": "s2", "lines": [{"sku": "OTHER", "quantity": 4}]})
        .json()
    )
    assert [a["code"] for a in other["adjustments"]] == [f"campaign:{platform['id']}"]


def test_a_campaign_outside_its_window_or_ended_early_gives_nothing(mallcore):
    shop = Shop(mallcore)
    scheduled = shop.campaign("percent_off", {"percent": 10}, starts_at=later(1), ends_at=later(2))
    assert scheduled["status"] == "scheduled"
    live = shop.campaign("percent_off", {"percent": 20}, stacking_group="g2")
    assert live["status"] == "live"
    assert shop.place([("A", 1)]).json()["discount"] == 2000
    ended = shop.merchant.post(f"/promotion/campaigns/{live['id']}/end")
    assert (ended.status_code, ended.json()["status"]) == (200, "ended")
    assert shop.place([("A", 1)]).json()["discount"] == 0
    again = shop.merchant.post(f"/promotion/campaigns/{live['id']}/end")
    assert (again.status_code, again.json()["code"]) == (409, "campaign_ended")
    listed = shop.merchant.get("/promotion/campaigns", params={"status": "ended"}).json()
    assert [c["id"] for c in listed] == [live["id"]]


def test_a_category_campaign_covers_the_category_and_the_ones_below_it(mallcore):
    shop = Shop(mallcore)
    admin = shop.admin
    clothing = admin.post("/catalog/categories", json={"name": "Clothing", "kind": "back"}).json()
    tees = admin.post(
        "/catalog/categories", json={"name": "Tees", "kind": "back", "parent_id": clothing["id"]}
    ).json()
    product = mallcore.product(shop.kernel, shop="s1", skus=[("TEE", 8000)], name="Tee")
    r = admin.patch(f"/catalog/products/{product['id']}", json={"category_id": tees["id"]})
    assert r.status_code == 200, r.text
    c = shop.campaign("percent_off", {"percent": 50}, categories=[clothing["id"]])
    order = shop.place([("TEE", 1), ("A", 1)]).json()
    assert promo(order) == [(f"campaign:{c['id']}", -4000, "percent_off (5折): 50% off 80.00")]


def test_the_preview_shows_the_same_discounts_and_what_could_still_be_unlocked_in_two_languages(mallcore):
    shop = Shop(mallcore)
    c = shop.campaign("threshold_off", TIERS, name="满减")
    body_lines = [("A", 1), ("C", 4)]  # 180.00: 满100减10 reached, 20.00 short of 满200减30
    preview = shop.preview(body_lines).json()
    assert preview["hints"] == [
        {
            "source": "promotion",
            "message": "add 20.00 more for 满200减30",
            "code": f"campaign:{c['id']}",
            "data": {"campaign_id": c["id"], "short_by": 2000, "threshold": 20000, "rule": "满200减30"},
        }
    ]
    zh = (
        shop.customer()
        .post(
            "/orders/preview",
            json={"shop": "s1", "lines": [{"sku": s, "quantity": q} for s, q in body_lines]},
            headers={"Accept-Language": "zh-CN"},
        )
        .json()
    )
    assert zh["hints"][0]["message"] == "再买 20.00 元可享满200减30"
    order = shop.place(body_lines).json()
    keep = ("subtotal", "discount", "shipping", "total")
    assert {k: preview[k] for k in keep} == {k: order[k] for k in keep}
    assert [(a["code"], a["amount"], a["reason"]) for a in preview["adjustments"]] == promo(order)


def test_an_exchange_replacement_order_gets_no_promotion(mallcore):
    shop = Shop(mallcore)
    shop.campaign("percent_off", {"percent": 10})
    from mallcore.kernel import SYSTEM
    from mallcore.kernel.schemas import LineIn, PlaceOrder

    order = shop.place([("A", 1)]).json()
    with shop.kernel.orders.stage("exchange", order["id"], SYSTEM) as ctx:
        view = shop.kernel.orders.place_in(
            ctx,
            PlaceOrder(shop="s1", lines=[LineIn(sku="A", quantity=1)]),
            customer="alice",
            no_charge="exchange",
        )
    assert [a.code for a in shop.kernel.order_views.get(SYSTEM, view.id).adjustments] == ["no_charge"]
    assert "promotions" not in view.extra


def test_campaign_lists_page_newest_first_and_stats_count_paid_orders(mallcore):
    shop = Shop(mallcore)
    ids = [shop.campaign("percent_off", {"percent": 5}, stacking_group=f"g{i}")["id"] for i in range(3)]
    page = shop.merchant.get("/promotion/campaigns", params={"limit": 2}).json()
    assert [c["id"] for c in page] == ids[::-1][:2]
    rest = shop.merchant.get("/promotion/campaigns", params={"limit": 2, "before": page[-1]["id"]}).json()
    assert [c["id"] for c in rest] == [ids[0]]
    paid = shop.place([("A", 1)]).json()
    assert (
        shop.customer().post(f"/orders/{paid['id']}/payments", json={"method": "sandbox"}).status_code == 201
    )
    shop.place([("B", 1)])
    stats = shop.merchant.get(f"/promotion/campaigns/{ids[0]}/stats").json()
    # the unpaid order does not count yet
    assert {k: stats[k] for k in ("orders", "discount", "gmv", "refunded_orders")} == {
        "orders": 1,
        "discount": 500,
        "gmv": paid["total"],
        "refunded_orders": 0,
    }


def test_the_past_is_no_window(mallcore):
    shop = Shop(mallcore)
    r = shop.merchant.post(
        "/promotion/campaigns",
        json={
            "shop": "s1",
            "name": "x",
            "type": "percent_off",
            "ends_at": earlier(),
            "rules": {"percent": 5},
        },
    )
    assert (r.status_code, r.json()["code"]) == (422, "window_invalid")
