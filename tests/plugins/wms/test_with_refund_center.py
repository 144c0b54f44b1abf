"""WMS with the real refund center, through HTTP: returns come back to stock, refunds before
shipment release their units."""

from __future__ import annotations

from .helpers import Shop, check_invariants, live_by_order

CENTERS = ["catalog", "payment", "wms", "refund"]


def test_an_inspected_return_is_restocked_by_disposition(mallcore):
    shop = Shop(mallcore, centers=CENTERS)
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 3})
    shop.pay(order["id"])
    for step in ("ship", "deliver"):
        assert shop.admin.post(f"/orders/{order['id']}/{step}").status_code == 200
    line = order["lines"][0]["id"]
    r = shop.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "return_refund",
            "lines": [{"line_id": line, "quantity": 3}],
            "reason": "wrong_size",
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()["id"]
    merchant = mallcore.client(shop.kernel, "merchant", "m1", shop="s1")
    assert merchant.post(f"/after-sales/{case}/approve", json={}).status_code == 200
    desk = mallcore.client(shop.kernel, "warehouse", "desk", shop="s1")
    inspections = [
        {"line_id": line, "quantity": 1, "grade": "A", "disposition": "restock", "passed": True},
        {"line_id": line, "quantity": 1, "grade": "B", "disposition": "b_grade", "passed": True},
        {"line_id": line, "quantity": 1, "grade": "D", "disposition": "send_back", "passed": False},
    ]
    r = desk.post(
        f"/after-sales/{case}/receive", json={"passed": True, "note": "", "inspections": inspections}
    )
    assert r.status_code == 200, r.text
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "b_grade": 1,
        "quarantine": 0,
    }
    entries = shop.admin.get(f"/orders/{order['id']}/timeline", params={"ref": f"after_sale:{case}"}).json()
    assert any(e["kind"] == "wms.return_restock" for e in entries)
    check_invariants(shop.kernel)


def test_a_refund_before_shipment_releases_the_units(mallcore):
    shop = Shop(mallcore, centers=CENTERS, settings={"manual_dispatch": True})
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 3})
    shop.pay(order["id"])
    line = order["lines"][0]["id"]
    r = shop.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "refund_only",
            "lines": [{"line_id": line, "quantity": 1}],
            "reason": "not_wanted",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "refunded", r.json()
    assert live_by_order(shop.kernel) == {order["id"]: 2}
    r = shop.warehouse.post(f"/wms/orders/{order['id']}/dispatch")
    assert r.status_code == 200, r.text
    assert [x["quantity"] for p in r.json()["parcels"] for x in p["lines"]] == [2]
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "b_grade": 0,
        "quarantine": 0,
    }
    check_invariants(shop.kernel)


def test_a_full_refund_before_shipment_closes_the_order_and_frees_everything(mallcore):
    shop = Shop(mallcore, centers=CENTERS, settings={"manual_dispatch": True})
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 2})
    shop.pay(order["id"])
    r = shop.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "refund_only",
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": 2}],
            "reason": "not_wanted",
        },
    )
    assert r.status_code == 201, r.text
    assert shop.order(order["id"])["status"] == "closed"
    assert live_by_order(shop.kernel) == {}
    assert shop.stock()[("TEE", "SH")]["available"] == 5
    check_invariants(shop.kernel)
