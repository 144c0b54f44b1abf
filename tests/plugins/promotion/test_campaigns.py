"""Campaigns price orders, explain every discount and stack like Taobao and JD."""

from __future__ import annotations

from .support import Shop, promo


def test_a_threshold_campaign_takes_off_the_highest_tier_reached_and_says_why(mallcore):
    shop = Shop(mallcore)
    c = shop.campaign(
        "threshold_off",
        {"tiers": [{"threshold": 10000, "off": 1000}, {"threshold": 20000, "off": 3000}]},
        name="满200减30",
    )
    r = shop.place([("A", 2), ("C", 2)])  # 200.00 + 40.00 = 240.00
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["subtotal"] == 24000 and order["discount"] == 3000 and order["total"] == 21000
    assert promo(order) == [(f"campaign:{c['id']}", -3000, "满200减30: subtotal 240.00 ≥ 200.00")]
    adj = order["adjustments"][0]
    assert adj["funded_by"] == "shop" and sum(a["amount"] for a in adj["allocation"]) == -3000
