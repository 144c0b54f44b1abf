"""After-sale: inspected returns go back to stock by disposition; refunds before shipment release.

The refund center drives cases; these tests call ``order_after_sale`` the way
it does (inside an ``after_sale`` stage, contract in docs/centers/wms.md), so
they do not depend on it.
"""

from __future__ import annotations

from typing import Any

from mallcore.kernel import Principal
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine, Inspection, ReturnAddress, ReturnParcel

from .helpers import Shop, check_invariants, live_by_order, movements

DESK = Principal("desk@s1", frozenset({"warehouse"}), "s1")


def step(shop: Shop, order: dict[str, Any], status: str, **fields: Any) -> None:
    lines = fields.pop("lines", None) or [
        CaseLine(line_id=line["id"], sku=line["sku"], quantity=line["quantity"]) for line in order["lines"]
    ]
    case = AfterSaleCase(
        id=fields.pop("id", 7),
        order_id=order["id"],
        type=fields.pop("type", "return_refund"),
        status=status,
        previous=None,
        customer="alice",
        shop="s1",
        lines=lines,
        **fields,
    )
    with shop.kernel.orders.stage("after_sale", order["id"], DESK) as ctx:
        shop.kernel.hook.order_after_sale(ctx=ctx, case=case)


def shipped_order(shop: Shop, lines: dict[str, int], region: str = "310115") -> dict[str, Any]:
    order = shop.placed(lines, region=region)
    assert shop.pay(order["id"]).status_code == 201
    assert shop.order(order["id"])["status"] == "dispatched"
    return order


def line_id(order: dict[str, Any], sku: str) -> int:
    return next(line["id"] for line in order["lines"] if line["sku"] == sku)


def test_inspected_units_go_back_by_disposition(shop: Shop):
    shop.inbound("SH", "TEE", 10)
    order = shipped_order(shop, {"TEE": 5})
    tee = line_id(order, "TEE")
    inspections = [
        Inspection(line_id=tee, sku="TEE", quantity=1, grade="A", disposition="restock"),
        Inspection(line_id=tee, sku="TEE", quantity=1, grade="B", disposition="b_grade"),
        Inspection(line_id=tee, sku="TEE", quantity=1, grade="C", disposition="quarantine"),
        Inspection(line_id=tee, sku="TEE", quantity=1, grade="D", disposition="scrap"),
        Inspection(line_id=tee, sku="TEE", quantity=1, disposition="send_back", passed=False),
    ]
    step(shop, order, "inspected", inspections=inspections)
    assert shop.stock()[("TEE", "SH")] == {
        "on_hand": 6,
        "reserved": 0,
        "available": 6,
        "b_grade": 1,
        "quarantine": 1,
    }
    back = [m for m in movements(shop.kernel, order_id=order["id"]) if m.kind == "return_restock"]
    assert {(1, 0, 0), (0, 1, 0), (0, 0, 1)} == {(m.on_hand, m.b_grade, m.quarantine) for m in back}
    assert {("after_sale:7", "desk@s1", tee)} == {(m.ref, m.actor, m.line_id) for m in back}
    entry = next(e for e in shop.timeline(order["id"]) if e["kind"] == "wms.return_restock")
    assert (entry["ref"], entry["public"]) == ("after_sale:7", False)
    # The same step heard twice puts nothing back twice.
    step(shop, order, "inspected", inspections=inspections)
    assert tuple(shop.stock()[("TEE", "SH")][k] for k in ("on_hand", "b_grade", "quarantine")) == (6, 1, 1)
    check_invariants(shop.kernel)


def test_returns_go_where_the_parcel_was_sent_or_to_the_returns_warehouse(mallcore):
    shop = Shop(mallcore, settings={"returns_warehouse": "BJ"})
    shop.inbound("SH", "TEE", 10)
    order = shipped_order(shop, {"TEE": 3})
    tee = line_id(order, "TEE")
    ok = [Inspection(line_id=tee, sku="TEE", quantity=1)]
    step(shop, order, "inspected", id=1, inspections=ok)
    assert shop.stock()[("TEE", "BJ")]["on_hand"] == 1
    parcel = ReturnParcel(carrier="sandbox", tracking_no="R1", warehouse="GZ")
    step(shop, order, "inspected", id=2, inspections=ok, return_parcel=parcel)
    assert shop.stock()[("TEE", "GZ")]["on_hand"] == 1
    # Landed at another warehouse than the parcel was sent to: goods are where they landed.
    step(shop, order, "inspected", id=3, inspections=ok, return_parcel=parcel, data={"wrong_warehouse": "SH"})
    assert shop.stock()[("TEE", "SH")]["on_hand"] == 8
    check_invariants(shop.kernel)


def test_returns_default_to_the_warehouse_they_left_from(mallcore):
    shop = Shop(mallcore)
    shop.inbound("GZ", "TEE", 4)
    order = shipped_order(shop, {"TEE": 2}, region="440105")
    step(
        shop,
        order,
        "inspected",
        inspections=[Inspection(line_id=line_id(order, "TEE"), sku="TEE", quantity=2)],
    )
    assert shop.stock()[("TEE", "GZ")]["on_hand"] == 4


def test_a_line_never_gets_back_more_than_left_with_it(shop: Shop):
    shop.inbound("SH", "TEE", 10)
    order = shipped_order(shop, {"TEE": 2})
    tee = line_id(order, "TEE")
    step(shop, order, "inspected", id=1, inspections=[Inspection(line_id=tee, sku="TEE", quantity=2)])
    step(shop, order, "inspected", id=2, inspections=[Inspection(line_id=tee, sku="TEE", quantity=2)])
    assert shop.stock()[("TEE", "SH")]["on_hand"] == 10
    check_invariants(shop.kernel)


