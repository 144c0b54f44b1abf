"""Dispatch: warehouse choice, parcels for TMS, outbound movements, manual mode, the retry job."""

from __future__ import annotations

from typing import Any

from mallcore.kernel import Center, hookimpl
from mallcore.kernel.aftersale import Parcel

from .helpers import Shop, check_invariants, live_by_order, movements

# Freight per parcel by warehouse, for the fake TMS below.
PARCEL_COST = {"SH": 1200, "GZ": 800, "BJ": 500}


class FakeFreight(Center):
    """Stands in for TMS: quotes a plan as the sum of a fixed price per parcel."""

    name = "fakefreight"
    after = ("wms",)

    def __init__(self) -> None:
        super().__init__()
        self.quotes: list[list[str | None]] = []
        self.parcels: list[Parcel] = []

    @hookimpl
    def freight_quote(self, kernel: Any, conn: Any, order: Any, lines: Any, parcels: list[Parcel]) -> int:
        self.quotes.append([p.warehouse for p in parcels])
        for p in parcels:
            p.freight = PARCEL_COST[p.warehouse or ""]
        return sum(PARCEL_COST[p.warehouse or ""] for p in parcels)

    @hookimpl
    def order_dispatch(self, ctx: Any) -> None:
        # Runs after WMS, as TMS does: sees the plan.
        self.parcels = list(ctx.parcels)


def dispatch_entry(shop: Shop, order_id: int) -> dict[str, Any]:
    (entry,) = [e for e in shop.timeline(order_id) if e["kind"] == "wms.dispatch"]
    return entry


def test_payment_dispatches_from_the_nearest_warehouse(shop: Shop):
    shop.inbound("SH", "TEE", 5)
    shop.inbound("GZ", "TEE", 5)
    shop.inbound("BJ", "TEE", 5)
    order = shop.placed({"TEE": 2}, region="110105")
    r = shop.pay(order["id"])
    assert r.status_code == 201, r.text
    assert shop.order(order["id"])["status"] == "dispatched"
    entry = dispatch_entry(shop, order["id"])
    assert entry["message"] == "Shipping from BJ warehouse (BJ): the nearest warehouse that has every item"
    assert (entry["data"]["rule"], entry["data"]["warehouses"]) == ("single", ["BJ"])
    assert entry["public"]
    zh = shop.admin.get(f"/orders/{order['id']}/timeline", headers={"Accept-Language": "zh"}).json()
    assert any(e["message"].startswith("由BJ warehouse(BJ)发货") for e in zh)
    assert shop.stock()[("TEE", "BJ")] == {
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
        "b_grade": 0,
        "quarantine": 0,
    }
    out = [m for m in movements(shop.kernel, order_id=order["id"]) if m.kind == "outbound"]
    assert [(m.sku, m.warehouse, m.on_hand, m.reserved, m.actor) for m in out] == [
        ("TEE", "BJ", -2, -2, "system")
    ]
    assert [r["status"] for r in shop.wms_order(order["id"])["reservations"]] == ["consumed"]
    check_invariants(shop.kernel)


def test_parcels_for_tms_and_a_split_over_the_fewest_warehouses(mallcore):
    freight = FakeFreight()
    shop = Shop(mallcore, extra=[freight])
    shop.inbound("SH", "TEE", 5)
    shop.inbound("SH", "MUG", 5)
    shop.inbound("GZ", "CAP", 5)
    shop.inbound("BJ", "CAP", 5)
    shop.inbound("BJ", "TEE", 5)
    order = shop.placed({"TEE": 2, "MUG": 1, "CAP": 1}, region="310115")
    lines = {line["sku"]: line["id"] for line in order["lines"]}
    assert shop.pay(order["id"]).status_code == 201
    # Two warehouses are enough (SH + GZ or SH + BJ); a third is never used.
    assert len(freight.parcels) == 2
    by_wh = {p.warehouse: p for p in freight.parcels}
    assert {"SH", "BJ"} == set(by_wh), "BJ's parcel is cheaper than GZ's"
    assert sorted([(lines["TEE"], 2), (lines["MUG"], 1)]) == sorted(by_wh["SH"].lines)
    assert [(lines["CAP"], 1)] == by_wh["BJ"].lines
    assert (by_wh["SH"].region, by_wh["SH"].weight_grams) == ("310000", 2 * 200 + 400)
    entry = dispatch_entry(shop, order["id"])
    assert (entry["data"]["rule"], entry["data"]["freight"]) == ("split", 1700)
    assert "cheapest of 2 ways (freight ¥17.00)" in entry["message"]
    check_invariants(shop.kernel)


