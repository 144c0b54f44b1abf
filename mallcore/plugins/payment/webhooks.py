"""Provider webhooks: signed, applied once, and resent when they lose a race.

``POST /payment/webhooks/{provider}`` takes no bearer token: the provider
proves itself with an HMAC signature over the raw body
(:mod:`mallcore.kernel.signing`; 401 ``signature_missing``,
``signature_invalid`` or ``signature_expired``). Each event is recorded by its id in the stage that
applies it; the id's unique key makes a resent event answer ``duplicate``
and change nothing. A write that lost a race with another (any other unique
key) recorded nothing either, and answers 503 ``retry_later`` so the
provider sends it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import SYSTEM, InvalidInput, NotFound, Payment, utcnow
from mallcore.kernel.http import resend_on_conflict
from mallcore.kernel.signing import verify

from . import tables as t

if TYPE_CHECKING:
    from . import PaymentCenter


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
    try:
        payload = msgspec.json.decode(body)
        event = msgspec.convert(payload, WebhookEvent)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json") from exc
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc), code="invalid_request") from exc
    with resend_on_conflict():
        return apply(center, provider, event, payload)


def apply(
    center: PaymentCenter, provider: str, event: WebhookEvent, payload: dict[str, Any]
) -> WebhookResult:
    """Record ``event`` and, for a capture of a pending payment, confirm the order's payment."""
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
        with kernel.db.transaction(write=False) as conn:
            seen = conn.execute(sa.select(w.id).where(w.provider == provider, w.event_id == event.id)).first()
        if seen is None:
            raise
        return WebhookResult("duplicate")
    return WebhookResult("applied")
