"""Reservation at placement or payment, release on cancel, and the cost of the hot path."""

from __future__ import annotations

import pytest

from .helpers import Shop, check_invariants, live_by_order, movements


def test_placing_holds_stock_in_the_nearest_warehouse_that_has_everything(shop: Shop):
    shop.inbound("SH", "TEE", 5)
    shop.inbound("GZ", "TEE", 5)
    shop.inbound("GZ", "MUG", 5)
    order = shop.placed({"TEE": 2}, region="310115")
    assert {
        (r["sku"], r["warehouse"]): r["quantity"] for r in shop.wms_order(order["id"])["reservations"]
    } == {("TEE", "SH"): 2}
    # Shanghai has no MUG: the whole order is held in Guangzhou rather than split.
    order = shop.placed({"TEE": 1, "MUG": 1}, region="310115")
    held = shop.wms_order(order["id"])["reservations"]
    assert {("TEE", "GZ", "live"), ("MUG", "GZ", "live")} == {
        (r["sku"], r["warehouse"], r["status"]) for r in held
    }
    levels = shop.stock()
    assert (levels[("TEE", "SH")]["reserved"], levels[("TEE", "SH")]["available"]) == (2, 3)
    assert (levels[("TEE", "GZ")]["reserved"], levels[("MUG", "GZ")]["reserved"]) == (1, 1)
    assert all(
        m.kind == "reserve" and m.actor == "alice" for m in movements(shop.kernel, order_id=order["id"])
    )
    check_invariants(shop.kernel)


def test_out_of_stock_is_409_naming_the_sku_and_writes_nothing(shop: Shop):
    shop.inbound("SH", "TEE", 2)
    shop.inbound("SH", "MUG", 9)
    r = shop.place({"TEE": 3, "MUG": 1})
    assert r.status_code == 409
    body = r.json()
    assert (body["code"], body["skus"]) == ("out_of_stock", ["TEE"])
    assert "TEE" in body["detail"] and "MUG" not in body["detail"]
    r = shop.place({"CAP": 1})
    assert (r.json()["code"], r.json()["skus"]) == ("out_of_stock", ["CAP"])
    assert shop.alice.get("/orders").json() == []
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 2,
        "reserved": 0,
        "available": 2,
        "b_grade": 0,
        "quarantine": 0,
    }
    check_invariants(shop.kernel)


def test_a_split_reservation_when_no_warehouse_has_everything(shop: Shop):
    shop.inbound("SH", "TEE", 1)
    shop.inbound("GZ", "TEE", 2)
    shop.inbound("BJ", "MUG", 1)
    order = shop.placed({"TEE": 3, "MUG": 1}, region="440105")
    held = {(r["sku"], r["warehouse"]): r["quantity"] for r in shop.wms_order(order["id"])["reservations"]}
    assert held == {("TEE", "GZ"): 2, ("TEE", "SH"): 1, ("MUG", "BJ"): 1}
    check_invariants(shop.kernel)


def test_inactive_warehouses_are_not_used(shop: Shop):
    shop.inbound("SH", "TEE", 5)
    shop.inbound("GZ", "TEE", 5)
    shop.admin.patch("/wms/warehouses/SH", json={"active": False})
    order = shop.placed({"TEE": 1}, region="310115")
    assert [r["warehouse"] for r in shop.wms_order(order["id"])["reservations"]] == ["GZ"]
    shop.admin.patch("/wms/warehouses/GZ", json={"active": False})
    r = shop.place({"TEE": 1})
    assert (r.status_code, r.json()["code"]) == (409, "out_of_stock")


def wms_statements(shop: Shop, lines: dict[str, int]) -> list[str]:
    with shop.kernel.db.count_statements(keep=True) as counter:
        shop.placed(lines)
    return [s for s in counter.statements if "wms_" in s]


