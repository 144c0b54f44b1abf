"""A shop with an after-sale case on its way through the console: merchant, warehouse, finance.

``Story(kit)`` runs the after-sale centers with a stand-in carrier; ``Story(kit,
full=True)`` enables every first-party center, with a warehouse holding stock,
WMS dispatching paid orders and the sandbox carrier's signed webhooks moving
parcels, so that every page of the console has something to show.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from mallcore.kernel.signing import HEADER, sign
from tests.plugins.refund.conftest import ADDRESS, StandInCarrier

CENTERS = ["catalog", "payment", "finance", "refund", "console"]
ALL = ["catalog", "payment", "wms", "tms", "refund", "finance", "risk", "promotion", "membership", "console"]


class Story:
    """Shop s1 sells a 79.00 tee; above 50.00 a refund needs two finance approvals."""

    def __init__(self, kit: Any, *, second_approval_above: int = 5000, full: bool = False) -> None:
        self.kit, self.full = kit, full
        self.carrier = StandInCarrier()
        self.kernel = kit.kernel(
            centers=ALL if full else CENTERS,
            extra=[] if full else [self.carrier],
            settings={"finance": {"second_approval_above": second_approval_above}},
        )
        kit.product(self.kernel, shop="s1", skus=[("TEE-M", 7900), ("MUG", 3900)])
        kit.product(self.kernel, shop="s2", skus=[("CUP", 1900)])
        self.alice = kit.client(self.kernel, "customer", "alice")
        self.merchant = kit.client(self.kernel, "merchant", "m1", shop="s1")
        self.warehouse = kit.client(self.kernel, "warehouse", "w1", shop="s1")
        if full:
            admin = kit.client(self.kernel, "admin", "root")
            r = admin.post("/wms/warehouses", json={"code": "SH", "name": "Shanghai", "region": "310000"})
            assert r.status_code == 201, r.text
            for sku in ("TEE-M", "MUG"):
                r = self.warehouse.post("/wms/inbound", json={"warehouse": "SH", "sku": sku, "quantity": 20})
                assert r.status_code == 201, r.text

    def webhook(self, tracking_no: str, status: str, **extra: Any) -> None:
        """The sandbox carrier's signed webhook, as the tms center documents it."""
        body = msgspec.json.encode(
            {
                "tracking_no": tracking_no,
                "status": status,
                "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "description": status,
                **extra,
            }
        )
        secret = self.kernel.centers["tms"].carriers["sandbox"].secret
        r = self.kit.client(self.kernel, None).post(
            "/tms/webhooks/sandbox",
            content=body,
            headers={HEADER: sign(secret, body), "Content-Type": "application/json"},
        )
        assert r.status_code == 200, r.text

    def delivered_order(self, sku: str = "TEE-M", quantity: int = 1) -> dict[str, Any]:
        r = self.alice.post(
            "/orders",
            json={"shop": "s1", "lines": [{"sku": sku, "quantity": quantity}], "address": ADDRESS},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        assert (
            self.alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"}).status_code == 201
        )
        if self.full:  # WMS dispatched it at payment; the carrier moves it
            for shipment in self.alice.get(f"/orders/{order['id']}").json()["shipments"]:
                self.webhook(shipment["tracking_no"], "picked_up")
                self.webhook(shipment["tracking_no"], "delivered")
        else:
            for step in ("dispatch", "ship", "deliver"):
                assert self.merchant.post(f"/orders/{order['id']}/{step}").status_code == 200, step
        order = self.merchant.get(f"/orders/{order['id']}").json()
        assert order["status"] == "delivered", order["status"]
        return order  # type: ignore[no-any-return]

    def return_request(self, order: dict[str, Any], quantity: int = 1) -> dict[str, Any]:
        line = order["lines"][0]["id"]
        body = {
            "order_id": order["id"],
            "type": "return_refund",
            "lines": [{"line_id": line, "quantity": quantity}],
            "reason": "wrong_size",
        }
        r = self.alice.post("/after-sales", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def ship_back(self, case: dict[str, Any], waybill: str) -> None:
        r = self.alice.post(
            f"/after-sales/{case['id']}/return-shipment",
            json={"carrier": "sandbox", "tracking_no": waybill, "phone": "13800000000"},
        )
        assert r.status_code == 200, r.text
        for status in ("picked_up", "delivered"):
            if self.full:
                self.webhook(waybill, status, **({"warehouse": "SH"} if status == "delivered" else {}))
            else:
                self.carrier.event(self.kernel, case["order_id"], case["id"], status, waybill)

    def refund_waiting(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """An order, and its return case received and waiting for finance review."""
        order = self.delivered_order()
        case = self.return_request(order)
        assert self.merchant.post(f"/after-sales/{case['id']}/approve").status_code == 200
        self.ship_back(case, f"SFRET{case['id']:04d}")
        r = self.warehouse.post(f"/after-sales/{case['id']}/receive", json={"passed": True})
        assert r.status_code == 200 and r.json()["status"] == "refund_pending_review", r.text
        return order, r.json()

    def case(self, case_id: int) -> dict[str, Any]:
        return self.merchant.get(f"/after-sales/{case_id}").json()  # type: ignore[no-any-return]