def test_freight_breaks_the_tie_between_equally_few_warehouses(mallcore):
    # TEE only in SH; MUG in GZ and BJ. Delivery to Guangzhou: by distance SH+GZ, by freight SH+BJ.
    def setup(extra: list[Any]) -> tuple[Shop, dict[str, Any]]:
        shop = Shop(mallcore, extra=extra)
        shop.inbound("SH", "TEE", 5)
        shop.inbound("GZ", "MUG", 5)
        shop.inbound("BJ", "MUG", 5)
        order = shop.placed({"TEE": 1, "MUG": 1}, region="440105")
        assert shop.pay(order["id"]).status_code == 201
        return shop, dispatch_entry(shop, order["id"])

    _, nearest = setup([])
    assert nearest["data"]["warehouses"] == ["GZ", "SH"]
    assert nearest["message"].endswith("nearest first")
    shop, cheapest = setup([FakeFreight()])
    assert sorted(cheapest["data"]["warehouses"], key=lambda c: c != "SH") == ["SH", "BJ"]
    assert cheapest["data"]["freight"] == 1700
    # The MUG held in Guangzhou at placement was released there and taken in Beijing.
    levels = shop.stock()
    assert (levels[("MUG", "GZ")]["on_hand"], levels[("MUG", "GZ")]["reserved"]) == (5, 0)
    assert levels[("MUG", "BJ")]["on_hand"] == 4
    check_invariants(shop.kernel)


def test_a_single_warehouse_is_not_priced_against_splits(mallcore):
    freight = FakeFreight()
    shop = Shop(mallcore, extra=[freight])
    shop.inbound("SH", "TEE", 5)
    shop.inbound("SH", "MUG", 5)
    order = shop.placed({"TEE": 1, "MUG": 1}, region="440105")
    shop.pay(order["id"])
    assert freight.quotes == []
    assert [[p.warehouse for p in freight.parcels]] == [["SH"]]


def test_manual_dispatch_queue_and_route(mallcore):
    shop = Shop(mallcore, settings={"manual_dispatch": True})
    mallcore.product(shop.kernel, shop="s2", skus=[("OTHER", 100)])
    shop.inbound("GZ", "TEE", 5)
    shop.inbound("GZ", "OTHER", 5)
    order = shop.placed({"TEE": 2}, region="440105")
    bob = mallcore.client(shop.kernel, "customer", "bob")
    r = bob.post(
        "/orders",
        json={
            "shop": "s2",
            "lines": [{"sku": "OTHER", "quantity": 1}],
            "address": {"name": "B", "phone": "1", "region": "440105", "detail": "x"},
        },
    )
    other = r.json()
    assert shop.pay(order["id"]).status_code == 201
    assert shop.pay(other["id"], client=bob).status_code == 201
    assert shop.order(order["id"])["status"] == "paid"
    s1 = mallcore.client(shop.kernel, "warehouse", "wh-s1", shop="s1")
    queue = s1.get("/wms/dispatch-queue").json()
    assert [(order["id"], "s1", 1, 2, ["GZ"])] == [
        (q["order_id"], q["shop"], q["lines"], q["units"], q["warehouses"]) for q in queue
    ]
    assert {order["id"], other["id"]} == {
        q["order_id"] for q in shop.warehouse.get("/wms/dispatch-queue").json()
    }
    assert shop.alice.get("/wms/dispatch-queue").status_code == 403
    # Another shop's order is invisible.
    assert s1.post(f"/wms/orders/{other['id']}/dispatch").status_code == 404
    assert s1.get(f"/wms/orders/{other['id']}").status_code == 404
    r = s1.post(f"/wms/orders/{order['id']}/dispatch")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "dispatched"
    assert [("GZ", "440100", [{"line_id": order["lines"][0]["id"], "quantity": 2}])] == [
        (p["warehouse"], p["region"], p["lines"]) for p in body["parcels"]
    ]
    assert dispatch_entry(shop, order["id"])["actor"] == "wh-s1"
    again = s1.post(f"/wms/orders/{order['id']}/dispatch")
    assert (again.status_code, again.json()["code"]) == (409, "invalid_transition")
    assert [other["id"]] == [q["order_id"] for q in shop.warehouse.get("/wms/dispatch-queue").json()]
    check_invariants(shop.kernel)


