"""The source's two after-sale stories end to end, with wms, tms and finance enabled.

- Taobao: the customer files the return waybill ("我已寄出"), the carrier's
  signed webhooks move the case, the warehouse receives and inspects, WMS
  restocks, finance reviews, the refund is paid and the order closes.
- JD: a door pickup booked through TMS, an exchange whose replacement order
  goes through reserve and dispatch like any order ("换新订单号").
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from mallcore.kernel.signing import HEADER, sign

from .conftest import ADDRESS

CENTERS = ["catalog", "payment", "finance", "wms", "tms", "refund"]


class Stack:
    def __init__(self, kit: Any, stock: dict[str, int] | None = None, **settings: Any) -> None:
        self.kit = kit
        self.kernel = kit.kernel(centers=CENTERS, settings=settings)
        kit.product(
            self.kernel, shop="s1", skus=[("TEE-M", 7900, 200), ("TEE-L", 7900, 220), ("MUG", 3900, 400)]
        )
        self.admin = kit.client(self.kernel, "admin", "root")
        self.alice = kit.client(self.kernel, "customer", "alice")
        self.merchant = kit.client(self.kernel, "merchant", "m1", shop="s1")
        self.warehouse = kit.client(self.kernel, "warehouse", "w1", shop="s1")
        self.finance = kit.client(self.kernel, "finance", "f1", shop="s1")
        r = self.admin.post("/wms/warehouses", json={"code": "SH", "name": "Shanghai", "region": "310000"})
        assert r.status_code == 201, r.text
        for sku, quantity in {"TEE-M": 10, "TEE-L": 10, "MUG": 10, **(stock or {})}.items():
            if quantity:
                r = self.warehouse.post(
                    "/wms/inbound", json={"warehouse": "SH", "sku": sku, "quantity": quantity}
                )
                assert r.status_code == 201, r.text

    def stock(self, sku: str) -> Any:
        r = self.warehouse.get(f"/wms/stock/{sku}")
        assert r.status_code == 200, r.text
        return r.json()

    def carrier_event(self, tracking_no: str, status: str, **extra: Any) -> Any:
        """The sandbox carrier's signed webhook, as the tms center documents it."""
        body = msgspec.json.encode(
            {
                "tracking_no": tracking_no,
                "status": status,
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "description": extra.pop("description", status),
                **extra,
            }
        )
        r = self.kit.client(self.kernel, None).post(
            "/tms/webhooks/sandbox",
            content=body,
            headers={
                HEADER: sign(self.kernel.centers["tms"].carriers["sandbox"].secret, body),
                "Content-Type": "application/json",
            },
        )
        assert r.status_code == 200, r.text
        return r.json()

    def delivered_order(self, lines: list[tuple[str, int]]) -> dict[str, Any]:
        r = self.alice.post(
            "/orders",
            json={"shop": "s1", "lines": [{"sku": s, "quantity": q} for s, q in lines], "address": ADDRESS},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        r = self.alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
        assert r.status_code == 201, r.text
        order = self.alice.get(f"/orders/{order['id']}").json()
        assert order["status"] == "dispatched", order["status"]  # WMS dispatched after payment
        for shipment in order["shipments"]:
            self.carrier_event(shipment["tracking_no"], "picked_up")
            self.carrier_event(shipment["tracking_no"], "delivered")
        order = self.alice.get(f"/orders/{order['id']}").json()
        assert order["status"] == "delivered"
        return order  # type: ignore[no-any-return]


@pytest.fixture
def stack(mallcore: Any) -> Stack:
    return Stack(mallcore)


def test_taobao_return_with_customer_waybill_finance_review_and_closed_order(stack: Stack) -> None:
    order = stack.delivered_order([("TEE-M", 1)])
    line = order["lines"][0]
    before = stack.stock("TEE-M")

    r = stack.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "return_refund",
            "lines": [{"line_id": line["id"], "quantity": 1}],
            "reason": "no_reason",
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert stack.merchant.post(f"/after-sales/{case['id']}/approve").json()["status"] == "awaiting_return"
    r = stack.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SFRET0001", "phone": "13800000000"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["return_parcel"]["warehouse"] == "SH"

    stack.carrier_event("SFRET0001", "picked_up", description="快递员已揽收")
    assert stack.alice.get(f"/after-sales/{case['id']}").json()["status"] == "return_in_transit"
    stack.carrier_event("SFRET0001", "in_transit", description="运输中")
    stack.carrier_event("SFRET0001", "delivered", warehouse="SH", description="仓库已签收")
    arrived = stack.alice.get(f"/after-sales/{case['id']}").json()
    assert arrived["status"] == "return_in_transit" and arrived["timer"] == "receive"
    assert arrived["return_parcel"]["status"] == "delivered"

    r = stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True, "note": "tags on"})
    assert r.status_code == 200, r.text
    pending = r.json()
    assert pending["status"] == "refund_pending_review"
    assert pending["refund_amount"] == line["total"] - line["shipping"]
    # WMS put the unit back on the shelf it left from
    assert stack.stock("TEE-M")["on_hand"] == before["on_hand"] + 1

    # maker-checker: the warehouse that received it cannot approve the refund
    w_fin = stack.kit.client(stack.kernel, ["finance"], "w1", shop="s1")
    r = w_fin.post(f"/finance/refunds/{pending['refund_id']}/approve")
    assert r.status_code == 403 and r.json()["code"] == "maker_checker"
    r = stack.finance.post(f"/finance/refunds/{pending['refund_id']}/approve")
    assert r.status_code == 200, r.text
    done = stack.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    assert done["status"] == "refunded"
    messages = [e["message"] for e in done["timeline"]]
    for phrase in ("买家已寄出", "商品已经收到且登记检测完毕,等待处理", "等待财务审核", "已原路退回"):
        assert any(phrase in m for m in messages), phrase
    o = stack.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == pending["refund_amount"]
    # no freight template here: the goods were all that was paid, so all is refunded and the order closes
    assert line["shipping"] == 0 and o["refunded"] == o["paid"]
    assert o["status"] == "closed"
    # the customer's tracking page shows both parcels and the case
    page = stack.kit.client(stack.kernel, None).get(o["tracking_url"], headers={"Accept-Language": "zh"})
    assert page.status_code == 200
    assert order["shipments"][0]["tracking_no"] in page.text and "SFRET0001" in page.text
    assert "退款成功" in page.text


