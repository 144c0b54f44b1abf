"""Payment routes under ``/payment``.

Provider webhooks take no bearer token (see :mod:`.webhooks`); the other
routes do: payments are listed to whoever may see them
(:func:`~mallcore.kernel.visible_to`), a provider's statement to finance,
and capturing a sandbox payment by hand to admins.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, RawBody

from mallcore.kernel import Caller, NotFound, visible_to
from mallcore.kernel.http import WEBHOOK, center_router, roles
from mallcore.kernel.signing import HEADER

from . import tables as t
from . import webhooks
from .providers import statement_csv
from .webhooks import WebhookEvent, WebhookResult

if TYPE_CHECKING:
    from litestar import Router

    from . import PaymentCenter

# Declare ``payment: Payments`` in a handler to receive the center (see center_router).
Payments: TypeAlias = NamedDependency["PaymentCenter"]
TAGS = ["payment"]


class PaymentRecord(msgspec.Struct, kw_only=True):
    id: int
    order_id: int
    shop: str
    method: str
    provider: str
    status: str
    amount: int
    refunded: int
    currency: str
    reference: str | None
    failure: str | None
    created_at: datetime


def router(center: PaymentCenter) -> Router:
    return center_router(
        center, [WebhookController, SandboxController, PaymentController, ProviderStatementController]
    )


class WebhookController(Controller):
    path = "/webhooks"
    tags = TAGS

    @post("/{provider:str}", status_code=200, sync_to_thread=True, opt={WEBHOOK: True})
    def webhook(
        self, provider: FromPath[str], request: Request[Any, Any, Any], body: RawBody, payment: Payments
    ) -> WebhookResult:
        """A provider's signed event (no bearer token); a resent event changes nothing."""
        return webhooks.receive(payment, provider, request.headers.get(HEADER), body)


class SandboxController(Controller):
    path = "/sandbox"
    guards = [roles("admin")]
    tags = TAGS

    @post("/{reference:str}/capture", status_code=200, sync_to_thread=True)
    def sandbox_capture(self, reference: FromPath[str], payment: Payments) -> WebhookResult:
        """Act as the sandbox provider confirming a pending payment."""
        event = WebhookEvent(id=f"manual-{reference}", type="payment.captured", reference=reference)
        return webhooks.apply(payment, "sandbox", event, msgspec.to_builtins(event))


class PaymentController(Controller):
    path = "/payments"
    tags = TAGS

    @get("/", sync_to_thread=True)
    def list_payments(
        self,
        principal: Caller,
        payment: Payments,
        order_id: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[PaymentRecord]:
        """Payments, newest first: a customer's own, a shop's staff their shop's, platform staff all;
        filter by order.
        """
        p = t.payments.c
        stmt = (
            sa.select(t.payments)
            .where(visible_to(principal, p.shop, p.customer))
            .order_by(p.id.desc())
            .limit(limit)
        )
        if order_id is not None:
            stmt = stmt.where(p.order_id == order_id)
        with payment.kernel.db.transaction(write=False) as conn:
            return [
                PaymentRecord(**{k: getattr(r, k) for k in PaymentRecord.__struct_fields__})
                for r in conn.execute(stmt)
            ]


class ProviderStatementController(Controller):
    path = "/statements"
    guards = [roles("finance")]
    tags = TAGS

    @get("/{provider:str}", sync_to_thread=True, media_type="text/csv")
    def statement(
        self,
        provider: FromPath[str],
        principal: Caller,
        payment: Payments,
        day: Annotated[date, QueryParameter(name="date")],
    ) -> Response[str]:
        """The provider's statement of one day, as CSV (what reconciliation imports).

        Platform finance and admins get every line; a shop's finance user the
        lines of their shop's payments (a charge by its reference, a refund by
        the payment it refunds).
        """
        if provider not in payment.providers:
            raise NotFound(f"no provider {provider}", code="provider_unknown")
        with payment.kernel.db.transaction(write=False) as conn:
            rows = payment.providers[provider].statement(conn, day)
            if not principal.is_platform:
                p = t.payments.c
                ours = {
                    r.reference
                    for r in conn.execute(
                        sa.select(p.reference).where(
                            p.provider == provider,
                            p.reference.in_({r.original_reference or r.reference for r in rows}),
                            visible_to(principal, p.shop),
                        )
                    )
                }
                rows = [r for r in rows if (r.original_reference or r.reference) in ours]
        return Response(
            statement_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{provider}-{day.isoformat()}.csv"'},
        )
