"""Provider webhooks: signed, applied once, and resent when they lose a race.

``POST /payment/webhooks/{provider}`` takes no bearer token: the provider
proves itself with an HMAC signature over the raw body
(:mod:`mallcore.kernel.signing`; 401 ``signature_missing``,
``signature_invalid`` or ``signature_expired``). Each event is recorded by its id in the stage that
applies it; the id's unique key makes a resent event answer ``duplicate``
and change nothing. A write that lost a race with another (any other unique
key) recorded nothing either, and answers 503 ``retry_later`` so the
provider sends it again.

An event for a reference no payment has (yet) answers 503
``payment_not_recorded`` with ``Retry-After`` and records nothing: the
provider may call back while the transaction that records the payment has
not committed, and providers resend on a 5xx but drop an event on a 4xx,
which would lose a capture. Once the event is older than
``unknown_reference_wait_seconds`` (by its ``occurred_at``; a day by
default) it answers 404 ``payment_not_found``: nothing will come to match it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import (
    SYSTEM,
    InvalidInput,
    MallcoreError,
    NotFound,
    OrderStatus,
    Payment,
    utcnow,
)
from mallcore.kernel.http import decode_json_body, resend_on_conflict
from mallcore.kernel.signing import verify

from . import tables as t

if TYPE_CHECKING:
    from . import PaymentCenter

log = structlog.get_logger("mallcore.payment")


class WebhookEvent(msgspec.Struct, kw_only=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    type: str
    reference: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    occurred_at: datetime | None = None


class WebhookResult(msgspec.Struct):
    status: str  # applied | duplicate | ignored


def receive(center: PaymentCenter, provider: str, signature: str | None, body: bytes) -> WebhookResult:
    """Check a webhook's signature, read its event and apply it."""
    secret = center.settings.webhook_secrets.get(provider)
    if provider not in center.providers or not secret:
        raise NotFound(f"no webhook for provider {provider}", code="provider_unknown")
    verify(secret, signature, body, tolerance=center.settings.webhook_tolerance_seconds)
    payload = decode_json_body(body)  # 400 malformed_json, 422 invalid_characters
    try:
        event = msgspec.convert(payload, WebhookEvent, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"not an event this endpoint reads: {exc}", code="invalid_event") from None
    with resend_on_conflict():
        try:
            return apply(center, provider, event, payload)
        except NotFound as exc:
            if exc.code != "payment_not_found":
                raise
            raise _unknown_reference(center, provider, event) from None


def apply(
    center: PaymentCenter, provider: str, event: WebhookEvent, payload: dict[str, Any]
) -> WebhookResult:
    """Record ``event`` and act on it.

    ``payment.captured`` of a pending payment confirms the order's payment; if
    the order can no longer take it (paid another way, cancelled, or a center
    refused it), the payment is refunded in full at once, booked through
    ``order_payment_returned`` and written on the timeline. ``payment.failed``
    of a pending payment records the failure, so the customer may pay again.
    Either way the event is applied: state never makes a webhook answer 4xx.
    """
    kernel = center.kernel
    p = t.payments.c
    with kernel.db.transaction(write=False) as conn:
        row = conn.execute(
            sa.select(p.id, p.order_id, p.status, p.amount, p.currency, p.method).where(
                p.provider == provider, p.reference == event.reference
            )
        ).first()
    if row is None:
        raise NotFound(f"no payment with reference {event.reference}", code="payment_not_found")
    try:
        try:
            return _apply(center, provider, event, payload, row, refuse=None)
        except MallcoreError as exc:
            if exc.status >= 500 or event.type != "payment.captured":
                raise
            # A center refused the capture (no stock left at payment, a state it cannot take):
            # the money cannot be used, so it goes back.
            return _apply(center, provider, event, payload, row, refuse=exc.code)
    except IntegrityError:
        # The event id's unique key: a resend of an event already recorded. Any other
        # clash recorded nothing, and the provider must hear a failure and resend.
        w = t.webhook_events.c
        with kernel.db.transaction(write=False) as conn:
            seen = conn.execute(sa.select(w.id).where(w.provider == provider, w.event_id == event.id)).first()
        if seen is None:
            raise
        return WebhookResult("duplicate")


def _unknown_reference(center: PaymentCenter, provider: str, event: WebhookEvent) -> MallcoreError:
    """503 (resend) while the payment may still be on its way to the database, 404 after."""
    settings = center.settings
    wait = timedelta(seconds=settings.unknown_reference_wait_seconds)
    occurred = event.occurred_at
    if occurred is not None and occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=utcnow().tzinfo)
    log.warning(
        "payment.webhook_unknown_reference", provider=provider, reference=event.reference, id=event.id
    )
    if occurred is not None and utcnow() - occurred > wait:
        return NotFound(f"no payment with reference {event.reference}", code="payment_not_found")
    later = MallcoreError(
        f"no payment with reference {event.reference} yet; send the event again",
        code="payment_not_recorded",
        status=503,
    )
    later.headers["Retry-After"] = str(settings.unknown_reference_retry_seconds)
    return later


def _apply(
    center: PaymentCenter,
    provider: str,
    event: WebhookEvent,
    payload: dict[str, Any],
    row: Any,
    *,
    refuse: str | None,
) -> WebhookResult:
    kernel = center.kernel
    p = t.payments.c
    with kernel.orders.stage("payment_webhook", row.order_id, SYSTEM) as ctx:
        ctx.conn.execute(
            t.webhook_events.insert().values(
                provider=provider, event_id=event.id, type=event.type, payload=payload, received_at=utcnow()
            )
        )
        if event.type not in ("payment.captured", "payment.failed") or row.status != "pending":
            return WebhookResult("ignored")
        status = "captured" if event.type == "payment.captured" else "failed"
        taken = ctx.conn.execute(
            t.payments.update()
            .where(p.id == row.id, p.status == "pending")
            .values(status=status, updated_at=utcnow())
        ).rowcount
        if not taken:
            return WebhookResult("ignored")
        if status == "failed":
            ctx.conn.execute(t.payments.update().where(p.id == row.id).values(failure="provider_failed"))
            ctx.timeline(
                "payment.failed", "Payment failed at the provider", zh="支付失败", ref=f"payment:{row.id}"
            )
            return WebhookResult("applied")
        if provider == "sandbox":
            center.providers["sandbox"].capture_pending(ctx.conn, event.reference)  # type: ignore[attr-defined]
        payment = Payment(
            method=row.method,
            amount=row.amount,
            currency=row.currency,
            status="captured",
            provider=provider,
            reference=event.reference,
            id=row.id,
        )
        if refuse is None and ctx.order.status == OrderStatus.AWAITING_PAYMENT:
            kernel.orders.confirm_payment(ctx, payment)
        else:
            center.return_late_capture(ctx, payment, refuse or f"order_{ctx.order.status}")
    return WebhookResult("applied")