def test_jd_pickup_and_exchange_with_a_replacement_order(stack: Stack) -> None:
    order = stack.delivered_order([("TEE-M", 1), ("MUG", 1)])
    tee = order["lines"][0]
    tee_l_before = stack.stock("TEE-L")
    r = stack.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "exchange",
            "lines": [{"line_id": tee["id"], "quantity": 1}],
            "reason": "wrong_size",
            "replacement_skus": {str(tee["id"]): "TEE-L"},
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()
    stack.merchant.post(f"/after-sales/{case['id']}/approve")
    start = datetime.now(UTC) + timedelta(hours=2)
    r = stack.alice.post(
        f"/after-sales/{case['id']}/pickup",
        json={"window_start": start.isoformat(), "window_end": (start + timedelta(hours=2)).isoformat()},
    )
    assert r.status_code == 200, r.text
    booked = r.json()
    assert booked["status"] == "pickup_requested"
    pickup = booked["pickup"]
    assert pickup["status"] == "booked" and pickup["code"] and pickup["tracking_no"]
    assert any("上门取件" in e["message"] or "Pickup" in e["message"] for e in booked["timeline"])

    stack.carrier_event(pickup["tracking_no"], "picked_up")
    assert stack.alice.get(f"/after-sales/{case['id']}").json()["status"] == "return_in_transit"
    stack.carrier_event(pickup["tracking_no"], "delivered", warehouse="SH")
    r = stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "replacement_created"
    new_id = done["replacement_order_id"]
    zh = stack.alice.get(f"/after-sales/{case['id']}", headers={"Accept-Language": "zh"}).json()
    assert any(f"换新订单号 {new_id}" in e["message"] for e in zh["timeline"])
    new = stack.alice.get(f"/orders/{new_id}").json()
    assert new["parent_id"] == order["id"] and new["total"] == 0
    assert new["extra"]["replacement_for"]["case_id"] == case["id"]
    # reserved and dispatched like any order: a parcel with its own waybill
    assert new["status"] == "dispatched", new["status"]
    assert new["shipments"] and new["shipments"][0]["tracking_no"]
    assert stack.stock("TEE-L")["on_hand"] == tee_l_before["on_hand"] - 1
    assert stack.stock("TEE-M")["on_hand"] == 10  # the returned unit is back
    assert stack.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_refund_before_shipment_is_paid_at_once_and_releases_stock(mallcore: Any) -> None:
    # A cancellation of those lines: never held for finance review, so the stock is released
    # before any dispatch can ship the units.
    stack = Stack(mallcore, wms={"manual_dispatch": True})
    r = stack.alice.post(
        "/orders",
        json={
            "shop": "s1",
            "lines": [{"sku": "MUG", "quantity": 2}, {"sku": "TEE-M", "quantity": 1}],
            "address": ADDRESS,
        },
    )
    order = r.json()
    mug, tee = order["lines"]
    assert stack.alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    assert stack.stock("MUG")["reserved"] == 2
    r = stack.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "refund_only",
            "lines": [{"line_id": mug["id"], "quantity": 2}],
            "reason": "not_wanted",
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["status"] == "refunded" and case["shipped"] is False
    assert case["refund_status"] == "refunded" and case["refund_amount"] == 2 * 3900
    assert stack.finance.get("/finance/refunds", params={"status": "all"}).json() == []
    # booked all the same
    assert [
        e["kind"]
        for e in stack.finance.get("/finance/entries", params={"refund_id": case["refund_id"]}).json()
    ] == ["refund"]
    assert stack.stock("MUG")["reserved"] == 0
    timeline = stack.admin.get(f"/orders/{order['id']}/timeline").json()
    assert any(e["kind"] == "wms.release" for e in timeline)
    # the dispatch that follows ships only what is left
    assert stack.merchant.post(f"/orders/{order['id']}/dispatch").status_code == 200
    o = stack.alice.get(f"/orders/{order['id']}").json()
    assert o["refunded"] == 2 * 3900
    shipped = [(x["line_id"], x["quantity"]) for s in o["shipments"] for x in s["lines"]]
    assert shipped == [(tee["id"], 1)]
    assert stack.stock("MUG")["on_hand"] == 10


