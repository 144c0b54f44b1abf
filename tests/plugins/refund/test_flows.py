"""The after-sale flows through HTTP, with catalog + payment + refund (and a stand-in carrier)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .conftest import Shop


def test_taobao_return_refund_with_customer_waybill(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2), ("MUG", 1)])
    tee = order["lines"][0]
    r = shop.open(order, "return_refund", [(tee["id"], 1)], reason_text="too small")
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "requested"
    assert case["order_id"] == order["id"] and case["type"] == "return_refund"
    assert case["refund_id"] is None and case["refund_amount"] == 0
    assert case["refundable_amount"] == 7900
    assert case["timeline"][0]["message"].startswith("Return and refund request submitted")

    r = shop.merchant.post(f"/after-sales/{case['id']}/approve", json={"note": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "awaiting_return"

    r = shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF1234567", "phone": "13800000000"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "return_shipped"
    assert r.json()["return_parcel"]["tracking_no"] == "SF1234567"

    shop.carrier.event(shop.kernel, order["id"], case["id"], "picked_up", "SF1234567")
    assert shop.case(case["id"])["status"] == "return_in_transit"
    shop.carrier.event(shop.kernel, order["id"], case["id"], "delivered", "SF1234567")
    arrived = shop.case(case["id"])
    assert arrived["status"] == "return_in_transit" and arrived["timer"] == "receive"

    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True, "note": "intact"})
    assert r.status_code == 200, r.text
    done = r.json()
    # no finance center: the kernel approves and pays at once
    assert done["status"] == "refunded"
    assert done["refund_amount"] == 7900 and done["refund_id"]
    kinds = [e["kind"] for e in done["timeline"]]
    for kind in ("after_sale.received", "after_sale.inspected", "after_sale.refunded"):
        assert kind in kinds
    assert done["due_at"] is None

    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == 7900 and o["status"] == "delivered"
    assert o["extra"]["after_sales"][0]["status"] == "refunded"
    # the customer reads the case in Chinese
    zh = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh-CN,zh;q=0.9"}).json()
    messages = [e["message"] for e in zh["timeline"]]
    assert "商品已经收到且登记检测完毕,等待处理" in messages
    assert any(m.startswith("买家已寄出") for m in messages)
    assert all(e["public"] for e in zh["timeline"])
    # staff also see the internal inspection entry
    staff = shop.merchant.get(f"/after-sales/{case['id']}").json()
    assert any(not e["public"] and e["kind"] == "after_sale.inspection" for e in staff["timeline"])


def test_full_return_closes_the_order(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    line = order["lines"][0]
    case = shop.open(order, "return_refund", [(line["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF7654321", "phone": "13800000000"},
    )
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    assert r.json()["status"] == "refunded"
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["status"] == "closed" and o["refunded"] == o["paid"]


def test_refund_only_before_shipment_is_a_cancellation_of_those_lines(shop: Shop) -> None:
    order = shop.order([("TEE-M", 2), ("MUG", 1)])
    tee = order["lines"][0]
    r = shop.open(order, "refund_only", [(tee["id"], 2)], reason="not_wanted")
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "refunded"
    assert case["shipped"] is False
    # freight policy before shipment: proportional (no freight here) -> the goods value
    assert case["refund_amount"] == 2 * 7900
    steps = [s for cid, s in shop.carrier.steps if cid == case["id"]]
    assert steps == ["requested", "approved", "refunded"]
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["status"] == "paid" and o["refunded"] == 2 * 7900


def test_other_customers_case_and_order_are_not_found(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    line = order["lines"][0]
    r = shop.open(order, "return_refund", [(line["id"], 1)], client=shop.bob)
    assert r.status_code == 404 and r.json()["code"] == "order_not_found"
    case = shop.open(order, "return_refund", [(line["id"], 1)]).json()
    assert shop.bob.get(f"/after-sales/{case['id']}").status_code == 404
    r = shop.bob.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF1111111", "phone": "13800000000"},
    )
    assert r.status_code == 404
    other_shop = shop.kit.client(shop.kernel, "merchant", "m2", shop="s2")
    assert other_shop.get(f"/after-sales/{case['id']}").status_code == 404
    assert other_shop.post(f"/after-sales/{case['id']}/approve").status_code == 404
    assert [c["id"] for c in shop.bob.get("/after-sales").json()] == []
    assert [c["id"] for c in shop.alice.get("/after-sales").json()] == [case["id"]]
    assert [c["id"] for c in shop.merchant.get("/after-sales").json()] == [case["id"]]


def test_pickup_booked_fails_and_is_rebooked(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    start = datetime.now(UTC) + timedelta(hours=2)
    window = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=3)).isoformat()}
    r = shop.alice.post(f"/after-sales/{case['id']}/pickup", json=window)
    assert r.status_code == 200, r.text
    booked = r.json()
    assert booked["status"] == "pickup_requested"
    assert booked["pickup"]["status"] == "booked" and booked["pickup"]["courier"] == "王师傅"
    assert booked["pickup"]["address"]["detail"] == "1 West Lake Rd"
    assert booked["return_parcel"]["tracking_no"] == f"PU{case['id']}N1"
    shop.carrier.event(
        shop.kernel, order["id"], case["id"], "pickup_failed", f"PU{case['id']}N1", kind="pickup"
    )
    failed = shop.case(case["id"])
    assert failed["status"] == "awaiting_return" and failed["pickup"]["status"] == "failed"
    r = shop.alice.post(f"/after-sales/{case['id']}/pickup", json=window)
    assert r.status_code == 200, r.text
    assert r.json()["pickup"]["attempts"] == 2
    shop.carrier.event(shop.kernel, order["id"], case["id"], "picked_up", f"PU{case['id']}N2", kind="pickup")
    assert shop.case(case["id"])["status"] == "return_in_transit"


def test_carrier_trouble_is_flagged_on_the_case(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF6060606", "phone": "13800000000"},
    )
    shop.carrier.event(shop.kernel, order["id"], case["id"], "stale", "SF6060606")
    shop.carrier.event(
        shop.kernel, order["id"], case["id"], "exception", "SF6060606", description="address unclear"
    )
    shop.carrier.event(
        shop.kernel, order["id"], case["id"], "delivered", "SF6060606", warehouse="GZ", wrong_warehouse=True
    )
    staff = shop.merchant.get(f"/after-sales/{case['id']}").json()
    kinds = {e["kind"]: e for e in staff["timeline"]}
    assert kinds["after_sale.parcel_stale"]["public"]
    assert "address unclear" in kinds["after_sale.parcel_exception"]["message"]
    assert not kinds["after_sale.parcel_wrong_warehouse"]["public"]
    assert "GZ" in kinds["after_sale.parcel_wrong_warehouse"]["message"]
    assert staff["status"] == "return_in_transit" and staff["timer"] == "receive"
    customer = shop.alice.get(f"/after-sales/{case['id']}").json()
    assert "after_sale.parcel_wrong_warehouse" not in {e["kind"] for e in customer["timeline"]}
    # a late event on a finished case changes nothing and does not fail the carrier
    shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    done = shop.case(case["id"])
    shop.carrier.event(shop.kernel, order["id"], case["id"], "in_transit", "SF6060606")
    assert shop.case(case["id"]) == done


def test_routes_are_documented_in_openapi(shop: Shop) -> None:
    r = shop.kit.client(shop.kernel, None).get("/schema/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for path in (
        "/after-sales",
        "/after-sales/{case_id}",
        "/after-sales/{case_id}/approve",
        "/after-sales/{case_id}/reject",
        "/after-sales/{case_id}/return-shipment",
        "/after-sales/{case_id}/pickup",
        "/after-sales/{case_id}/receive",
        "/after-sales/{case_id}/repaired",
        "/after-sales/{case_id}/ship-back",
        "/track/{order_id}",
    ):
        assert path in paths, path


def test_the_warehouse_that_received_the_goods_is_told_to_the_other_centers(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF6161616", "phone": "13800000000"},
    )
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive", json={"passed": True, "warehouse": "bad code!"}
    )
    assert r.status_code == 400 and shop.case(case["id"])["status"] == "return_shipped"
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True, "warehouse": "BJ"})
    assert r.status_code == 200, r.text
    # WMS restocks where the case says the goods were received
    assert shop.carrier.data[(case["id"], "inspected")]["received_warehouse"] == "BJ"
    received = next(e for e in r.json()["timeline"] if e["kind"] == "after_sale.received")
    assert received["data"]["warehouse"] == "BJ"


def test_customers_see_the_inspection_outcome_but_not_the_staff_notes_and_grades(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    line_id = order["lines"][0]["id"]
    case = shop.open(order, "return_refund", [(line_id, 2)]).json()
    shop.merchant.post(f"/after-sales/{case['id']}/approve")
    shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SF6262626", "phone": "13800000000"},
    )
    body = {
        "inspections": [
            {
                "line_id": line_id,
                "quantity": 1,
                "grade": "B",
                "disposition": "b_grade",
                "note": "stain, resell cheap",
            },
            {"line_id": line_id, "quantity": 1, "passed": False, "note": "customer swapped the tag"},
        ]
    }
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json=body)
    assert r.status_code == 200, r.text
    assert [(i["grade"], i["disposition"], i["note"]) for i in r.json()["inspections"]] == [
        ("B", "b_grade", "stain, resell cheap"),
        ("A", "send_back", "customer swapped the tag"),
    ]
    for lang in ("en", "zh"):
        mine = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": lang})
        assert mine.json()["inspections"] == [
            {"line_id": line_id, "sku": "TEE-M", "quantity": 1, "passed": True},
            {"line_id": line_id, "sku": "TEE-M", "quantity": 1, "passed": False},
        ]
        assert "stain" not in mine.text and "swapped" not in mine.text
    staff = shop.merchant.get(f"/after-sales/{case['id']}").json()
    assert {i["note"] for i in staff["inspections"]} == {"stain, resell cheap", "customer swapped the tag"}