def test_refund_before_shipment_releases_those_units(mallcore):
    shop = Shop(mallcore, settings={"manual_dispatch": True})
    shop.inbound("SH", "TEE", 10)
    shop.inbound("SH", "MUG", 10)
    order = shop.placed({"TEE": 3, "MUG": 1})
    shop.pay(order["id"])
    tee = line_id(order, "TEE")
    cut = [CaseLine(line_id=tee, sku="TEE", quantity=2)]
    # Other steps and shipped cases change nothing.
    step(shop, order, "approved", type="refund_only", lines=cut, shipped=False)
    step(shop, order, "refunded", type="return_refund", lines=cut, shipped=False)
    assert {order["id"]: 4} == live_by_order(shop.kernel)
    step(shop, order, "refunded", type="refund_only", lines=cut, shipped=False)
    assert {order["id"]: 2} == live_by_order(shop.kernel)
    assert shop.stock()[("TEE", "SH")]["reserved"] == 1
    step(shop, order, "refunded", type="refund_only", lines=cut, shipped=False)  # heard twice
    assert {order["id"]: 2} == live_by_order(shop.kernel)
    r = shop.warehouse.post(f"/wms/orders/{order['id']}/dispatch")
    assert r.status_code == 200, r.text
    (parcel,) = r.json()["parcels"]
    assert {(tee, 1), (line_id(order, "MUG"), 1)} == {(x["line_id"], x["quantity"]) for x in parcel["lines"]}
    assert (shop.stock()[("TEE", "SH")]["on_hand"], shop.stock()[("TEE", "SH")]["reserved"]) == (9, 0)
    check_invariants(shop.kernel)


def test_a_repaired_item_goes_back_to_its_owner_not_into_stock(shop: Shop):
    """A repair case's item is inspected at the warehouse, then shipped back to the
    customer: even a passed "restock" inspection (the refund center's default)
    must not make it sellable, or the shop sells a unit it does not have."""
    shop.inbound("SH", "TEE", 3)
    order = shipped_order(shop, {"TEE": 1})
    tee = line_id(order, "TEE")
    before = shop.stock()[("TEE", "SH")]
    step(
        shop,
        order,
        "inspected",
        type="repair",
        inspections=[Inspection(line_id=tee, sku="TEE", quantity=1, disposition="restock")],
        return_parcel=ReturnParcel(carrier="sandbox", tracking_no="REP1", warehouse="SH"),
    )
    assert before["on_hand"] == 2
    assert shop.stock()[("TEE", "SH")] == before
    assert not [m for m in movements(shop.kernel, order_id=order["id"]) if m.kind == "return_restock"]
    assert not [e for e in shop.timeline(order["id"]) if e["kind"] == "wms.return_restock"]
    check_invariants(shop.kernel)


def _asked(shop: Shop, order: dict[str, Any], warehouse: str | None = None) -> Any:
    """What WMS answers when a case starts waiting for the goods (``awaiting_return``)."""
    lines = [
        CaseLine(line_id=line["id"], sku=line["sku"], quantity=line["quantity"]) for line in order["lines"]
    ]
    case = AfterSaleCase(
        id=9,
        order_id=order["id"],
        type="return_refund",
        status="awaiting_return",
        previous="approved",
        customer="alice",
        shop="s1",
        lines=lines,
        return_address=ReturnAddress(warehouse=warehouse),
    )
    with shop.kernel.orders.stage("after_sale", order["id"], DESK) as ctx:
        shop.kernel.hook.order_after_sale(ctx=ctx, case=case)
    return case.return_address


ADDRESS = {
    "contact": "售后组",
    "phone": "021-60001234",
    "province": "上海市",
    "city": "上海市",
    "district": "青浦区",
    "street": "华腾路 1288 号",
}


def test_the_return_address_is_a_warehouses_that_has_one(mallcore):
    shop = Shop(mallcore)
    shop.inbound("SH", "TEE", 4)
    order = shipped_order(shop, {"TEE": 1})
    platform = mallcore.client(shop.kernel, "warehouse", "platform", platform=True)
    # no warehouse has an address yet: nothing to tell
    assert _asked(shop, order).street == ""
    # one that the goods did not leave from still serves
    r = platform.patch("/wms/warehouses/BJ", json={**ADDRESS, "street": "京南物流基地 7 号库"})
    assert r.status_code == 200 and r.json()["street"] == "京南物流基地 7 号库"
    assert (_asked(shop, order).warehouse, _asked(shop, order).street) == ("BJ", "京南物流基地 7 号库")
    # the one they left from wins once it has an address...
    assert platform.patch("/wms/warehouses/SH", json=ADDRESS).status_code == 200
    found = _asked(shop, order)
    assert (found.warehouse, found.contact, found.phone, found.district) == (
        "SH",
        "售后组",
        "021-60001234",
        "青浦区",
    )
    # ...and the one the after-sale center asks for wins over both
    assert _asked(shop, order, "BJ").warehouse == "BJ"
    # a phone that is not one is refused, and nothing is written
    r = platform.patch("/wms/warehouses/SH", json={"phone": "call me"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    assert platform.get("/wms/warehouses").json()[-1]["phone"] == "021-60001234"