def test_refund_only_after_shipment_still_waits_for_finance(mallcore: Any) -> None:
    stack = Stack(mallcore)
    order = stack.delivered_order([("MUG", 1)])
    r = stack.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "refund_only",
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": 1}],
            "reason": "missing",
        },
    )
    case = stack.merchant.post(f"/after-sales/{r.json()['id']}/approve").json()
    assert case["status"] == "refund_pending_review" and case["shipped"] is True
    assert stack.finance.post(f"/finance/refunds/{case['refund_id']}/approve").status_code == 200
    assert stack.alice.get(f"/after-sales/{case['id']}").json()["status"] == "refunded"


def test_exchange_without_stock_is_settled_as_a_refund(mallcore: Any) -> None:
    from mallcore.plugins.refund import sla

    stack = Stack(mallcore, stock={"TEE-L": 0})
    order = stack.delivered_order([("TEE-M", 1), ("MUG", 1)])
    tee = order["lines"][0]
    case = stack.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": "exchange",
            "lines": [{"line_id": tee["id"], "quantity": 1}],
            "reason": "wrong_size",
            "replacement_skus": {str(tee["id"]): "TEE-L"},
        },
    ).json()
    stack.merchant.post(f"/after-sales/{case['id']}/approve")
    stack.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": "SFEXC0001", "phone": "13800000000"},
    )
    r = stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
    assert r.status_code == 200, r.text
    waiting = r.json()
    assert waiting["status"] == "inspected" and waiting["replacement_order_id"] is None
    assert waiting["timer"] == "approve"
    assert any(e["kind"] == "after_sale.replacement_failed" for e in waiting["timeline"])
    # the returned unit went back to stock all the same
    assert stack.stock("TEE-M")["on_hand"] == 10
    r = stack.merchant.post(f"/after-sales/{case['id']}/approve")
    assert r.status_code == 409 and r.json()["code"] == "replacement_failed"
    assert stack.alice.get("/orders?status=paid").json() == []
    # the merchant stays silent: the timer settles it as a refund, for finance to review
    center = stack.kernel.centers["refund"]
    later = center.clock() + timedelta(hours=49)
    center.clock = lambda: later
    assert sla.run(center) == 1
    settled = stack.alice.get(f"/after-sales/{case['id']}").json()
    assert settled["status"] == "refund_pending_review" and settled["refund_amount"] == 7900
    assert stack.finance.post(f"/finance/refunds/{settled['refund_id']}/approve").status_code == 200
    assert stack.alice.get(f"/after-sales/{case['id']}").json()["status"] == "refunded"


