"""支付中心 payment: payment records, provider calls, refunds out, signed webhooks.

Hooks:

- ``order_pay``: charges through the provider of ``payment.method`` (the
  sandbox by default) and records the attempt, captured, pending or failed.
  One payment at a time: while one is pending, another answers 409
  ``payment_pending`` (a provider webhook ``payment.failed`` frees the order).
- A ``payment.captured`` webhook the order can no longer use (paid, cancelled,
  or a center refused it) is refunded in full at once, recorded, written on
  the timeline (``payment.returned``) and booked through
  ``order_payment_returned``; a webhook never answers 4xx because of state.
- ``order_refund``: at ``approved``, pays the refund out through the
  provider that took the money, and records the provider's reference.
- ``order_view``: lists the order's payments under ``extra.payments``.

Routes under ``/payment``: list payments, provider webhooks
(``POST /payment/webhooks/{provider}``, HMAC-signed, replay-safe), the
provider's statement of a day as CSV (for reconciliation), and, for the
sandbox, capturing a pending payment by hand.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import (
    Center,
    Conflict,
    Kernel,
    OrderContext,
    Payment,
    Refund,
    format_amount,
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
    # A signed event for a reference we do not know (yet): the payment's row may not be committed
    # yet (the provider called back during our own transaction), so the event is answered 503
    # ``payment_not_recorded`` and the provider resends it; an event older than this (by its
    # ``occurred_at``) is answered 404 ``payment_not_found`` and no longer waited for.
    unknown_reference_wait_seconds: Annotated[int, msgspec.Meta(ge=0)] = 86_400
    # Retry-After of that 503.
    unknown_reference_retry_seconds: Annotated[int, msgspec.Meta(ge=1)] = 30


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
        p = t.payments.c
        waiting = ctx.conn.execute(
            sa.select(p.id, p.reference).where(p.order_id == ctx.order.id, p.status == "pending").limit(1)
        ).first()
        if waiting is not None:
            raise Conflict(
                f"payment {waiting.id} of order {ctx.order.id} is still pending at the provider; "
                "wait for it to complete or fail",
                code="payment_pending",
                extra={"payment_id": waiting.id},
            )
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

    def return_late_capture(self, ctx: OrderContext, payment: Payment, why: str) -> None:
        """Refund in full a captured payment the order cannot take (``why``: a code), in ``ctx``'s stage.

        The refund goes out through the provider that took the money, is
        recorded beside the payment, booked by ``order_payment_returned`` and
        written on the order's timeline; the order itself is unchanged.
        """
        assert payment.id is not None and payment.reference is not None and payment.provider is not None
        reference = self.providers[payment.provider].refund(
            ctx.conn,
            reference=payment.reference,
            amount=payment.amount,
            currency=payment.currency,
            refund_id=None,
        )
        now = utcnow()
        p = t.payments.c
        ctx.conn.execute(
            t.payments.update()
            .where(p.id == payment.id)
            .values(status="refunded", refunded=payment.amount, failure=why[:200], updated_at=now)
        )
        ctx.conn.execute(
            t.refunds.insert().values(
                payment_id=payment.id,
                order_id=ctx.order.id,
                refund_id=None,
                provider=payment.provider,
                amount=payment.amount,
                currency=payment.currency,
                reference=reference,
                created_at=now,
            )
        )
        payment.status = "refunded"
        self.kernel.orders.calls.order_payment_returned(ctx=ctx, payment=payment, refund_reference=reference)
        amount = format_amount(payment.amount, payment.currency)
        ctx.timeline(
            "payment.returned",
            f"A payment of {amount} arrived after the order could take it ({why}); it was refunded in full",
            zh=f"订单已无法使用的付款 {amount} 已全额退回",
            ref=f"payment:{payment.id}",
        )
        ctx.emit(
            "payment.returned",
            {
                "payment_id": payment.id,
                "amount": payment.amount,
                "reference": payment.reference,
                "refund_reference": reference,
                "reason": why,
            },
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
