"""Payment routes under ``/payment``."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, QueryParameter, RawBody
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import (
    SYSTEM,
    Caller,
    InvalidInput,
    Kernel,
    NotFound,
    Payment,
    require,
    utcnow,
)
from mallcore.kernel.http import resend_on_conflict
from mallcore.kernel.signing import HEADER, verify

from . import tables as t
from .providers import statement_csv

if TYPE_CHECKING:
    from . import PaymentCenter


class PaymentRecord(msgspec.Struct, kw_only=True):
    id: int
    order_id: FromPath[int]
    shop: str
    method: str
    provider: FromPath[str]
    status: str
    amount: int
    refunded: int
    currency: str
    reference: str | None
    failure: str | None
    created_at: datetime


class WebhookEvent(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: str
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    occurred_at: datetime | None = None


class WebhookResult(msgspec.Struct):
    status: str  # applied | duplicate | ignored


def routes(kernel: Kernel, center: PaymentCenter) -> list[Any]:
    db = kernel.db

    def apply_event(provider: FromPath[str], event: WebhookEvent, payload: dict[str, Any]) -> WebhookResult:
        p = t.payments.c
        with db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(p.id, p.order_id, p.status, p.amount, p.currency, p.method).where(
                    p.provider == provider, p.reference == event.reference
                )
            ).first()
        if row is None:
            raise NotFound(f"no payment with reference {event.reference}", code="payment_not_found")
        try:
            with kernel.orders.stage("payment_webhook", row.order_id, SYSTEM) as ctx:
                ctx.conn.execute(
                    t.webhook_events.insert().values(
                        provider=provider,
                        event_id=event.id,
                        type=event.type,
                        payload=payload,
                        received_at=utcnow(),
                    )
                )
                if event.type != "payment.captured" or row.status != "pending":
                    return WebhookResult("ignored")
                taken = ctx.conn.execute(
                    t.payments.update()
                    .where(p.id == row.id, p.status == "pending")
                    .values(status="captured", updated_at=utcnow())
                ).rowcount
                if not taken:
                    return WebhookResult("ignored")
                if provider == "sandbox":
                    center.providers["sandbox"].capture_pending(ctx.conn, event.reference)  # type: ignore[attr-defined]
                kernel.orders.confirm_payment(
                    ctx,
                    Payment(
                        method=row.method,
                        amount=row.amount,
                        currency=row.currency,
                        status="captured",
                        provider=provider,
                        reference=event.reference,
                        id=row.id,
                    ),
                )
        except IntegrityError:
            # The event id's unique key: a resend of an event already recorded. Any other
            # clash recorded nothing, and the provider must hear a failure and resend.
            w = t.webhook_events.c
            with db.transaction(write=False) as conn:
                seen = conn.execute(
                    sa.select(w.id).where(w.provider == provider, w.event_id == event.id)
                ).first()
            if seen is None:
                raise
            return WebhookResult("duplicate")
        return WebhookResult("applied")

    @post("/payment/webhooks/{provider:str}", status_code=200, sync_to_thread=True, tags=["payment"])
    def webhook(provider: FromPath[str], request: Request[Any, Any, Any], body: RawBody) -> WebhookResult:
        secret = center.settings.webhook_secrets.get(provider)
        if provider not in center.providers or not secret:
            raise NotFound(f"no webhook for provider {provider}", code="provider_unknown")
        verify(secret, request.headers.get(HEADER), body, tolerance=center.settings.webhook_tolerance_seconds)
        try:
            payload = msgspec.json.decode(body)
            event = msgspec.convert(payload, WebhookEvent)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json") from exc
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), code="invalid_request") from exc
        with resend_on_conflict():
            return apply_event(provider, event, payload)

    @post("/payment/sandbox/{reference:str}/capture", status_code=200, sync_to_thread=True, tags=["payment"])
    def sandbox_capture(reference: FromPath[str], principal: Caller) -> WebhookResult:
        """Act as the sandbox provider confirming a pending payment."""
        require(principal, "admin")
        event = WebhookEvent(id=f"manual-{reference}", type="payment.captured", reference=reference)
        return apply_event("sandbox", event, msgspec.to_builtins(event))

    @get("/payment/payments", sync_to_thread=True, tags=["payment"])
    def list_payments(
        principal: Caller,
        order_id: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[PaymentRecord]:
        p = t.payments.c
        stmt = sa.select(t.payments).order_by(p.id.desc()).limit(limit)
        if order_id is not None:
            stmt = stmt.where(p.order_id == order_id)
        if not principal.is_admin:
            if principal.has("merchant", "finance", "warehouse"):
                if principal.shop is not None:
                    stmt = stmt.where(p.shop == principal.shop)
            else:
                stmt = stmt.where(p.customer == principal.subject)
        with db.transaction(write=False) as conn:
            return [
                PaymentRecord(**{k: getattr(r, k) for k in PaymentRecord.__struct_fields__})
                for r in conn.execute(stmt)
            ]

    @get("/payment/statements/{provider:str}", sync_to_thread=True, tags=["payment"], media_type="text/csv")
    def statement(
        provider: FromPath[str], principal: Caller, day: Annotated[date, QueryParameter(name="date")]
    ) -> Response[str]:
        """The provider's statement of one day, as CSV (what reconciliation imports)."""
        require(principal, "finance")
        if provider not in center.providers:
            raise NotFound(f"no provider {provider}", code="provider_unknown")
        with db.transaction(write=False) as conn:
            rows = center.providers[provider].statement(conn, day)
        return Response(
            statement_csv(rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{provider}-{day.isoformat()}.csv"'},
        )

    return [webhook, sandbox_capture, list_payments, statement]