@pytest.mark.parametrize("warehouses", [1, 3])
def test_reservation_statements_do_not_grow_with_lines(mallcore, warehouses):
    skus = [(f"SKU-{i}", 100, 10) for i in range(12)]
    shop = Shop(
        mallcore, skus=skus, warehouses=[("SH", "310000"), ("GZ", "440100"), ("BJ", "110000")][:warehouses]
    )
    for code, _ in [("SH", "310000"), ("GZ", "440100"), ("BJ", "110000")][:warehouses]:
        for sku, *_ in skus:
            shop.inbound(code, sku, 50)
    shop.placed({"SKU-0": 1})  # warm the warehouse cache
    one = wms_statements(shop, {"SKU-0": 1})
    twelve = wms_statements(shop, {sku: 2 for sku, *_ in skus})
    assert len(one) == len(twelve)
    # A read of availability only when there is a choice of warehouse, then
    # one UPDATE for every line and one INSERT each for reservations and movements.
    assert (3 if warehouses == 1 else 4) == len(twelve)
    assert sum(s.startswith("UPDATE wms_stock") for s in twelve) == 1
    check_invariants(shop.kernel)


def test_cancel_releases_the_hold(shop: Shop):
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 3})
    r = shop.alice.post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"})
    assert r.status_code == 200, r.text
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 5,
        "reserved": 0,
        "available": 5,
        "b_grade": 0,
        "quarantine": 0,
    }
    assert [r["status"] for r in shop.wms_order(order["id"])["reservations"]] == ["released"]
    release = [m for m in movements(shop.kernel, order_id=order["id"]) if m.kind == "release"]
    assert [(m.reserved, m.actor, m.reason) for m in release] == [(-3, "alice", "changed my mind")]
    check_invariants(shop.kernel)


def test_reserve_on_pay_holds_nothing_until_paid(mallcore):
    shop = Shop(mallcore, settings={"reserve_on": "pay", "manual_dispatch": True})
    shop.inbound("SH", "TEE", 2)
    first = shop.placed({"TEE": 2})
    second = shop.placed({"TEE": 2})  # placement does not hold: both orders go through
    assert live_by_order(shop.kernel) == {}
    assert shop.stock()[("TEE", "SH")]["available"] == 2
    assert shop.pay(first["id"]).status_code == 201
    assert {first["id"]: 2} == live_by_order(shop.kernel)
    # The second payment is refused before the provider is charged.
    r = shop.pay(second["id"])
    assert (r.status_code, r.json()["code"]) == (409, "out_of_stock")
    assert shop.order(second["id"])["status"] == "awaiting_payment"
    assert shop.admin.get("/payment/payments", params={"order_id": second["id"]}).json() == []
    assert [r["expires_at"] for r in shop.wms_order(first["id"])["reservations"]] == [None]
    check_invariants(shop.kernel)


def test_reserve_on_place_sets_the_hold_expiry(mallcore):
    shop = Shop(mallcore, settings={"unpaid_hold_minutes": 15})
    shop.inbound("SH", "TEE", 2)
    order = shop.placed({"TEE": 1})
    (held,) = shop.wms_order(order["id"])["reservations"]
    from datetime import datetime

    placed = datetime.fromisoformat(shop.order(order["id"])["placed_at"])
    assert round((datetime.fromisoformat(held["expires_at"]) - placed).total_seconds()) == 15 * 60


def test_a_payment_captured_after_the_stock_went_is_kept_and_ships_later(mallcore):
    # Reserve at payment; the provider confirms A's payment (webhook) after B took the last unit.
    shop = Shop(mallcore, settings={"reserve_on": "pay", "dispatch_retry_after_seconds": 0})
    shop.inbound("SH", "TEE", 1)
    first = shop.placed({"TEE": 1})
    second = shop.placed({"TEE": 1})
    r = shop.alice.post(
        f"/orders/{first['id']}/payments", json={"method": "sandbox", "data": {"simulate": "pending"}}
    )
    assert r.status_code == 201 and r.json()["status"] == "pending", r.text
    assert shop.pay(second["id"]).status_code == 201
    assert shop.order(second["id"])["status"] == "dispatched"
    reference = r.json()["reference"]
    r = shop.admin.post(f"/payment/sandbox/{reference}/capture")
    assert r.status_code == 200 and r.json()["status"] == "applied", r.text
    assert shop.order(first["id"])["status"] == "paid"
    (entry,) = [e for e in shop.timeline(first["id"]) if e["kind"] == "wms.backorder"]
    assert entry["data"] == {"skus": ["TEE"]} and entry["public"]
    assert live_by_order(shop.kernel) == {}
    check_invariants(shop.kernel)
    # Stock arrives: the retry job ships it.
    shop.inbound("GZ", "TEE", 1)
    assert shop.kernel.jobs.run("wms.dispatch_paid") == 1
    assert shop.order(first["id"])["status"] == "dispatched"
    check_invariants(shop.kernel)
