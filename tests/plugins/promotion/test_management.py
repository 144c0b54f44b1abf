"""Managing campaigns and templates: bad input writes nothing, and staff stay in their shop."""

from __future__ import annotations

from tests.helpers import snapshot

from .support import Shop, earlier, later

BAD_CAMPAIGNS = [
    ({"type": "bogus", "rules": {}}, "campaign_type_unknown"),
    ({"type": "threshold_off", "rules": {"percent": 10}}, "rules_invalid"),
    ({"type": "percent_off", "rules": {"percent": 10, "tiers": []}}, "rules_invalid"),
    ({"type": "threshold_off", "rules": {"tiers": []}}, "rules_invalid"),
    ({"type": "threshold_off", "rules": {"tiers": [{"threshold": 10000, "off": -100}]}}, "amount_invalid"),
    ({"type": "threshold_off", "rules": {"tiers": [{"threshold": 0, "off": 100}]}}, "amount_invalid"),
    (
        {"type": "threshold_off", "rules": {"tiers": [{"threshold": 1000, "off": 1000}]}},
        "threshold_below_discount",
    ),
    (
        {
            "type": "threshold_off",
            "rules": {"tiers": [{"threshold": 20000, "off": 3000}, {"threshold": 10000, "off": 1000}]},
        },
        "tiers_invalid",
    ),
    ({"type": "percent_off", "rules": {"percent": 0}}, "percent_invalid"),
    ({"type": "percent_off", "rules": {"percent": 100}}, "percent_invalid"),
    ({"type": "percent_off", "rules": {"percent": 10, "cap": 0}}, "amount_invalid"),
    ({"type": "flash_sale", "skus": ["A"], "rules": {"price": 0, "quantity": 10}}, "amount_invalid"),
    ({"type": "flash_sale", "skus": ["A"], "rules": {"price": 500, "quantity": -1}}, "amount_invalid"),
    ({"type": "flash_sale", "rules": {"price": 500, "quantity": 10}}, "scope_invalid"),
    (
        {"type": "flash_sale", "skus": ["A"], "rules": {"price": 10000, "quantity": 10}},
        "flash_price_not_below_list",
    ),
    (
        {"type": "buy_x_get_y", "skus": ["A"], "rules": {"buy": 1, "get": 1, "percent_off_get": 101}},
        "percent_invalid",
    ),
    ({"type": "buy_x_get_y", "rules": {"buy": 1, "get": 1}}, "scope_invalid"),
    ({"type": "free_shipping", "rules": {"threshold": -1}}, "amount_invalid"),
    (
        {"type": "percent_off", "rules": {"percent": 10}, "starts_at": later(2), "ends_at": later(1)},
        "window_invalid",
    ),
    ({"type": "percent_off", "rules": {"percent": 10}, "skus": ["OTHER"]}, "sku_not_in_shop"),
    ({"type": "percent_off", "rules": {"percent": 10}, "skus": ["NOPE"]}, "sku_unknown"),
    ({"type": "percent_off", "rules": {"percent": 10}, "categories": [999]}, "category_unknown"),
]


def test_every_bad_campaign_is_refused_with_its_code_and_writes_nothing(mallcore):
    shop = Shop(mallcore)
    before = snapshot(shop.kernel)
    answers = []
    for fields, _ in BAD_CAMPAIGNS:
        r = shop.merchant.post(
            "/promotion/campaigns", json={"shop": "s1", "name": "bad", "ends_at": later(), **fields}
        )
        answers.append((r.status_code, r.json()["code"]))
    assert answers == [(422, code) for _, code in BAD_CAMPAIGNS]
    assert snapshot(shop.kernel) == before


BAD_TEMPLATES = [
    ({"kind": "cash"}, "coupon_kind_unknown"),
    ({"value": 0}, "amount_invalid"),
    ({"value": -500}, "amount_invalid"),
    ({"total": 0}, "amount_invalid"),
    ({"per_customer": 0}, "amount_invalid"),
    ({"min_spend": 1000, "value": 1000}, "threshold_below_discount"),
    ({"kind": "percent", "value": 100}, "percent_invalid"),
    ({"cap": 500}, "rules_invalid"),
    ({"valid_to": None}, "window_invalid"),
    ({"valid_from": later(3), "valid_to": later(2)}, "window_invalid"),
    ({"valid_to": earlier()}, "window_invalid"),
    ({"skus": ["OTHER"]}, "sku_not_in_shop"),
]


