"""Coupon claims per customer and device, counted from the event the promotion center
emits when a customer claims (领券) or redeems a coupon: ``promotion.coupon_claimed``
with ``customer``, ``template_id``, ``shop``, ``via`` and, over HTTP, ``device_id``
and ``ip`` (read from branch center-promotion, ``coupons.py``). Grants by other
centers (``promotion.coupon_granted``) are not the customer's claims."""

from __future__ import annotations

from typing import Any

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from mallcore.kernel import Caller, Center, Event, hookimpl
from mallcore.kernel import facts as request_facts
from mallcore.kernel.http import center_router, roles

from .support import order, risk_kernel, rule, staff


class ClaimController(Controller):
    path = "/templates"
    guards = [roles("customer")]

    @post("/{template_id:int}/claim", status_code=201, sync_to_thread=True)
    def claim(
        self, template_id: FromPath[int], principal: Caller, promo: NamedDependency[Any]
    ) -> dict[str, Any]:
        return promo.claim(principal.subject, template_id, "promotion.coupon_claimed")


class StandInPromotion(Center):
    """Writes the promotion center's claim events as it does: in the claim's transaction,
    with the request's device id and IP, delivered to subscribers after the commit."""

    name = "promo"

    def claim(self, customer: str, template_id: int, topic: str) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "customer": customer,
            "template_id": template_id,
            "shop": "s1",
            "via": "claim",
        }
        facts = request_facts.current()
        if facts is not None:
            payload = {**payload, "device_id": facts.device_id, "ip": facts.ip}
        event = Event(topic=topic, payload=payload)
        with self.kernel.db.transaction() as conn:
            self.kernel.events.write(conn, [event])
        self.kernel.events.deliver([event])
        return payload

    @hookimpl
    def center_routes(self, kernel: Any) -> list[Any]:
        return [center_router(self, [ClaimController])]


def test_coupon_claims_are_counted_per_device_and_customer_and_rules_read_them(mallcore, peers):
    promo = StandInPromotion()
    kernel = risk_kernel(mallcore, centers=("catalog", "payment", "risk"), extra=[promo])
    rule(staff(mallcore, kernel), "signals.device_coupon_claims_24h >= 3", "review", name="coupon farm")
    for who in ("u1", "u2", "u3"):  # three accounts claim on one phone
        client = peers.client(kernel, "203.0.113.5", subject=who, **{"X-Device-Id": "farm-9"})
        assert client.post("/promo/templates/7/claim").status_code == 201
    promo.claim("u1", 7, "promotion.coupon_granted")  # a reward, not a claim: not counted
    farm = peers.client(kernel, "203.0.113.5", subject="u4", **{"X-Device-Id": "farm-9"})
    held = farm.post("/orders", json=order()).json()
    assert held["hold"] == "risk_review"
    review = staff(mallcore, kernel).get("/risk/reviews").json()[0]
    assert review["signals"]["device_coupon_claims_24h"] == 3
    assert review["signals"]["customer_coupon_claims_24h"] == 0  # u4 claimed none
    own = peers.client(kernel, "203.0.113.6", subject="u1", **{"X-Device-Id": "u1-phone"})
    placed = own.post("/orders", json=order()).json()
    assert placed["hold"] is None
    decision = staff(mallcore, kernel).get("/risk/decisions", params={"order_id": placed["id"]}).json()[0]
    assert decision["signals"]["customer_coupon_claims_24h"] == 1
