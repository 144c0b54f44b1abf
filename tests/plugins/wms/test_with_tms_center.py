"""WMS with the real TMS center: one shipment per warehouse parcel."""

from __future__ import annotations

from .helpers import Shop, check_invariants


def test_each_parcel_of_the_plan_becomes_a_shipment(mallcore):
    shop = Shop(mallcore, centers=["catalog", "payment", "wms", "tms"])
    shop.inbound("SH", "TEE", 5)
    shop.inbound("GZ", "MUG", 5)
    order = shop.placed({"TEE": 2, "MUG": 1}, region="440105")
    assert shop.pay(order["id"]).status_code == 201
    view = shop.order(order["id"])
    assert view["status"] == "dispatched"
    lines = {line["sku"]: line["id"] for line in order["lines"]}
    shipped = {s["warehouse"]: [(x["line_id"], x["quantity"]) for x in s["lines"]] for s in view["shipments"]}
    assert shipped == {"GZ": [(lines["MUG"], 1)], "SH": [(lines["TEE"], 2)]}
    assert all(s["tracking_no"] for s in view["shipments"])
    check_invariants(shop.kernel)
