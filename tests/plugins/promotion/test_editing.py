"""Changing a campaign or a coupon template after it is made (PATCH): the same guards as
creating one, refusals that write nothing, orders placed before keep their discount, an
audit trail, and every process's campaign cache sees the change."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mallcore.kernel import tables as kt
from mallcore.plugins.promotion.cache import OfferCache
from tests.helpers import snapshot

from .support import Shop, later, promo

TIERS = {"tiers": [{"threshold": 10000, "off": 1000}]}


def patch(client: Any, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    r = client.patch(path, json=body)
    return r.status_code, r.json()


def audit_events(shop: Shop, topic: str) -> list[dict[str, Any]]:
    with shop.kernel.db.transaction(write=False) as conn:
        o = kt.outbox.c
        return list(conn.execute(sa.select(o.payload).where(o.topic == topic).order_by(o.id)).scalars())


def test_an_edit_prices_later_orders_and_leaves_earlier_ones_alone(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign("threshold_off", TIERS, name="满100减10")
    first = shop.place([("A", 1)])
    assert first.status_code == 201, first.text
    assert [a[1] for a in promo(first.json())] == [-1000]

    status, body = patch(
        shop.merchant,
        f"/promotion/campaigns/{made['id']}",
        {"name": "满100减25", "priority": 7, "rules": {"tiers": [{"threshold": 10000, "off": 2500}]}},
    )
    assert status == 200, body
    assert (body["name"], body["priority"], body["label"]) == ("满100减25", 7, "满100减25")

    second = shop.place([("A", 1)])
    assert [a[1] for a in promo(second.json())] == [-2500]
    again = shop.customer().get(f"/orders/{first.json()['id']}").json()
    assert [a[1] for a in promo(again)] == [-1000]
    assert again["total"] == first.json()["total"]


def test_each_change_is_on_the_audit_trail_with_who_and_what(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign("percent_off", {"percent": 10})
    ends = later(60)
    status, _ = patch(shop.merchant, f"/promotion/campaigns/{made['id']}", {"ends_at": ends, "priority": 3})
    assert status == 200
    [event] = audit_events(shop, "promotion.campaign_changed")
    assert (event["id"], event["shop"], event["by"]) == (made["id"], "s1", "m1")
    assert set(event["changes"]) == {"ends_at", "priority"}
    assert event["changes"]["priority"] == [0, 3]
    # A change to nothing new writes nothing, not even an audit line.
    before = snapshot(shop.kernel)
    assert patch(shop.merchant, f"/promotion/campaigns/{made['id']}", {"priority": 3})[0] == 200
    assert snapshot(shop.kernel) == before


def test_pausing_stops_the_discount_and_resuming_brings_it_back(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign("threshold_off", TIERS)
    path = f"/promotion/campaigns/{made['id']}"
    status, body = patch(shop.merchant, path, {"paused": True})
    assert (status, body["status"]) == (200, "paused")
    assert promo(shop.place([("A", 1)]).json()) == []
    assert [
        c["id"] for c in shop.merchant.get("/promotion/campaigns", params={"status": "paused"}).json()
    ] == [made["id"]]
    assert shop.merchant.get("/promotion/campaigns", params={"status": "live"}).json() == []
    assert patch(shop.merchant, path, {"paused": False})[1]["status"] == "live"
    assert [a[1] for a in promo(shop.place([("A", 1)]).json())] == [-1000]
    # a paused campaign can still be ended, and then is ended for good
    assert patch(shop.merchant, path, {"paused": True})[1]["status"] == "paused"
    assert shop.merchant.post(f"{path}/end").json()["status"] == "ended"
    assert patch(shop.merchant, path, {"paused": False})[1]["code"] == "campaign_ended"


REFUSALS = [
    ({"ends_at": "2020-01-01T00:00:00Z"}, 422, "window_invalid"),
    ({"starts_at": later(40), "ends_at": later(35)}, 422, "window_invalid"),
    ({"starts_at": later(40)}, 422, "window_invalid"),  # after the current end
    ({"rules": {"percent": 10}}, 422, "rules_invalid"),  # another type's rules
    ({"rules": {"tiers": [{"threshold": 1000, "off": 1000}]}}, 422, "threshold_below_discount"),
    ({"priority": 5000}, 400, None),
    ({"name": ""}, 400, None),
    ({"type": "percent_off"}, 400, None),  # the type is not editable
]


def test_bad_changes_are_refused_with_their_code_and_write_nothing(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign("threshold_off", TIERS)
    before = snapshot(shop.kernel)
    for body, status, code in REFUSALS:
        got, answer = patch(shop.merchant, f"/promotion/campaigns/{made['id']}", body)
        assert got == status, (body, answer)
        if code is not None:
            assert answer["code"] == code, (body, answer)
    assert snapshot(shop.kernel) == before


def test_an_ended_campaign_cannot_be_changed(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign("percent_off", {"percent": 10})
    assert shop.merchant.post(f"/promotion/campaigns/{made['id']}/end").status_code == 200
    before = snapshot(shop.kernel)
    status, body = patch(shop.merchant, f"/promotion/campaigns/{made['id']}", {"ends_at": later(90)})
    assert (status, body["code"]) == (409, "campaign_ended")
    assert snapshot(shop.kernel) == before


def test_a_flash_sales_quantity_cannot_go_below_the_units_sold(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign(
        "flash_sale", {"price": 6000, "quantity": 5, "per_customer": 5}, skus=["A"], name="秒杀"
    )
    assert shop.place([("A", 3)]).status_code == 201
    path = f"/promotion/campaigns/{made['id']}"
    before = snapshot(shop.kernel)
    status, body = patch(shop.merchant, path, {"rules": {"price": 6000, "quantity": 2, "per_customer": 5}})
    assert (status, body["code"], body["sold"]) == (409, "quantity_below_sold", 3)
    status, body = patch(shop.merchant, path, {"rules": {"price": 12000, "quantity": 9}})
    assert (status, body["code"]) == (422, "flash_price_not_below_list")
    assert snapshot(shop.kernel) == before
    status, body = patch(shop.merchant, path, {"rules": {"price": 5000, "quantity": 4, "per_customer": 5}})
    assert (status, body["sold"], body["left"]) == (200, 3, 1)
    order = shop.place([("A", 2)], customer="bob").json()
    # One unit left at the new flash price, the other at list price.
    assert order["total"] < 2 * 10000 and [a[0] for a in promo(order)] == [f"campaign:{made['id']}"]
    assert shop.merchant.get(path).json()["left"] == 0


def test_merchants_change_only_their_shops_campaigns_and_platform_ones_are_the_admins(mallcore):
    shop = Shop(mallcore)
    mine = shop.campaign("percent_off", {"percent": 10})
    platform = shop.admin.post(
        "/promotion/campaigns",
        json={"shop": None, "name": "p", "type": "percent_off", "ends_at": later(), "rules": {"percent": 5}},
    ).json()
    other = mallcore.client(shop.kernel, "merchant", "m2", shop="s2")
    before = snapshot(shop.kernel)
    assert patch(other, f"/promotion/campaigns/{mine['id']}", {"priority": 1})[0:1] == (404,)
    assert (
        patch(other, f"/promotion/campaigns/{mine['id']}", {"priority": 1})[1]["code"] == "campaign_not_found"
    )
    assert patch(shop.merchant, f"/promotion/campaigns/{platform['id']}", {"priority": 1})[1]["code"] == (
        "campaign_not_found"
    )
    platform_merchant = mallcore.client(shop.kernel, "merchant", "pm", platform=True)
    status, body = patch(platform_merchant, f"/promotion/campaigns/{platform['id']}", {"priority": 1})
    assert (status, body["code"]) == (403, "platform_only")
    status, body = patch(shop.customer(), f"/promotion/campaigns/{mine['id']}", {"priority": 1})
    assert (status, body["code"]) == (403, "role_required")
    assert snapshot(shop.kernel) == before
    assert patch(shop.admin, f"/promotion/campaigns/{platform['id']}", {"priority": 1})[0] == 200


def test_another_workers_cache_sees_the_change_within_its_recheck_interval(mallcore):
    shop = Shop(mallcore)
    made = shop.campaign("percent_off", {"percent": 10})
    other = OfferCache(recheck_seconds=5.0)  # another process's cache, same database
    with shop.kernel.db.transaction(write=False) as conn:
        assert [o.priority for o in other.offers(conn, "s1")] == [0]
    assert patch(shop.merchant, f"/promotion/campaigns/{made['id']}", {"priority": 9})[0] == 200
    with shop.kernel.db.transaction(write=False) as conn:
        assert [o.priority for o in other.offers(conn, "s1")] == [0]  # within the interval: as loaded
        for book in other._books.values():  # the interval passes
            book.checked -= other.recheck
        assert [o.priority for o in other.offers(conn, "s1")] == [9]
    # This process's own cache saw it at once.
    promotion = shop.kernel.centers["promotion"]
    with shop.kernel.db.transaction(write=False) as conn:
        assert [o.priority for o in promotion.offers.offers(conn, "s1")] == [9]


# -- coupon templates -------------------------------------------------------------------


def test_a_templates_total_window_and_limits_change_and_issued_coupons_keep_theirs(mallcore):
    shop = Shop(mallcore)
    made = shop.template(total=2, valid_days=None)
    path = f"/promotion/coupon-templates/{made['id']}"
    code = shop.customer("alice").post(f"{path}/claim").json()
    new_end = later(90)
    status, body = patch(
        shop.merchant, path, {"name": "bigger", "total": 3, "per_customer": 2, "valid_to": new_end}
    )
    assert status == 200, body
    assert (body["name"], body["total"], body["left"], body["per_customer"]) == ("bigger", 3, 2, 2)
    wallet = shop.customer("alice").get(f"/promotion/coupons/{code['code']}").json()
    assert wallet["valid_to"] == code["valid_to"]  # issued with the old window
    assert shop.customer("alice").post(f"{path}/claim").status_code == 201  # per_customer now 2
    [event] = audit_events(shop, "promotion.template_changed")
    assert event["by"] == "m1" and set(event["changes"]) == {"name", "total", "per_customer", "valid_to"}


def test_a_templates_total_cannot_go_below_what_is_issued(mallcore):
    shop = Shop(mallcore)
    made = shop.template(total=5)
    path = f"/promotion/coupon-templates/{made['id']}"
    for name in ("alice", "bob"):
        assert shop.customer(name).post(f"{path}/claim").status_code == 201
    before = snapshot(shop.kernel)
    status, body = patch(shop.merchant, path, {"total": 1})
    assert (status, body["code"], body["issued"]) == (409, "total_below_issued", 2)
    for bad, code in (({"total": 0}, 400), ({"valid_to": "2020-01-01T00:00:00Z"}, 422), ({"value": 1}, 400)):
        assert patch(shop.merchant, path, bad)[0] == code, bad
    assert snapshot(shop.kernel) == before
    assert patch(shop.merchant, path, {"total": 2})[1]["left"] == 0


def test_a_paused_template_issues_nothing_until_resumed_and_an_ended_one_is_final(mallcore):
    shop = Shop(mallcore)
    made = shop.template()
    path = f"/promotion/coupon-templates/{made['id']}"
    assert patch(shop.merchant, path, {"paused": True})[1]["status"] == "paused"
    r = shop.customer().post(f"{path}/claim")
    assert (r.status_code, r.json()["code"]) == (409, "template_paused")
    assert shop.customer().get("/promotion/offers", params={"shop": "s1"}).json()["coupon_templates"] == []
    assert patch(shop.merchant, path, {"paused": False})[1]["status"] == "active"
    assert shop.customer().post(f"{path}/claim").status_code == 201
    assert shop.merchant.post(f"{path}/end").status_code == 200
    before = snapshot(shop.kernel)
    status, body = patch(shop.merchant, path, {"total": 500})
    assert (status, body["code"]) == (409, "template_ended")
    assert snapshot(shop.kernel) == before


def test_templates_are_changed_by_their_shop_and_platform_ones_by_admins(mallcore):
    shop = Shop(mallcore)
    mine = shop.template()
    platform = shop.template(by=shop.admin, shop=None)
    other = mallcore.client(shop.kernel, "merchant", "m2", shop="s2")
    before = snapshot(shop.kernel)
    for client, template_id, want in (
        (other, mine["id"], (404, "template_not_found")),
        (shop.merchant, platform["id"], (404, "template_not_found")),
        (shop.customer(), mine["id"], (403, "role_required")),
    ):
        status, body = patch(client, f"/promotion/coupon-templates/{template_id}", {"total": 7})
        assert (status, body["code"]) == want
    assert snapshot(shop.kernel) == before
    assert patch(shop.admin, f"/promotion/coupon-templates/{platform['id']}", {"total": 7})[1]["total"] == 7
