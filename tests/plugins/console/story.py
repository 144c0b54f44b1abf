"""A shop with an after-sale case on its way through the console: merchant, warehouse, finance."""

from __future__ import annotations

from typing import Any

from tests.plugins.refund.conftest import ADDRESS, StandInCarrier

CENTERS = ["catalog", "payment", "finance", "refund", "console"]


class Story:
    """Shop s1 sells a 79.00 tee; above 50.00 a refund needs two finance approvals."""

    def __init__(self, kit: Any, *, second_approval_above: int = 5000) -> None:
        self.kit = kit
        self.carrier = StandInCarrier()
        self.kernel = kit.kernel(
            centers=CENTERS,
            extra=[self.carrier],
            settings={"finance": {"second_approval_above": second_approval_above}},
        )
        kit.product(self.kernel, shop="s1", skus=[("TEE-M", 7900), ("MUG", 3900)])
        kit.product(self.kernel, shop="s2", skus=[("CUP", 1900)])
        self.alice = kit.client(self.kernel, "customer", "alice")
        self.merchant = kit.client(self.kernel, "merchant", "m1", shop="s1")
        self.warehouse = kit.client(self.kernel, "warehouse", "w1", shop="s1")

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
        for step in ("dispatch", "ship", "deliver"):
            assert self.merchant.post(f"/orders/{order['id']}/{step}").status_code == 200, step
        return self.merchant.get(f"/orders/{order['id']}").json()  # type: ignore[no-any-return]

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
            self.carrier.event(self.kernel, case["order_id"], case["id"], status, waybill)

    def case(self, case_id: int) -> dict[str, Any]:
        return self.merchant.get(f"/after-sales/{case_id}").json()  # type: ignore[no-any-return]