def test_every_bad_coupon_template_is_refused_with_its_code_and_writes_nothing(mallcore):
    shop = Shop(mallcore)
    before = snapshot(shop.kernel)
    base = {"shop": "s1", "name": "bad", "kind": "amount", "value": 1000, "total": 10, "valid_to": later()}
    answers = []
    for fields, _ in BAD_TEMPLATES:
        r = shop.merchant.post("/promotion/coupon-templates", json={**base, **fields})
        answers.append((r.status_code, r.json()["code"]))
    assert answers == [(422, code) for _, code in BAD_TEMPLATES]
    assert snapshot(shop.kernel) == before


def test_a_merchant_manages_only_their_shops_campaigns(mallcore):
    shop = Shop(mallcore)
    mine = shop.campaign("percent_off", {"percent": 10})
    other = mallcore.client(shop.kernel, "merchant", "m2", shop="s2")
    for call in (
        lambda: other.get(f"/promotion/campaigns/{mine['id']}"),
        lambda: other.post(f"/promotion/campaigns/{mine['id']}/end"),
        lambda: other.get(f"/promotion/campaigns/{mine['id']}/stats"),
    ):
        r = call()
        assert (r.status_code, r.json()["code"]) == (404, "campaign_not_found")
    assert other.get("/promotion/campaigns").json() == []
    r = other.post(
        "/promotion/campaigns",
        json={"shop": "s1", "name": "x", "type": "percent_off", "ends_at": later(), "rules": {"percent": 5}},
    )
    assert (r.status_code, r.json()["code"]) == (404, "shop_not_found")
    assert shop.merchant.get(f"/promotion/campaigns/{mine['id']}").json()["id"] == mine["id"]


def test_platform_campaigns_and_coupons_are_the_admins_alone(mallcore):
    shop = Shop(mallcore)
    body = {"shop": None, "name": "x", "type": "percent_off", "ends_at": later(), "rules": {"percent": 5}}
    r = shop.merchant.post("/promotion/campaigns", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "platform_only")
    platform_merchant = mallcore.client(shop.kernel, "merchant", "pm", platform=True)
    assert platform_merchant.post("/promotion/campaigns", json=body).json()["code"] == "platform_only"
    r = shop.merchant.post(
        "/promotion/coupon-templates",
        json={"name": "x", "kind": "amount", "value": 100, "total": 1, "valid_to": later()},
    )
    assert (r.status_code, r.json()["code"]) == (403, "platform_only")
    made = shop.admin.post("/promotion/campaigns", json=body).json()
    assert made["shop"] is None and made["funded_by"] == "platform"
    r = shop.merchant.get(f"/promotion/campaigns/{made['id']}")
    assert (r.status_code, r.json()["code"]) == (404, "campaign_not_found")
    r = shop.merchant.post(f"/promotion/campaigns/{made['id']}/end")
    assert r.status_code == 404


def test_customers_and_other_roles_cannot_manage_campaigns(mallcore):
    shop = Shop(mallcore)
    body = {"shop": "s1", "name": "x", "type": "percent_off", "ends_at": later(), "rules": {"percent": 5}}
    for client in (shop.customer(), mallcore.client(shop.kernel, "warehouse", "w1", shop="s1")):
        r = client.post("/promotion/campaigns", json=body)
        assert (r.status_code, r.json()["code"]) == (403, "role_required")
    r = shop.customer().post("/promotion/coupon-templates", json={})
    assert (r.status_code, r.json()["code"]) == (403, "role_required")


def test_creating_a_campaign_twice_with_one_idempotency_key_creates_one(mallcore):
    shop = Shop(mallcore)
    body = {"shop": "s1", "name": "x", "type": "percent_off", "ends_at": later(), "rules": {"percent": 5}}
    first = shop.merchant.post("/promotion/campaigns", json=body, headers={"Idempotency-Key": "c-1"})
    again = shop.merchant.post("/promotion/campaigns", json=body, headers={"Idempotency-Key": "c-1"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(shop.merchant.get("/promotion/campaigns").json()) == 1


def test_shoppers_see_a_shops_live_campaigns_and_the_coupons_they_may_claim(mallcore):
    shop = Shop(mallcore)
    live = shop.campaign("threshold_off", {"tiers": [{"threshold": 20000, "off": 3000}]}, name="满200减30")
    shop.campaign("percent_off", {"percent": 5}, starts_at=later(1), ends_at=later(2))
    claimable = shop.template(name="满100减10", min_spend=10000)
    shop.template(name="hidden", claimable=False)
    offers = shop.customer().get("/promotion/offers", params={"shop": "s1"}).json()
    assert [(c["id"], c["label"]) for c in offers["campaigns"]] == [(live["id"], "满200减30")]
    assert [(t["id"], t["label"]) for t in offers["coupon_templates"]] == [(claimable["id"], "满100减10")]