def test_repair_goes_back_with_its_own_tracked_waybill(stack: Stack) -> None:
    order = stack.delivered_order([("MUG", 1)])
    case = _case(stack, order, "repair", order["lines"][0]["id"], reason="quality")
    _send_back(stack, case, "SFREP0001")
    assert (
        stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).json()["status"]
        == "inspected"
    )
    assert stack.warehouse.post(f"/after-sales/{case['id']}/repaired").json()["status"] == "repaired"
    r = stack.warehouse.post(
        f"/after-sales/{case['id']}/ship-back", json={"carrier": "sandbox", "tracking_no": "SBBACK0001"}
    )
    assert r.status_code == 200 and r.json()["status"] == "shipped_back"
    shipments = stack.admin.get("/tms/shipments", params={"case_id": case["id"]}).json()
    assert any(s["tracking_no"] == "SBBACK0001" and s["kind"] == "ship_back" for s in shipments), shipments
    assert stack.alice.get(f"/orders/{order['id']}").json()["refunded"] == 0


def test_returned_goods_are_restocked_where_the_warehouse_received_them(stack: Stack) -> None:
    r = stack.admin.post("/wms/warehouses", json={"code": "BJ", "name": "Beijing", "region": "110000"})
    assert r.status_code == 201, r.text
    order = stack.delivered_order([("TEE-M", 1)])
    case = _case(stack, order, "return_refund", order["lines"][0]["id"], reason="no_reason")
    # sent to SH, landed (says the carrier) at SH, but the desk at BJ received it
    _send_back(stack, case, "SFRET0BJ1")
    r = stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True, "warehouse": "BJ"})
    assert r.status_code == 200, r.text
    by_wh = {s["warehouse"]: s for s in stack.warehouse.get("/wms/stock", params={"sku": "TEE-M"}).json()}
    assert by_wh["BJ"]["on_hand"] == 1
    assert by_wh["SH"]["on_hand"] == 9  # the unit that left stays gone from SH


def _case(
    stack: Stack, order: dict[str, Any], type_: str, line_id: int, reason: str = "wrong_size", **extra: Any
) -> dict[str, Any]:
    """A case on one unit of ``line_id``, opened by alice and approved by the merchant."""
    r = stack.alice.post(
        "/after-sales",
        json={
            "order_id": order["id"],
            "type": type_,
            "lines": [{"line_id": line_id, "quantity": 1}],
            "reason": reason,
            **extra,
        },
    )
    assert r.status_code == 201, r.text
    case = r.json()
    assert stack.merchant.post(f"/after-sales/{case['id']}/approve").status_code == 200
    return case  # type: ignore[no-any-return]


def _send_back(stack: Stack, case: dict[str, Any], waybill: str) -> None:
    r = stack.alice.post(
        f"/after-sales/{case['id']}/return-shipment",
        json={"carrier": "sandbox", "tracking_no": waybill, "phone": "13800000000"},
    )
    assert r.status_code == 200, r.text
    stack.carrier_event(waybill, "delivered", warehouse="SH")


def _exchange_for_tee_l(stack: Stack, order: dict[str, Any]) -> dict[str, Any]:
    """One TEE-M of ``order`` exchanged for a TEE-L; returns the replacement order."""
    tee = order["lines"][0]
    exchange = _case(stack, order, "exchange", tee["id"], replacement_skus={str(tee["id"]): "TEE-L"})
    _send_back(stack, exchange, f"SFEXC{exchange['id']:04d}")
    done = stack.warehouse.post(f"/after-sales/{exchange['id']}/receive", json={"passed": True}).json()
    assert done["status"] == "replacement_created"
    return stack.alice.get(f"/orders/{done['replacement_order_id']}").json()  # type: ignore[no-any-return]


