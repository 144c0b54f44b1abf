"""支付中心 payment: payment records, provider calls, refunds out, signed webhooks.

Hooks:

- ``order_pay``: charges through the provider of ``payment.method`` (the
  sandbox by default) and records the attempt, captured, pending or failed.
- ``order_refund``: at ``approved``, pays the refund out through the
  provider that took the money, and records the provider's reference.
- ``order_view``: lists the order's payments under ``extra.payments``.

Routes under ``/payment``: list payments, provider webhooks
(``POST /payment/webhooks/{provider}``, HMAC-signed, replay-safe), the
provider's statement of a day as CSV (for reconciliation), and, for the
sandbox, capturing a pending payment by hand.
"""

from __future__ import annotations

from typing import Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import (
    Center,
    Conflict,
    Kernel,
    OrderContext,
    Payment,
    Refund,
    hookimpl,
    utcnow,
)

from . import tables as t
from .providers import Provider, SandboxProvider
from .routes import router


class PaymentSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Payment methods offered, each served by the provider of the same name.
    methods: list[str] = msgspec.field(default_factory=lambda: ["sandbox"])
    # Webhook secrets by provider; a provider with no secret accepts no webhook.
    webhook_secrets: dict[str, str] = msgspec.field(default_factory=dict)
    webhook_tolerance_seconds: int = 300


class PaymentCenter(Center):
    name = "payment"
    description = "Payments, provider calls, refunds out, signed webhooks"
    tables = t.metadata
    Settings = PaymentSettings

    def __init__(self) -> None:
        super().__init__()
        self.providers: dict[str, Provider] = {"sandbox": SandboxProvider()}

    def provider(self, name: str) -> Provider:
        return self.providers[name]

    @hookimpl
    def order_pay(self, ctx: OrderContext, payment: Payment) -> None:
        if payment.status != "unhandled" or payment.method not in self.settings.methods:
            return
        provider = self.providers.get(payment.method)
        if provider is None:
            return
        now = utcnow()
        payment_id = ctx.conn.execute(
            t.payments.insert()
            .values(
                order_id=ctx.order.id,
                shop=ctx.order.shop,
                customer=ctx.order.customer,
                method=payment.method,
                provider=provider.name,
                status="pending",
                amount=payment.amount,
                currency=payment.currency,
                created_at=now,
                updated_at=now,
            )
            .returning(t.payments.c.id)
        ).scalar_one()
        result = provider.charge(
            ctx.conn,
            payment_id=payment_id,
            amount=payment.amount,
            currency=payment.currency,
            data=payment.data,
        )
        ctx.conn.execute(
            t.payments.update()
            .where(t.payments.c.id == payment_id)
            .values(status=result.status, reference=result.reference, failure=result.failure, updated_at=now)
        )
        payment.id = payment_id
        payment.provider = provider.name
        payment.status = result.status
        payment.reference = result.reference
        payment.failure = result.failure
        ctx.emit(
            f"payment.{result.status}",
            {"payment_id": payment_id, "amount": payment.amount, "reference": result.reference},
        )

    @hookimpl
    def order_refund(self, ctx: OrderContext, refund: Refund) -> None:
        if refund.status != "approved" or refund.amount == 0:
            return
        p = t.payments.c
        rows = ctx.conn.execute(
            sa.select(p.id, p.provider, p.reference, p.amount, p.refunded)
            .where(p.order_id == ctx.order.id, p.status.in_(("captured", "partially_refunded")))
            .order_by(p.id)
        ).all()
        left = refund.amount
        references = []
        now = utcnow()
        for row in rows:
            if left == 0:
                break
            take = min(left, row.amount - row.refunded)
            if take <= 0:
                continue
            reference = self.providers[row.provider].refund(
                ctx.conn, reference=row.reference, amount=take, currency=refund.currency, refund_id=refund.id
            )
            refunded = row.refunded + take
            ctx.conn.execute(
                t.payments.update()
                .where(p.id == row.id)
                .values(
                    refunded=refunded,
                    status="refunded" if refunded == row.amount else "partially_refunded",
                    updated_at=now,
                )
            )
            ctx.conn.execute(
                t.refunds.insert().values(
                    payment_id=row.id,
                    order_id=ctx.order.id,
                    refund_id=refund.id,
                    provider=row.provider,
                    amount=take,
                    currency=refund.currency,
                    reference=reference,
                    created_at=now,
                )
            )
            references.append(reference)
            left -= take
        if left:
            raise Conflict(
                f"captured payments of order {ctx.order.id} cannot cover a refund of {refund.amount}",
                code="refund_unpayable",
            )
        refund.provider_ref = ",".join(references)

    @hookimpl
    def order_view(self, kernel: Kernel, conn: sa.Connection, order: Any, view: Any) -> None:
        if order.status == "awaiting_payment" and not order.paid:
            return
        p = t.payments.c
        view.extra["payments"] = [
            {
                "id": r.id,
                "method": r.method,
                "status": r.status,
                "amount": r.amount,
                "refunded": r.refunded,
                "reference": r.reference,
            }
            for r in conn.execute(
                sa.select(p.id, p.method, p.status, p.amount, p.refunded, p.reference)
                .where(p.order_id == order.id)
                .order_by(p.id)
            )
        ]

    @hookimpl
    def center_routes(self, kernel: Kernel) -> list[Any]:
        return [router(self)]
