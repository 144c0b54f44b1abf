"""The contract with the real refund center: a pickup fails, the customer ships it
themselves, the carrier's events move the case. (test_returns.py covers the
same ground with a stand-in center, independent of the refund center.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .support import paid_order, rows, shop_kernel


def test_pickup_then_own_waybill_move_the_case(mallcore):
    kernel = shop_kernel(mallcore, centers=("catalog", "payment", "tms", "refund"))
    order = paid_order(mallcore, kernel, [("A", 1), ("B", 1)])
    merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
    alice = mallcore.client(kernel, "customer", "alice")
    no = merchant.post(f"/orders/{order['id']}/dispatch").json()["shipments"][0]["tracking_no"]
    merchant.post(f"/tms/sandbox/{no}/advance", json={"status": "delivered"})
    line = alice.get(f"/orders/{order['id']}").json()["lines"][0]
    reason = alice.get("/refund/reasons").json()[0]["code"]
    r = alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "return_refund",
            "lines": [{"line_id": line["id"], "quantity": 1}],
            "reason": reason,
        },
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["id"]
    assert merchant.post(f"/after-sales/{case_id}/approve", json={}).status_code == 200

    start = datetime.now(UTC) + timedelta(hours=2)
    window = {"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()}
    r = alice.post(f"/after-sales/{case_id}/pickup", json=window)
    assert r.status_code == 200, r.text
    pickup = r.json()["pickup"]
    assert (pickup["status"], pickup["attempts"]) == ("booked", 1)
    assert pickup["courier"] and pickup["code"] and pickup["tracking_no"]

    r = merchant.post(f"/tms/sandbox/{pickup['tracking_no']}/advance", json={"status": "pickup_failed"})
    assert r.json()["result"] == "applied"
    assert alice.get(f"/after-sales/{case_id}").json()["status"] == "awaiting_return"

    body = {"carrier": "sandbox", "tracking_no": "RET00001", "phone": "13900000000"}
    assert alice.post(f"/after-sales/{case_id}/return-shipment", json=body).status_code == 200
    assert merchant.post("/tms/sandbox/RET00001/advance").json()["status"] == "picked_up"
    assert alice.get(f"/after-sales/{case_id}").json()["status"] == "return_in_transit"
    merchant.post("/tms/sandbox/RET00001/advance", json={"status": "delivered"})
    case = alice.get(f"/after-sales/{case_id}").json()
    assert case["return_parcel"]["status"] == "delivered"
    assert [(r.kind, r.status) for r in rows(kernel, "tms_shipments", case_id=case_id)] == [
        ("pickup", "pickup_failed"),
        ("return", "delivered"),
    ]
