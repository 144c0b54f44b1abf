"""What the finance tests share: a shop with finance, and a stand-in for the refund center.

``RefundDesk`` is a temporary center (no entry point) that asks the kernel
for refunds the way the refund center does (``kernel.refunds.request``
inside a stage, with ``approved_by`` / ``received_by`` in ``data``), so the
finance review can be tested without the refund center. ``FlatFreight``
adds freight so refunds of freight are exercised too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from litestar import post
from litestar.params import FromPath, JSONBody

from mallcore.kernel import Caller, Center, OrderContext, Phase, RefundItem, hookimpl
from mallcore.plugins.finance import tables as ft
from mallcore.plugins.payment import tables as pt

ADDRESS = {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"}


class ItemIn(msgspec.Struct, forbid_unknown_fields=True):
    line_id: int
    quantity: int
    deduction: int = 0


class RefundIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    items: list[ItemIn]
    reason: str = "test refund"
    shipping: Literal["none", "proportional", "remaining"] = "none"
    approved_by: str | None = None
    received_by: str | None = None


class RefundDesk(Center):
    name = "refunddesk"
    requires = ("payment",)
    after = ("finance",)

    @hookimpl
    def center_routes(self, kernel: Any) -> list[Any]:
        @post("/refunddesk/{order_id:int}", status_code=201, sync_to_thread=True)
        def request_refund(
            order_id: FromPath[int], principal: Caller, data: JSONBody[RefundIn]
        ) -> dict[str, Any]:
            with kernel.orders.stage("after_sale", order_id, principal) as ctx:
                refund = kernel.refunds.request(
                    ctx,
                    [RefundItem(i.line_id, i.quantity, i.deduction) for i in data.items],
                    reason=data.reason,
                    source="test",
                    ref="after_sale:0",
                    shipping=data.shipping,
                    data={"approved_by": data.approved_by, "received_by": data.received_by},
                )
            return {"id": refund.id, "status": refund.status, "amount": refund.amount}

        return [request_refund]


class FlatFreight(Center):
    name = "flatfreight"
    after = ("catalog",)

    @hookimpl
    def order_price(self, ctx: OrderContext) -> None:
        ctx.adjust(self.name, "flat freight", 800, phase=Phase.FREIGHT, code="freight")


class Clock:
    """A settable clock for the finance center (entries, settlements)."""

    def __init__(self) -> None:
        self.at = datetime(2030, 1, 10, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def next_day(self) -> None:
        self.at += timedelta(days=1)


class Shop:
    """A kernel with catalog, payment, finance and the refund desk, and its people."""

    def __init__(
        self,
        mallcore: Any,
        *,
        freight: bool = False,
        settings: dict[str, Any] | None = None,
        fake_clock: bool = True,
        config: dict[str, Any] | None = None,
    ) -> None:
        extra: list[Any] = [RefundDesk] + ([FlatFreight] if freight else [])
        self.kernel = kernel = mallcore.kernel(
            centers=["catalog", "payment", "finance"],
            extra=extra,
            settings={"finance": settings or {}},
            config=config,
        )
        self.mallcore = mallcore
        self.clock = Clock()
        self.finance = kernel.centers["finance"]
        if fake_clock:
            # Reconciliation tests keep real time: the sandbox provider stamps its ledger with it.
            self.finance.clock = self.clock
        mallcore.product(kernel, shop="s1", skus=[("TEE", 1999), ("MUG", 3900)])
        mallcore.product(kernel, shop="s2", skus=[("CAP", 2500)])
        self.alice = mallcore.client(kernel, "customer", "alice")
        self.merchant = mallcore.client(kernel, "merchant", "m1", shop="s1")
        self.merchant2 = mallcore.client(kernel, "merchant", "m2", shop="s2")
        self.platform = mallcore.client(kernel, "finance", "fin-platform", platform=True)
        self.platform2 = mallcore.client(kernel, "finance", "fin-platform-2", platform=True)
        self.fin1 = mallcore.client(kernel, "finance", "fin-s1", shop="s1")
        self.fin1b = mallcore.client(kernel, "finance", "fin-s1-lead", shop="s1")
        self.fin2 = mallcore.client(kernel, "finance", "fin-s2", shop="s2")
        self.admin = mallcore.client(kernel, "admin", "root")

    def client(self, roles: str, subject: str, shop: str | None = None) -> Any:
        """Staff of ``shop``, or of the platform without one."""
        return self.mallcore.client(self.kernel, roles, subject, shop=shop, platform=shop is None)

    # -- order flow -------------------------------------------------------------------

    def paid_order(self, lines: list[tuple[str, int]] | None = None, shop: str = "s1") -> dict[str, Any]:
        body = {
            "shop": shop,
            "lines": [{"sku": s, "quantity": q} for s, q in (lines or [("TEE", 2)])],
            "address": ADDRESS,
        }
        r = self.alice.post("/orders", json=body)
        assert r.status_code == 201, r.text
        order = r.json()
        r = self.alice.post(f"/orders/{order['id']}/payments", json={"method": "sandbox"})
        assert r.status_code == 201, r.text
        return order

    def deliver(self, order_id: int, shop: str = "s1") -> None:
        merchant = self.merchant if shop == "s1" else self.merchant2
        for step in ("dispatch", "deliver"):  # the customer confirms delivery
            r = (self.alice if step == "deliver" else merchant).post(f"/orders/{order_id}/{step}")
            assert r.status_code == 200, r.text

    def refund(
        self,
        order_id: int,
        items: list[tuple[int, int]],
        *,
        shipping: str = "none",
        approved_by: str | None = "m1",
        received_by: str | None = None,
        requester: Any = None,
    ) -> dict[str, Any]:
        r = (requester or self.merchant).post(
            f"/refunddesk/{order_id}",
            json={
                "items": [{"line_id": line, "quantity": q} for line, q in items],
                "shipping": shipping,
                "approved_by": approved_by,
                "received_by": received_by,
            },
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    # -- reading the books ------------------------------------------------------------------

    def rows(self, stmt: Any) -> list[Any]:
        with self.kernel.db.transaction(write=False) as conn:
            return list(conn.execute(stmt).all())

    def balance(self, account: str, **where: Any) -> int:
        p = ft.postings.c
        stmt = sa.select(sa.func.coalesce(sa.func.sum(p.amount), 0)).where(p.account == account)
        for key, value in where.items():
            stmt = stmt.where(p[key] == value)
        return int(self.rows(stmt)[0][0])

    def unbalanced_entries(self) -> list[Any]:
        p = ft.postings.c
        return self.rows(
            sa.select(p.entry_id, p.currency, sa.func.sum(p.amount))
            .group_by(p.entry_id, p.currency)
            .having(sa.func.sum(p.amount) != 0)
        )

    def provider_side(self) -> dict[str, int]:
        """What the journal says the provider did: provider reference -> signed amount."""
        p = ft.postings.c
        out: dict[str, int] = {}
        for ref, amount in self.rows(
            sa.select(p.provider_ref, p.amount).where(
                p.account == "provider_clearing:sandbox", p.provider_ref.is_not(None)
            )
        ):
            out[ref] = out.get(ref, 0) + amount
        return out

    def payment_tables(self) -> dict[str, int]:
        """The same, from the payment center's own tables (tests may read them; finance never does)."""
        out: dict[str, int] = {}
        for ref, amount in self.rows(
            sa.select(pt.payments.c.reference, pt.payments.c.amount).where(
                pt.payments.c.status.in_(("captured", "partially_refunded", "refunded"))
            )
        ):
            out[ref] = out.get(ref, 0) + amount
        for ref, amount in self.rows(sa.select(pt.refunds.c.reference, pt.refunds.c.amount)):
            out[ref] = out.get(ref, 0) - amount
        return out


def approve_all(shop: Shop, reviewer: Any = None, second: Any = None) -> None:
    """Approve every open review (twice where two approvals are needed)."""
    reviewer = reviewer or shop.platform
    for review in reviewer.get("/finance/refunds").json():
        r = reviewer.post(f"/finance/refunds/{review['refund_id']}/approve")
        assert r.status_code == 200, r.text
        if r.json()["status"] == "awaiting_second_approval":
            r = (second or shop.platform2).post(f"/finance/refunds/{review['refund_id']}/approve")
            assert r.status_code == 200, r.text


Step = Callable[[Shop], None]