def test_dispatch_job_picks_up_paid_orders_left_behind(mallcore):
    shop = Shop(mallcore, settings={"manual_dispatch": True, "dispatch_retry_after_seconds": 0})
    shop.inbound("SH", "TEE", 5)
    order = shop.placed({"TEE": 1})
    shop.pay(order["id"])
    assert shop.kernel.jobs.run("wms.dispatch_paid") == 0, "manual mode: the job leaves orders to people"
    shop.center.settings.manual_dispatch = False  # as if automatic dispatch had crashed after payment
    assert shop.kernel.jobs.run("wms.dispatch_paid") == 1
    assert shop.order(order["id"])["status"] == "dispatched"
    assert shop.kernel.jobs.run("wms.dispatch_paid") == 0
    check_invariants(shop.kernel)


def test_dispatch_takes_stock_for_orders_that_hold_none(mallcore):
    # Reserve at payment with manual dispatch, then stock moved away: dispatch re-plans.
    shop = Shop(mallcore, settings={"reserve_on": "pay", "manual_dispatch": True})
    shop.inbound("SH", "TEE", 2)
    shop.inbound("GZ", "TEE", 1)
    order = shop.placed({"TEE": 2}, region="310115")
    shop.pay(order["id"])
    assert {order["id"]: 2} == live_by_order(shop.kernel)
    r = shop.warehouse.post(f"/wms/orders/{order['id']}/dispatch")
    assert r.status_code == 200, r.text
    assert live_by_order(shop.kernel) == {}
    assert (shop.stock()[("TEE", "SH")]["on_hand"], shop.stock()[("TEE", "SH")]["reserved"]) == (0, 0)
    check_invariants(shop.kernel)


def test_dispatch_without_stock_leaves_the_order_paid(mallcore):
    shop = Shop(mallcore, settings={"manual_dispatch": True})
    shop.inbound("SH", "TEE", 1)
    order = shop.placed({"TEE": 1})
    shop.pay(order["id"])
    # The warehouse holding the unit closes; no active warehouse has one.
    shop.admin.patch("/wms/warehouses/SH", json={"active": False})
    r = shop.warehouse.post(f"/wms/orders/{order['id']}/dispatch")
    assert (r.status_code, r.json()["code"], r.json()["skus"]) == (409, "out_of_stock", ["TEE"])
    assert shop.order(order["id"])["status"] == "paid"
    assert {order["id"]: 1} == live_by_order(shop.kernel)
    # Stock arrives elsewhere: dispatch ships from there and lets the old hold go.
    shop.inbound("GZ", "TEE", 1)
    assert shop.warehouse.post(f"/wms/orders/{order['id']}/dispatch").status_code == 200
    levels = shop.stock()
    assert (levels[("TEE", "SH")]["on_hand"], levels[("TEE", "SH")]["reserved"]) == (1, 0)
    assert levels[("TEE", "GZ")]["on_hand"] == 0
    kinds = sorted((m.kind, m.warehouse) for m in movements(shop.kernel, order_id=order["id"]))
    assert kinds == [("outbound", "GZ"), ("release", "SH"), ("reserve", "SH")]
    assert [r["status"] for r in shop.wms_order(order["id"])["reservations"]] == ["released"]
    check_invariants(shop.kernel)


def test_the_dispatch_job_gets_past_orders_that_cannot_ship_yet(mallcore):
    # Batches of one order: the order that cannot ship would come first in every run.
    shop = Shop(
        mallcore, settings={"manual_dispatch": True, "dispatch_retry_after_seconds": 0, "expire_batch": 1}
    )
    shop.inbound("SH", "TEE", 1)
    shop.inbound("GZ", "MUG", 1)
    waiting = shop.placed({"TEE": 1})
    ready = shop.placed({"MUG": 1}, region="440105")
    shop.pay(waiting["id"])
    shop.pay(ready["id"])
    shop.admin.patch("/wms/warehouses/SH", json={"active": False})  # TEE's only unit is out of reach
    shop.center.settings.manual_dispatch = False  # as if automatic dispatch had crashed after payment
    assert shop.kernel.jobs.run("wms.dispatch_paid") == 1
    assert shop.order(ready["id"])["status"] == "dispatched"
    assert shop.order(waiting["id"])["status"] == "paid"
    check_invariants(shop.kernel)
