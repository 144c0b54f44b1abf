"""Shared set-up for the after-sale tests: a shop, paid and delivered orders, a stand-in carrier."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mallcore.kernel import SYSTEM, Center, Kernel, hookimpl
from mallcore.kernel.aftersale import AfterSaleCase, ParcelEvent


class StandInCarrier(Center):
    """Plays TMS's part of the contract where TMS is not enabled.

    Books pickups when asked (``order_after_sale`` at ``pickup_requested``)
    and reports carrier events on return parcels through ``after_sale_parcel``.
    """

    name = "standin"
    after = ("refund",)

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, str]] = []
        # what order_after_sale carried at each step: (case id, status) -> case.data
        self.data: dict[tuple[int, str], dict[str, Any]] = {}
        self.fail_booking = False
        # every order_refund call seen (status), even in stages that rolled back
        self.refund_calls: list[str] = []

    @hookimpl
    def order_refund(self, ctx: Any, refund: Any) -> None:
        self.refund_calls.append(refund.status)

    @hookimpl
    def order_after_sale(self, ctx: Any, case: AfterSaleCase) -> None:
        self.steps.append((case.id, case.status))
        self.data[(case.id, case.status)] = dict(case.data)
        if case.status == "pickup_requested" and case.pickup is not None and not self.fail_booking:
            case.pickup.status = "booked"
            case.pickup.courier = "王师傅"
            case.pickup.courier_phone = "13900000000"
            case.pickup.code = f"{case.id:04d}"
            case.pickup.tracking_no = f"PU{case.id}N{case.pickup.attempts}"
            ctx.timeline(
                "shipment.pickup_booked",
                f"Pickup booked: courier 王师傅 13900000000, pickup code {case.pickup.code}",
                zh=f"已预约上门取件:快递员王师傅 13900000000,取件码 {case.pickup.code}",
                ref=f"after_sale:{case.id}",
            )

    def event(
        self,
        kernel: Kernel,
        order_id: int,
        case_id: int,
        status: str,
        tracking_no: str,
        *,
        kind: str = "return",
        **kw: Any,
    ) -> None:
        with kernel.orders.stage("carrier_event", order_id, SYSTEM) as ctx:
            kernel.hook.after_sale_parcel(
                ctx=ctx,
                event=ParcelEvent(
                    case_id=case_id,
                    order_id=order_id,
                    kind=kind,  # type: ignore[arg-type]
                    status=status,
                    carrier="sandbox",
                    tracking_no=tracking_no,
                    occurred_at=datetime.now(UTC),
                    **kw,
                ),
            )


ADDRESS = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}


@dataclass
class Shop:
    kit: Any
    kernel: Kernel
    carrier: StandInCarrier
    alice: Any
    bob: Any
    merchant: Any
    warehouse: Any
    admin: Any
    clients: dict[str, Any] = field(default_factory=dict)

    @property
    def center(self) -> Any:
        return self.kernel.centers["refund"]

    def order(self, lines: list[tuple[str, int]], *, client: Any = None, pay: bool = True) -> dict[str, Any]:
        client = client or self.alice
        r = client.post(
            "/orders",
            json={"shop": "s1", "lines": [{"sku": s, "quantity": q} for s, q in lines], "address": ADDRESS},
        )
        assert r.status_code == 201, r.text
        order = r.json()
        if pay:
            r = client.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
            assert r.status_code == 201, r.text
        return order

    def deliver(self, order_id: int, customer: Any = None) -> None:
        for step in ("dispatch", "ship", "deliver"):  # the customer confirms delivery
            r = ((customer or self.alice) if step == "deliver" else self.merchant).post(
                f"/orders/{order_id}/{step}"
            )
            assert r.status_code == 200, (step, r.text)

    def delivered_order(self, lines: list[tuple[str, int]], **kw: Any) -> dict[str, Any]:
        order = self.order(lines, **kw)
        self.deliver(order["id"], kw.get("client"))
        return self.merchant.get(f"/orders/{order['id']}").json()  # type: ignore[no-any-return]

    def open(
        self,
        order: dict[str, Any],
        type_: str,
        lines: list[tuple[int, int]],
        *,
        client: Any = None,
        reason: str = "no_reason",
        **extra: Any,
    ) -> Any:
        client = client or self.alice
        body = {
            "order_id": order["id"],
            "type": type_,
            "lines": [{"line_id": line_id, "quantity": q} for line_id, q in lines],
            "reason": reason,
            **extra,
        }
        return client.post("/after-sales", json=body)

    def case(self, case_id: int, client: Any = None) -> dict[str, Any]:
        r = (client or self.admin).get(f"/after-sales/{case_id}")
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def later(self, **delta: float) -> None:
        """Move the after-sale center's clock forward."""
        now = self.center.clock() + timedelta(**delta)
        self.center.clock = lambda: now


def make_shop(
    kit: Any,
    centers: list[str] | None = None,
    settings: dict[str, Any] | None = None,
    skus: list[tuple[str, int]] | None = None,
    config: dict[str, Any] | None = None,
    extra: list[Any] | None = None,
) -> Shop:
    carrier = StandInCarrier()
    kernel = kit.kernel(
        centers=centers or ["catalog", "payment", "refund"],
        extra=[carrier, *(extra or [])],
        settings={"refund": settings or {}},
        config=config,
    )
    kit.product(kernel, shop="s1", skus=skus or [("TEE-M", 7900), ("TEE-L", 7900), ("MUG", 3900)])
    return Shop(
        kit=kit,
        kernel=kernel,
        carrier=carrier,
        alice=kit.client(kernel, "customer", "alice"),
        bob=kit.client(kernel, "customer", "bob"),
        merchant=kit.client(kernel, "merchant", "m1", shop="s1"),
        warehouse=kit.client(kernel, "warehouse", "w1", shop="s1"),
        admin=kit.client(kernel, "admin", "root"),
    )


@pytest.fixture
def shop(mallcore: Any) -> Shop:
    return make_shop(mallcore)


def statuses(case: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in case["timeline"]]