def test_goods_received_in_exchange_returned_for_money_are_restocked(stack: Stack) -> None:
    """TEE-M exchanged for TEE-L; the TEE-L then comes back on a return on the original order."""
    order = stack.delivered_order([("TEE-M", 1)])
    tee = order["lines"][0]
    replacement = _exchange_for_tee_l(stack, order)
    for shipment in replacement["shipments"]:
        stack.carrier_event(shipment["tracking_no"], "picked_up")
        stack.carrier_event(shipment["tracking_no"], "delivered")
    assert stack.alice.get(f"/orders/{replacement['id']}").json()["status"] == "delivered"
    assert stack.stock("TEE-M")["on_hand"] == 10 and stack.stock("TEE-L")["on_hand"] == 9

    # the TEE-L goes back for the money paid on the original order
    case = _case(stack, order, "return_refund", tee["id"])
    assert case["lines"][0]["sku"] == "TEE-L"
    _send_back(stack, case, "SFRET0102")
    r = stack.warehouse.post(
        f"/after-sales/{case['id']}/receive",
        json={
            "passed": True,
            "inspections": [
                {"line_id": tee["id"], "quantity": 1, "grade": "B", "disposition": "b_grade", "passed": True}
            ],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "refund_pending_review"
    # the TEE-L is back, in the bucket its inspection chose; the TEE-M count is untouched
    tee_l = stack.stock("TEE-L")
    assert (tee_l["on_hand"], tee_l["b_grade"]) == (9, 1)
    assert stack.stock("TEE-M")["on_hand"] == 10
    timeline = stack.admin.get(f"/orders/{order['id']}/timeline", params={"ref": f"after_sale:{case['id']}"})
    restocked = [
        x for e in timeline.json() if e["kind"] == "wms.return_restock" for x in e["data"]["restocked"]
    ]
    assert [(x["sku"], x["quantity"], x["order_id"]) for x in restocked] == [("TEE-L", 1, replacement["id"])]
    # booked against the replacement's shipment, which now balances
    moves = stack.warehouse.get(f"/wms/orders/{replacement['id']}").json()["movements"]
    assert sorted(
        (m["kind"], m["sku"], m["on_hand"] + m["b_grade"]) for m in moves if m["kind"] != "reserve"
    ) == [
        ("outbound", "TEE-L", -1),
        ("return_restock", "TEE-L", 1),
    ]


def test_own_units_and_exchanged_units_of_a_line_are_restocked_apart(stack: Stack) -> None:
    # Two TEE-M: one exchanged for a TEE-L. Both the other TEE-M and the TEE-L come back for
    # money; the TEE-L is received first. Each is restocked, against what its order shipped.
    order = stack.delivered_order([("TEE-M", 2)])
    tee = order["lines"][0]
    replacement = _exchange_for_tee_l(stack, order)
    own = _case(stack, order, "return_refund", tee["id"])
    exchanged = _case(stack, order, "return_refund", tee["id"])
    assert (own["lines"][0]["sku"], exchanged["lines"][0]["sku"]) == ("TEE-M", "TEE-L")
    assert stack.stock("TEE-M")["on_hand"] == 9 and stack.stock("TEE-L")["on_hand"] == 9
    for case, waybill in ((exchanged, "SFRET0201"), (own, "SFRET0202")):
        _send_back(stack, case, waybill)
        r = stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
        assert r.status_code == 200, r.text
    assert stack.stock("TEE-L")["on_hand"] == 10
    assert stack.stock("TEE-M")["on_hand"] == 10
    assert replacement["status"] == "dispatched"


def test_goods_of_a_replacement_that_never_shipped_are_not_restocked(mallcore: Any) -> None:
    # The exchange's replacement is still waiting for the warehouse (manual dispatch): whatever
    # comes back on a return of "the replacement's goods", no TEE-L left, so none is restocked.
    stack = Stack(mallcore, wms={"manual_dispatch": True})
    r = stack.alice.post(
        "/orders", json={"shop": "s1", "lines": [{"sku": "TEE-M", "quantity": 1}], "address": ADDRESS}
    )
    order = r.json()
    assert stack.alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
    assert stack.warehouse.post(f"/wms/orders/{order['id']}/dispatch").status_code == 200
    order = stack.alice.get(f"/orders/{order['id']}").json()
    for shipment in order["shipments"]:
        stack.carrier_event(shipment["tracking_no"], "picked_up")
        stack.carrier_event(shipment["tracking_no"], "delivered")
    replacement = _exchange_for_tee_l(stack, order)
    assert replacement["status"] == "paid"
    case = _case(stack, order, "return_refund", order["lines"][0]["id"])
    assert case["lines"][0]["sku"] == "TEE-L"
    _send_back(stack, case, "SFRET0301")
    assert (
        stack.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True}).status_code == 200
    )
    tee_l = stack.stock("TEE-L")
    assert (tee_l["on_hand"], tee_l["reserved"]) == (10, 1)  # held for the replacement, none added
