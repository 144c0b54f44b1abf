"""Exchanges (a replacement order at no charge) and repairs (received, repaired, shipped back)."""

from __future__ import annotations

from typing import Any

from .conftest import Shop


def _send_back(shop: Shop, case: dict[str, Any], waybill: str = "SF2020202") -> None:
    r = shop.merchant.post(f"/after-sales/{case['id']}/approve")
    assert r.status_code == 200, r.text
    r = shop.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": waybill, "phone": "13800000000"},
    )
    assert r.status_code == 200, r.text


def test_exchange_for_another_variant_creates_a_linked_free_order(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 1), ("MUG", 1)])
    tee = order["lines"][0]
    r = shop.open(
        order, "exchange", [(tee["id"], 1)], reason="wrong_size", replacement_skus={str(tee["id"]): "TEE-L"}
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["lines"][0]["replacement_sku"] == "TEE-L"
    _send_back(shop, case)
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "replacement_created"
    new_id = done["replacement_order_id"]
    assert new_id and new_id != order["id"]
    assert done["refund_amount"] == 0 and done["refund_id"] is None
    assert any(e["message"] == f"Replacement order created: order No. {new_id}" for e in done["timeline"])
    zh = shop.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    assert any(f"换新订单号 {new_id}" in e["message"] for e in zh["timeline"])

    new = shop.alice.get(f"/orders/{new_id}").json()
    assert new["customer"] == "alice" and new["parent_id"] == order["id"]
    assert new["total"] == 0 and new["status"] == "paid"
    assert [(line["sku"], line["quantity"]) for line in new["lines"]] == [("TEE-L", 1)]
    assert new["extra"]["replacement_for"] == {"case_id": case["id"], "order_id": order["id"]}
    old = shop.alice.get(f"/orders/{order['id']}").json()
    assert old["extra"]["after_sales"][0]["replacement_order_id"] == new_id
    assert old["refunded"] == 0
    # the replacement goes on like any order
    assert shop.merchant.post(f"/orders/{new_id}/dispatch").status_code == 200


def test_exchange_must_stay_within_the_product(shop: Shop) -> None:
    shop.kit.product(shop.kernel, shop="s1", skus=[("CAP", 2900)], name="Cap")
    order = shop.delivered_order([("TEE-M", 1)])
    tee = order["lines"][0]
    r = shop.open(order, "exchange", [(tee["id"], 1)], replacement_skus={str(tee["id"]): "CAP"})
    assert r.status_code == 422 and r.json()["code"] == "replacement_not_same_product"
    r = shop.open(order, "exchange", [(tee["id"], 1)], replacement_skus={str(tee["id"]): "NOPE"})
    assert r.status_code == 422 and r.json()["code"] == "sku_unknown"
    r = shop.open(order, "return_refund", [(tee["id"], 1)], replacement_skus={str(tee["id"]): "TEE-L"})
    assert r.status_code == 422 and r.json()["code"] == "replacement_not_exchange"
    assert shop.alice.get("/after-sales").json() == []


def test_repair_is_received_repaired_and_shipped_back(shop: Shop) -> None:
    order = shop.delivered_order([("MUG", 1)])
    case = shop.open(order, "repair", [(order["lines"][0]["id"], 1)], reason="quality").json()
    _send_back(shop, case)
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive", json={"passed": True, "note": "handle cracked"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "inspected" and r.json()["timer"] == "escalate"
    assert r.json()["refundable_amount"] == 0
    # the item is the customer's: by default it goes back to them, never to stock
    assert [i["disposition"] for i in r.json()["inspections"]] == ["send_back"]
    r = shop.alice.post(f"/after-sales/{case['id']}/repaired")
    assert r.status_code == 403
    r = shop.warehouse.post(f"/after-sales/{case['id']}/repaired", json={"note": "handle reglued"})
    assert r.status_code == 200 and r.json()["status"] == "repaired"
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/ship-back", json={"carrier": "sandbox", "tracking_no": "SFBACK001"}
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "shipped_back" and done["due_at"] is None
    assert any("SFBACK001" in e["message"] for e in done["timeline"])
    o = shop.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == 0
    steps = [s for cid, s in shop.carrier.steps if cid == case["id"]]
    assert steps[-4:] == ["received", "inspected", "repaired", "shipped_back"]


def test_failed_inspection_rejects_without_money(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    case = shop.open(order, "return_refund", [(order["lines"][0]["id"], 2)]).json()
    _send_back(shop, case)
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive", json={"passed": False, "note": "worn and washed"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    assert r.json()["inspections"][0]["disposition"] == "send_back"
    assert shop.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_per_unit_inspection_refunds_only_passed_units_less_restocking_fee(mallcore: Any) -> None:
    from .conftest import make_shop

    shop = make_shop(mallcore, settings={"restocking_fee_percent": {"B": 10}})
    order = shop.delivered_order([("TEE-M", 3)])
    line = order["lines"][0]
    case = shop.open(order, "return_refund", [(line["id"], 3)]).json()
    _send_back(shop, case)
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive",
        json={
            "inspections": [
                {"line_id": line["id"], "quantity": 1, "grade": "A", "disposition": "restock"},
                {"line_id": line["id"], "quantity": 1, "grade": "B", "disposition": "b_grade"},
            ],
            "note": "one unit missing from the parcel",
        },
    )
    assert r.status_code == 200, r.text
    done = r.json()
    # two units received (one short), both passed; the B-grade one costs 10 % restocking
    assert done["lines"][0]["received"] == 2
    assert done["status"] == "refunded"
    assert done["refund_amount"] == 2 * 7900 - 790
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive",
        json={"inspections": [{"line_id": line["id"], "quantity": 1}]},
    )
    assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
    # the unit that never came back may be claimed again, once
    again = shop.open(order, "return_refund", [(line["id"], 1)])
    assert again.status_code == 201, again.text
    assert shop.open(order, "return_refund", [(line["id"], 1)]).status_code == 409


