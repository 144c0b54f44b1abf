"""The pages read what the API reads and act through the API's code: orders (search, paging,
manual steps), WMS (stock, inbound, transfer, stocktake), TMS (shipments, exceptions first)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Browser
from .story import Story


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from mallcore.testing import Kit

    kit = Kit(tmp_path_factory.mktemp("console-pages"))
    story = Story(kit, full=True)
    orders = [story.delivered_order() for _ in range(3)]
    yield kit, story, orders
    kit.close()


def test_orders_search_and_pages_newest_first(world: Any) -> None:
    kit, story, orders = world
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    from mallcore.plugins.console import orders as pages

    ids = [o["id"] for o in orders]
    seen: list[int] = []
    url = "/console/orders?customer=alice"
    old, pages.PAGE = pages.PAGE, 2
    try:
        while url:
            page = merchant.get(url)
            assert page.status_code == 200, page.text
            seen += [int(x) for x in re.findall(r'<a href="/console/orders/(\d+)">', page.text)]
            found = re.search(r'rel="next" href="([^"]+)"', page.text)
            url = found.group(1).replace("&amp;", "&") if found else ""
    finally:
        pages.PAGE = old
    assert seen == sorted(ids, reverse=True)
    assert merchant.get(f"/console/orders?q={ids[0]}").headers["location"] == f"/console/orders/{ids[0]}"
    assert "No orders match." in merchant.get("/console/orders?status=cancelled").text
    assert merchant.get("/console/orders?since=not-a-date").status_code == 422


def test_an_order_page_explains_it_and_offers_the_steps_the_role_may_take(world: Any) -> None:
    kit, story, orders = world
    order = orders[0]
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    page = merchant.get(f"/console/orders/{order['id']}").text
    assert "TEE-M" in page and "¥79.00" in page and "Parcels" in page and "Payments" in page
    assert f'action="/console/orders/{order["id"]}/complete"' in page  # delivered: complete
    # the delivery address's region code reads as place names (310000: Shanghai)
    assert "Shanghai 1 West Lake Rd" in page or "上海市 1 West Lake Rd" in page, page
    finance = Browser(kit, story.kernel).sign_in("finance", "f1", "s1")
    assert "/complete" not in finance.get(f"/console/orders/{order['id']}").text  # not finance's step
    r = finance.post(f"/console/orders/{order['id']}/complete", {"note": ""})
    assert r.status_code == 403 and "role_required" in r.text


def test_wms_stock_and_the_inbound_transfer_and_stocktake_forms(world: Any) -> None:
    kit, story, _ = world
    admin = kit.client(story.kernel, "admin", "root")
    assert (
        admin.post("/wms/warehouses", json={"code": "BJ", "name": "Beijing", "region": "110000"}).status_code
        == 201
    )
    warehouse = Browser(kit, story.kernel).sign_in("warehouse", "w1", "s1")
    before = story.warehouse.get("/wms/stock/MUG").json()
    page = warehouse.get("/console/wms?sku=MUG")
    assert page.status_code == 200 and "<td>SH</td>" in page.text
    assert (
        warehouse.post("/console/wms/inbound", {"warehouse": "SH", "sku": "MUG", "quantity": "5"}).status_code
        == 303
    )
    r = warehouse.post(
        "/console/wms/transfers",
        {"sku": "MUG", "from_warehouse": "SH", "to_warehouse": "BJ", "quantity": "2"},
    )
    assert r.status_code == 303
    r = warehouse.post("/console/wms/stocktakes", {"warehouse": "BJ", "sku": "MUG", "counted": "3"})
    assert r.status_code == 303
    after = story.warehouse.get("/wms/stock/MUG").json()
    assert after["on_hand"] == before["on_hand"] + 5 + 1
    movements = warehouse.get("/console/wms/movements?sku=MUG").text
    assert "transfer_out" in movements and "transfer_in" in movements and "stocktake" in movements
    # too many units: the API's answer, and nothing moved
    r = warehouse.post(
        "/console/wms/transfers",
        {"sku": "MUG", "from_warehouse": "BJ", "to_warehouse": "SH", "quantity": "999"},
    )
    assert r.status_code == 409 and "out_of_stock" in r.text
    assert story.warehouse.get("/wms/stock/MUG").json()["on_hand"] == after["on_hand"]
    # another shop's staff see none of s1's stock
    other = Browser(kit, story.kernel).sign_in("warehouse", "w2", "s2")
    assert "<td>SH</td>" not in other.get("/console/wms?sku=MUG").text


def test_tms_shipments_and_templates(world: Any) -> None:
    kit, story, orders = world
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    page = merchant.get("/console/tms")
    shipment = orders[0]["shipments"][0]
    assert page.status_code == 200 and shipment["tracking_no"] in page.text
    detail = merchant.get(f"/console/tms/shipments/{shipment['id']}")
    assert detail.status_code == 200 and "delivered" in detail.text and "picked_up" in detail.text
    assert merchant.get("/console/tms/templates").status_code == 200


def test_risk_review_queue_shows_facts_and_rules_and_releases(mallcore: Any) -> None:
    kernel = mallcore.kernel(centers=["catalog", "payment", "risk", "console"])
    mallcore.product(kernel, shop="s1", skus=[("TEE", 7900)])
    analyst = mallcore.client(kernel, "risk", "r1", platform=True)
    rule = {"name": "big basket", "condition": "order.total > 5000", "action": "review"}
    assert analyst.post("/risk/rules", json=rule).status_code == 201
    r = mallcore.client(kernel, "customer", "alice").post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "TEE", "quantity": 1}]}
    )
    assert r.status_code == 201 and r.json()["hold"], r.text
    order_id = r.json()["id"]
    browser = Browser(mallcore, kernel).sign_in("risk", "r1", platform=True)
    queue = browser.get("/console/risk")
    review_id = int(re.search(r'<a href="/console/risk/(\d+)">', queue.text).group(1))
    assert "big basket" in queue.text and f'href="/console/orders/{order_id}"' in queue.text
    page = browser.get(f"/console/risk/{review_id}").text
    assert "big basket" in page and "review" in page
    assert "7900" in page  # the facts: the order as the rule saw it
    r = browser.post(f"/console/risk/{review_id}/release", {"note": "known customer"})
    assert r.status_code == 303
    assert analyst.get(f"/risk/reviews/{review_id}").json()["status"] == "released"
    assert mallcore.client(kernel, "admin", "root").get(f"/orders/{order_id}").json()["hold"] is None
    merchant = Browser(mallcore, kernel).sign_in("merchant", "m1", "s1")
    assert merchant.get("/console/risk").status_code == 403


def test_promotion_and_membership_pages(world: Any) -> None:
    kit, story, _ = world
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    page = merchant.get("/console/promotion")
    assert page.status_code == 200 and "Campaigns" in page.text and "Coupons" in page.text
    members = merchant.get("/console/membership")
    assert members.status_code == 200 and "Members" in members.text
    warehouse = Browser(kit, story.kernel).sign_in("warehouse", "w1", "s1")
    assert warehouse.get("/console/promotion").status_code == 403
    assert '<a href="/console/promotion"' not in warehouse.get("/console/").text


def test_an_approved_returns_parcel_reads_as_words_not_a_status_code(world: Any) -> None:
    kit, story, _orders = world
    case = story.return_request(story.delivered_order())
    assert story.merchant.post(f"/after-sales/{case['id']}/approve").status_code == 200
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    page = merchant.get(f"/console/after-sales/{case['id']}").text
    assert "Waiting for you to ship it and enter the waybill" in page, page
    assert ">awaiting_waybill<" not in page


def test_the_workbench_names_case_types_and_states_in_the_pages_language(world: Any) -> None:
    kit, story, _orders = world
    case = story.return_request(story.delivered_order())
    merchant = Browser(kit, story.kernel).sign_in("merchant", "m1", "s1")
    page = merchant.get("/console/after-sales").text
    assert "Return and refund" in page and "Waiting for the merchant" in page, page
    assert "<td>return_refund</td>" not in page
    assert 'option value="return_refund"' in page  # the filter still sends the code
    merchant.client.cookies.set("mallcore_lang", "zh")
    page = merchant.get(f"/console/after-sales/{case['id']}").text
    assert "退货退款" in page, page
