"""What the membership tests share: a shop with members, and short ways to move orders along."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mallcore.kernel import SYSTEM, Center, OrderContext, Phase, RefundItem, hookimpl
from mallcore.plugins.membership import tables as t
from tests.helpers import ADDRESS

SKUS = [("TEE", 10_000), ("MUG", 5_000), ("CAP", 2_999)]


class Shop:
    """Catalog + payment + membership (and whatever else ``centers`` adds) on shop s1."""

    def __init__(
        self,
        mallcore: Any,
        *,
        centers: tuple[str, ...] = (),
        extra: tuple[Any, ...] = (),
        settings: dict[str, dict[str, Any]] | None = None,
        membership: dict[str, Any] | None = None,
    ) -> None:
        self.mallcore = mallcore
        merged = dict(settings or {})
        merged["membership"] = {**merged.get("membership", {}), **(membership or {})}
        self.kernel = mallcore.kernel(
            centers=["catalog", "payment", "membership", *centers], settings=merged, extra=list(extra)
        )
        mallcore.product(self.kernel, shop="s1", skus=SKUS)
        self.center = self.kernel.centers["membership"]
        self.admin = mallcore.client(self.kernel, "admin", "root")
        self.merchant = mallcore.client(self.kernel, "merchant", "m1", shop="s1")
        self.clients: dict[str, Any] = {}

    def customer(self, name: str = "alice") -> Any:
        if name not in self.clients:
            self.clients[name] = self.mallcore.client(self.kernel, "customer", name)
        return self.clients[name]

    # -- points ---------------------------------------------------------------------

    def give(self, customer: str, points: int, reason: str = "welcome") -> dict[str, Any]:
        r = self.admin.post(
            f"/membership/members/{customer}/points", json={"delta": points, "reason": reason}
        )
        assert r.status_code == 201, r.text
        return r.json()

    def member(self, customer: str = "alice") -> dict[str, Any]:
        r = self.customer(customer).get("/membership/me")
        assert r.status_code == 200, r.text
        return r.json()

    def ledger(self, customer: str = "alice") -> list[dict[str, Any]]:
        r = self.customer(customer).get("/membership/me/points?limit=200")
        assert r.status_code == 200, r.text
        return list(reversed(r.json()))

    def set_level(self, customer: str, level: str) -> None:
        r = self.admin.put(f"/membership/members/{customer}/level", json={"level": level, "reason": "test"})
        assert r.status_code == 200, r.text

    # -- orders ---------------------------------------------------------------------

    def place(
        self,
        customer: str = "alice",
        lines: list[tuple[str, int]] | None = None,
        points: int = 0,
        **extra: Any,
    ) -> Any:
        body = {
            "shop": "s1",
            "lines": [{"sku": s, "quantity": q} for s, q in (lines or [("TEE", 1)])],
            "address": ADDRESS,
            **extra,
        }
        if points:
            body["points"] = points
        return self.customer(customer).post("/orders", json=body)

    def placed(
        self, customer: str = "alice", lines: list[tuple[str, int]] | None = None, points: int = 0
    ) -> dict[str, Any]:
        r = self.place(customer, lines, points)
        assert r.status_code == 201, r.text
        return r.json()

    def pay(self, order: dict[str, Any], customer: str = "alice") -> None:
        r = self.customer(customer).post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
        assert r.status_code == 201, r.text

    def complete(self, order: dict[str, Any]) -> None:
        for step in ("dispatch", "ship", "deliver", "complete"):  # the customer confirms delivery
            who = self.customer(order["customer"]) if step == "deliver" else self.merchant
            r = who.post(f"/orders/{order['id']}/{step}")
            assert r.status_code == 200, (step, r.text)

    def cancel(self, order: dict[str, Any], customer: str = "alice") -> None:
        r = self.customer(customer).post(f"/orders/{order['id']}/cancel", json={"reason": "changed my mind"})
        assert r.status_code == 200, r.text

    def refund(self, order_id: int, items: list[tuple[int, int]], shipping: str = "none") -> None:
        """Refund ``(line_id, quantity)`` of an order at once, the way an after-sale center does."""
        with self.kernel.orders.stage("after_sale", order_id, SYSTEM) as ctx:
            self.kernel.refunds.request(
                ctx,
                [RefundItem(line_id, quantity) for line_id, quantity in items],
                reason="test refund",
                source="test",
                shipping=shipping,  # type: ignore[arg-type]
                review=False,
            )

    # -- what the books say ----------------------------------------------------------

    def invariant(self) -> None:
        """Every member's balance and held points equal their ledger's sums."""
        with self.kernel.db.transaction(write=False) as conn:
            assert self.center.ledger.check(conn) == []

    def row(self, customer: str = "alice") -> Any:
        with self.kernel.db.transaction(write=False) as conn:
            return conn.execute(sa.select(t.members).where(t.members.c.customer == customer)).first()


class Campaigns(Center):
    """A stand-in for the promotion center: 10% off the whole order (PROMOTION phase).

    Named to run before ``membership`` (centers without an order between them go by name)."""

    name = "campaigns"
    after = ("catalog",)

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        subtotal = sum((line.unit_price or 0) * line.quantity for line in ctx.lines)
        ctx.adjust(self.name, "10% off everything", -(subtotal // 10), phase=Phase.PROMOTION, code="ten")


class Freight(Center):
    """A stand-in for TMS: 12.00 freight on every order with an address."""

    name = "freight"

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        if ctx.order.address is not None:
            ctx.adjust(self.name, "freight", 1_200, phase=Phase.FREIGHT, code="freight")