def test_inspection_cannot_count_more_than_the_case(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    line = order["lines"][0]
    case = shop.open(order, "return_refund", [(line["id"], 1)]).json()
    _send_back(shop, case)
    r = shop.warehouse.post(
        f"/after-sales/{case['id']}/receive", json={"inspections": [{"line_id": line["id"], "quantity": 2}]}
    )
    assert r.status_code == 422 and r.json()["code"] == "inspection_exceeds_case"
    assert shop.case(case["id"])["status"] == "return_shipped"


def _exchanged(shop: Shop, quantity: int = 1) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """An order of TEE-M exchanged for TEE-L: (original order, exchange case, delivered replacement)."""
    order = shop.delivered_order([("TEE-M", quantity), ("MUG", 1)])
    tee = order["lines"][0]
    case = shop.open(
        order,
        "exchange",
        [(tee["id"], quantity)],
        reason="wrong_size",
        replacement_skus={str(tee["id"]): "TEE-L"},
    ).json()
    _send_back(shop, case)
    done = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).json()
    assert done["status"] == "replacement_created"
    shop.deliver(done["replacement_order_id"])
    replacement = shop.alice.get(f"/orders/{done['replacement_order_id']}").json()
    assert replacement["status"] == "delivered" and replacement["paid"] == 0
    return order, done, replacement


def test_a_replacement_order_takes_exchanges_and_repairs_but_no_refund(shop: Shop) -> None:
    order, _, replacement = _exchanged(shop)
    line = replacement["lines"][0]
    for type_ in ("refund_only", "return_refund"):
        r = shop.open(replacement, type_, [(line["id"], 1)])
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["code"] == "replacement_not_refundable"
        assert f"original order {order['id']}" in body["detail"]
        assert body["original_order_id"] == order["id"]
    assert shop.alice.get("/after-sales", params={"order_id": replacement["id"]}).json() == []
    for type_ in ("exchange", "repair"):
        r = shop.open(replacement, type_, [(line["id"], 1)])
        assert r.status_code == 201, r.text
        assert shop.alice.post(f"/after-sales/{r.json()['id']}/cancel").status_code == 200


def test_the_exchanged_goods_are_returned_for_money_on_the_original_order(shop: Shop) -> None:
    order, exchange, replacement = _exchanged(shop)
    tee = order["lines"][0]
    # the units went back and were replaced: they are not the original's to exchange or repair again
    for type_ in ("exchange", "repair", "refund_only"):
        r = shop.open(order, type_, [(tee["id"], 1)])
        assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_available", (type_, r.text)
    r = shop.open(order, "return_refund", [(tee["id"], 1)], reason="wrong_size")
    assert r.status_code == 201, r.text
    case = r.json()
    # what comes back is the replacement's TEE-L
    assert [(x["line_id"], x["sku"], x["quantity"]) for x in case["lines"]] == [(tee["id"], "TEE-L", 1)]
    assert case["refundable_amount"] == 7900
    assert any(str(replacement["id"]) in e["message"] for e in case["timeline"])
    # the same goods cannot be claimed twice, on either order
    r = shop.open(order, "return_refund", [(tee["id"], 1)])
    assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_available"
    r = shop.open(replacement, "exchange", [(replacement["lines"][0]["id"], 1)])
    assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_available"
    _send_back(shop, case, "SF2121212")
    r = shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "refunded" and done["refund_amount"] == 7900
    assert done["inspections"][0]["sku"] == "TEE-L"
    original = shop.alice.get(f"/orders/{order['id']}").json()
    assert original["refunded"] == 7900


def test_a_return_of_exchanged_goods_waits_for_a_case_on_the_replacement(shop: Shop) -> None:
    order, _, replacement = _exchanged(shop)
    repair = shop.open(replacement, "repair", [(replacement["lines"][0]["id"], 1)], reason="quality")
    assert repair.status_code == 201, repair.text
    r = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)])
    assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_available"
    assert shop.alice.post(f"/after-sales/{repair.json()['id']}/cancel").status_code == 200
    assert shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)]).status_code == 201


def test_the_exchanged_goods_follow_the_original_orders_window(shop: Shop) -> None:
    order, _, _ = _exchanged(shop)
    shop.later(days=8)
    r = shop.open(order, "return_refund", [(order["lines"][0]["id"], 1)])
    assert r.status_code == 422 and r.json()["code"] == "after_sale_window_expired"


def test_a_line_partly_exchanged_returns_its_own_units_first(shop: Shop) -> None:
    order = shop.delivered_order([("TEE-M", 2)])
    tee = order["lines"][0]
    case = shop.open(
        order, "exchange", [(tee["id"], 1)], reason="wrong_size", replacement_skus={str(tee["id"]): "TEE-L"}
    ).json()
    _send_back(shop, case)
    shop.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    # one original TEE-M and one TEE-L: a case takes either, never a mix
    r = shop.open(order, "return_refund", [(tee["id"], 2)])
    assert r.status_code == 409 and r.json()["code"] == "quantity_exceeds_available"
    first = shop.open(order, "return_refund", [(tee["id"], 1)]).json()
    assert first["lines"][0]["sku"] == "TEE-M"
    second = shop.open(order, "return_refund", [(tee["id"], 1)]).json()
    assert second["lines"][0]["sku"] == "TEE-L"
