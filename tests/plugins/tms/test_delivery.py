"""A delivery played end to end through signed carrier webhooks over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from mallcore.kernel import Center, OrderContext, hookimpl
from mallcore.kernel.aftersale import Parcel

from .support import (
    WEIGHT_TEMPLATE,
    add_template,
    order_status,
    paid_order,
    rows,
    shop_kernel,
    signed,
)


def at(minutes: int) -> str:
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return (base + timedelta(minutes=minutes)).isoformat()


def test_full_delivery_through_signed_webhooks(mallcore):
    kernel = shop_kernel(mallcore)
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    order = paid_order(mallcore, kernel, [("A", 2), ("B", 1)])
    oid = order["id"]
    alice = mallcore.client(kernel, "customer", "alice")
    warehouse = mallcore.client(kernel, "warehouse", "w1", shop="s1")
    carrier = mallcore.client(kernel, None)

    r = warehouse.post(f"/orders/{oid}/dispatch")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["status"] == "dispatched"
    [shipment] = view["shipments"]
    assert shipment["carrier"] == "sandbox"
    assert shipment["tracking_no"].startswith("SBX")
    assert shipment["status"] == "created"
    assert sorted((x["line_id"], x["quantity"]) for x in shipment["lines"]) == sorted(
        (line["id"], line["quantity"]) for line in view["lines"]
    )
    no = shipment["tracking_no"]
    # 2 x 400 g + 1200 g = 2 kg to Shanghai, ¥110 ≥ ¥99: the shop pays nothing per the template
    assert rows(kernel, "tms_shipments")[0].freight == 0

    steps = [
        ("picked_up", "shipped", "Collected", "Shanghai"),
        ("in_transit", "shipped", "Left the Shanghai hub", "Shanghai"),
        ("out_for_delivery", "shipped", "Courier on the way", "Pudong"),
        ("delivered", "delivered", "Signed by the customer", "Pudong"),
    ]
    for i, (status, order_then, text, place) in enumerate(steps):
        event = {
            "tracking_no": no,
            "status": status,
            "occurred_at": at(i * 10),
            "description": text,
            "location": place,
            "event_id": f"evt-{i}",
        }
        r = signed(carrier, "sandbox", event)
        assert r.status_code == 200, r.text
        assert r.json()["result"] == "applied"
        assert r.json()["status"] == status
        assert order_status(kernel, oid) == order_then

    view = alice.get(f"/orders/{oid}").json()
    [shipment] = view["shipments"]
    assert shipment["status"] == "delivered"
    assert [e["status"] for e in shipment["events"]] == [s[0] for s in steps]
    assert shipment["events"][0]["location"] == "Shanghai"
    assert shipment["events"][0]["description"] == "Collected"

    timeline = alice.get(f"/orders/{oid}/timeline").json()
    kinds = [e["kind"] for e in timeline]
    for kind in (
        "shipment.created",
        "shipment.picked_up",
        "order.shipped",
        "shipment.delivered",
        "order.delivered",
    ):
        assert kind in kinds
    assert kinds.index("shipment.picked_up") < kinds.index("order.shipped")
    picked = next(e for e in timeline if e["kind"] == "shipment.picked_up")
    assert picked["ref"] == f"shipment:{shipment['id']}"
    assert picked["message"] == f"Parcel {no} picked up by Sandbox Express: Collected (Shanghai)"
    zh = alice.get(f"/orders/{oid}/timeline", headers={"Accept-Language": "zh-CN"}).json()
    picked_zh = next(e for e in zh if e["kind"] == "shipment.picked_up")
    assert picked_zh["message"] == f"沙盒快递已揽收包裹{no}:Collected(Shanghai)"
    # only the shipment's entries when asked by ref
    by_ref = alice.get(f"/orders/{oid}/timeline", params={"ref": f"shipment:{shipment['id']}"}).json()
    assert [e["kind"] for e in by_ref] == ["shipment.created"] + [f"shipment.{s[0]}" for s in steps]

    [clock] = rows(kernel, "tms_completions")
    assert clock.order_id == oid
    assert clock.completed_at is None


class TwoWarehouses(Center):
    """Stands in for WMS: ships line 1 from SH and the rest from BJ."""

    name = "twowh"

    @hookimpl
    def order_dispatch(self, ctx: OrderContext) -> None:
        first, *rest = ctx.lines
        ctx.parcels = [
            Parcel(warehouse="SH", region="310000", lines=[(first.id, first.quantity)], weight_grams=400),
            Parcel(
                warehouse="BJ", region="110000", lines=[(x.id, x.quantity) for x in rest], weight_grams=1200
            ),
        ]


def test_split_parcels_deliver_the_order_when_the_last_arrives(mallcore):
    kernel = shop_kernel(mallcore, extra=[TwoWarehouses])
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True, split="per_parcel")
    order = paid_order(mallcore, kernel, [("A", 1), ("B", 1)])
    oid = order["id"]
    # ¥80 < ¥99 to Shanghai, 1.6 kg as one consignment: ¥8 + ¥3
    assert order["shipping"] == 1100
    warehouse = mallcore.client(kernel, "warehouse", "w1", shop="s1")
    carrier = mallcore.client(kernel, None)
    view = warehouse.post(f"/orders/{oid}/dispatch").json()
    assert [(s["warehouse"], s["status"]) for s in view["shipments"]] == [
        ("SH", "created"),
        ("BJ", "created"),
    ]
    # per parcel, as the template says: 400 g → ¥8, 1.2 kg → ¥8 + ¥3
    assert [r.freight for r in rows(kernel, "tms_shipments")] == [800, 1100]
    sh, bj = (s["tracking_no"] for s in view["shipments"])
    timeline = warehouse.get(f"/orders/{oid}/timeline").json()
    created = [e["message"] for e in timeline if e["kind"] == "shipment.created"]
    assert created[0].startswith("Parcel 1 of 2: parcel handed to")
    assert created[1].endswith("from warehouse BJ")

    signed(carrier, "sandbox", {"tracking_no": bj, "status": "picked_up", "occurred_at": at(0)})
    assert order_status(kernel, oid) == "shipped"
    signed(carrier, "sandbox", {"tracking_no": bj, "status": "delivered", "occurred_at": at(5)})
    assert order_status(kernel, oid) == "shipped"  # the SH parcel is still out
    r = signed(carrier, "sandbox", {"tracking_no": sh, "status": "delivered", "occurred_at": at(9)})
    assert r.json()["result"] == "applied"
    assert order_status(kernel, oid) == "delivered"


def test_staff_post_events_by_hand(mallcore):
    kernel = shop_kernel(mallcore)
    order = paid_order(mallcore, kernel, [("A", 1)])
    oid = order["id"]
    warehouse = mallcore.client(kernel, "warehouse", "w1", shop="s1")
    view = warehouse.post(f"/orders/{oid}/dispatch").json()
    shipment_id = view["shipments"][0]["id"]
    alice = mallcore.client(kernel, "customer", "alice")
    other_shop = mallcore.client(kernel, "merchant", "m2", shop="s2")
    bob = mallcore.client(kernel, "customer", "bob")

    body = {"status": "picked_up", "description": "Handed over at the dock", "location": "Dock 3"}
    r = alice.post(f"/tms/shipments/{shipment_id}/events", json=body)
    assert (r.status_code, r.json()["code"]) == (403, "role_required")
    assert other_shop.post(f"/tms/shipments/{shipment_id}/events", json=body).status_code == 404
    assert bob.get(f"/tms/shipments/{shipment_id}").status_code == 404
    assert order_status(kernel, oid) == "dispatched"

    r = warehouse.post(f"/tms/shipments/{shipment_id}/events", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["result"] == "applied"
    assert order_status(kernel, oid) == "shipped"
    detail = alice.get(f"/tms/shipments/{shipment_id}").json()
    assert [(e["status"], e["source"], e["location"]) for e in detail["events"]] == [
        ("picked_up", "shop", "Dock 3")
    ]
    entry = next(
        e for e in warehouse.get(f"/orders/{oid}/timeline").json() if e["kind"] == "shipment.picked_up"
    )
    assert entry["actor"] == "w1"
    # what a shop's staff see: their shop only
    assert [s["id"] for s in warehouse.get("/tms/shipments").json()] == [shipment_id]
    assert other_shop.get("/tms/shipments").json() == []
    assert [s["id"] for s in alice.get("/tms/shipments").json()] == [shipment_id]
    assert bob.get("/tms/shipments").json() == []


def test_the_sandbox_carrier_moves_a_parcel_step_by_step(mallcore):
    kernel = shop_kernel(mallcore)
    order = paid_order(mallcore, kernel, [("A", 1)])
    oid = order["id"]
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    no = merchant.post(f"/orders/{oid}/dispatch").json()["shipments"][0]["tracking_no"]
    alice = mallcore.client(kernel, "customer", "alice")
    assert alice.post(f"/tms/sandbox/{no}/advance").status_code == 403
    seen = []
    for _ in range(4):
        r = merchant.post(f"/tms/sandbox/{no}/advance")
        assert r.status_code == 200, r.text
        seen.append(r.json()["status"])
    assert seen == ["picked_up", "in_transit", "out_for_delivery", "delivered"]
    assert order_status(kernel, oid) == "delivered"
    r = merchant.post(f"/tms/sandbox/{no}/advance")
    assert (r.status_code, r.json()["code"]) == (409, "shipment_not_advanceable")
    # every step went through the webhook path: signed, recorded as the carrier's
    assert {e.source for e in rows(kernel, "tms_events")} == {"sandbox"}
    assert merchant.post("/tms/sandbox/NOPE123/advance").status_code == 404


def test_dispatch_with_wms(mallcore):
    """With the real WMS: payment dispatches by itself, WMS picks the warehouse, TMS ships it."""
    kernel = shop_kernel(mallcore, centers=("catalog", "payment", "wms", "tms"))
    add_template(mallcore, kernel, WEIGHT_TEMPLATE, default=True)
    admin = mallcore.client(kernel, "admin", "root")
    r = admin.post("/wms/warehouses", json={"code": "SH", "name": "Shanghai", "region": "310000"})
    assert r.status_code == 201, r.text
    for sku in ("A", "B"):
        r = admin.post("/wms/inbound", json={"warehouse": "SH", "sku": sku, "quantity": 10})
        assert r.status_code in (200, 201), r.text
    order = paid_order(mallcore, kernel, [("A", 1), ("B", 1)])
    oid = order["id"]
    assert order_status(kernel, oid) == "dispatched"
    alice = mallcore.client(kernel, "customer", "alice")
    [shipment] = alice.get(f"/orders/{oid}").json()["shipments"]
    assert shipment["warehouse"] == "SH"
    carrier = mallcore.client(kernel, None)
    for i, status in enumerate(("picked_up", "delivered")):
        r = signed(
            carrier,
            "sandbox",
            {"tracking_no": shipment["tracking_no"], "status": status, "occurred_at": at(i)},
        )
        assert r.json()["result"] == "applied"
    assert order_status(kernel, oid) == "delivered"
    with kernel.db.transaction(write=False) as conn:
        freight = conn.execute(sa.select(kernel.metadatas["tms"].tables["tms_shipments"].c.freight)).scalar()
    assert freight == 1100  # 1.6 kg, ¥80 to Shanghai


def test_a_shop_declaring_its_parcel_delivered_waits_for_the_customer(mallcore):
    """The shop's own 'delivered' would release the customer's money to it: it is a claim."""
    kernel = shop_kernel(mallcore)
    order = paid_order(mallcore, kernel, [("A", 1)])
    oid = order["id"]
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    alice = mallcore.client(kernel, "customer", "alice")
    bob = mallcore.client(kernel, "customer", "bob")
    shipment_id = merchant.post(f"/orders/{oid}/dispatch").json()["shipments"][0]["id"]
    r = merchant.post(f"/tms/shipments/{shipment_id}/events", json={"status": "delivered"})
    assert r.status_code == 201, r.text
    assert r.json()["result"] == "awaiting_confirmation"
    assert order_status(kernel, oid) == "dispatched"
    timeline = [e["kind"] for e in alice.get(f"/orders/{oid}/timeline").json()]
    assert "shipment.delivery_declared" in timeline and "order.delivered" not in timeline
    # only the order's customer confirms
    assert merchant.post(f"/tms/shipments/{shipment_id}/confirm").status_code == 403
    assert bob.post(f"/tms/shipments/{shipment_id}/confirm").status_code == 404
    r = alice.post(f"/tms/shipments/{shipment_id}/confirm", json={"note": "got it"})
    assert (r.status_code, r.json()["result"]) == (200, "applied"), r.text
    assert order_status(kernel, oid) == "delivered"
    again = alice.post(f"/tms/shipments/{shipment_id}/confirm")
    assert (again.status_code, again.json()["code"]) == (409, "shipment_not_open")


def test_platform_staff_deliver_at_once(mallcore):
    kernel = shop_kernel(mallcore)
    order = paid_order(mallcore, kernel, [("A", 1)])
    ops = mallcore.client(kernel, "warehouse", "ops", platform=True)
    shipment_id = ops.post(f"/orders/{order['id']}/dispatch").json()["shipments"][0]["id"]
    r = ops.post(f"/tms/shipments/{shipment_id}/events", json={"status": "delivered"})
    assert (r.status_code, r.json()["result"]) == (201, "applied"), r.text
    assert order_status(kernel, order["id"]) == "delivered"
