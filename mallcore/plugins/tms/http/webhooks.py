"""Carriers: the list, their signed webhook, and the sandbox carrier's advance route.

``POST /tms/webhooks/{carrier}`` takes no bearer token: the HMAC signature
(``X-Mallcore-Signature``) is the authentication. ``POST
/tms/sandbox/{tracking_no}/advance`` tells the sandbox carrier to move a
parcel; it signs the event with the sandbox secret and feeds it to the
webhook's code path, so the sandbox exercises exactly what a carrier does.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, RawBody

from mallcore.kernel import Caller, Conflict, InvalidInput, NotFound, Unauthenticated, utcnow
from mallcore.kernel.http import WEBHOOK, Idempotent, Reply, decode_json_body, resend_on_conflict, roles
from mallcore.kernel.signing import HEADER, sign, verify_any

from .. import tables as t
from ..carriers import SANDBOX
from ..schemas import AdvanceIn, CarrierEventIn, CarrierView, EventResult
from ..tracking import Incoming
from .deps import Tms
from .shipments import may_post, visible_shipment

if TYPE_CHECKING:
    from .. import TmsCenter

# What the sandbox does next when told to advance without a status.
NEXT = {
    "created": "picked_up",
    "booked": "picked_up",
    "superseded": "picked_up",
    "picked_up": "in_transit",
    "in_transit": "out_for_delivery",
    "exception": "in_transit",
    "out_for_delivery": "delivered",
}


def receive_signed(
    tms: TmsCenter,
    code: str,
    header: str | None,
    body: bytes,
    source: str = "carrier",
    reply: Reply | None = None,
) -> EventResult:
    """Check a carrier event's signature, read it and hand it to the tracker."""
    carrier = tms.carriers.get(code)
    if carrier is None or not carrier.secret:
        raise NotFound(f"no webhook for carrier {code}", code="carrier_unknown")
    if header is not None and not header.isascii():
        # kernel.signing.verify compares str digests, which fails (500) on non-ASCII text.
        raise Unauthenticated("malformed signature header", code="signature_invalid")
    verify_any(carrier.secrets, header, body, tolerance=tms.settings.webhook_tolerance_seconds)
    payload = decode_json_body(body)
    try:
        data = msgspec.convert(payload, CarrierEventIn, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc), code="invalid_event") from exc
    event = Incoming.reported(
        code,
        data.tracking_no,
        data,
        data.occurred_at,
        event_id=data.event_id,
        source=source,
        actor=f"carrier:{code}",
        payload=payload if isinstance(payload, dict) else {"body": payload},
    )
    return tms.tracker.receive(event, reply=reply)


class CarrierController(Controller):
    path = "/carriers"
    tags = ["tms"]

    @get("/", sync_to_thread=False)
    def list_carriers(self, principal: Caller, tms: Tms) -> list[CarrierView]:
        """The configured carriers: code, names, waybill prefix, whether they pick up and whether they send
        signed webhooks.
        """
        return [
            CarrierView(
                code=c.code,
                name=c.name,
                name_zh=c.name_zh,
                waybill_prefix=c.prefix,
                pickup=c.pickup,
                webhooks=bool(c.secret),
            )
            for c in tms.carriers.values()
        ]


class WebhookController(Controller):
    path = "/webhooks"
    tags = ["tms"]

    @post("/{carrier:str}", status_code=200, sync_to_thread=True, opt={WEBHOOK: True})
    def webhook(
        self, carrier: FromPath[str], request: Request[Any, Any, Any], body: RawBody, tms: Tms
    ) -> EventResult:
        """A carrier's tracking event, signed ``X-Mallcore-Signature: t=<unix>,v1=<hmac>``.

        An event whose stage lost a write race was not recorded: the carrier hears 503
        ``retry_later`` (carriers resend on 5xx; many drop an event on a 4xx).
        """
        with resend_on_conflict():
            return receive_signed(tms, carrier, request.headers.get(HEADER), body)


class SandboxController(Controller):
    path = "/sandbox"
    tags = ["tms"]

    @post(
        "/{tracking_no:str}/advance",
        status_code=200,
        sync_to_thread=True,
        guards=[roles("merchant", "warehouse")],
    )
    def sandbox_advance(
        self,
        tracking_no: FromPath[str],
        principal: Caller,
        tms: Tms,
        idempotent: Idempotent,
        data: JSONBody[AdvanceIn | None] = None,
    ) -> Response[EventResult]:
        """Tell the sandbox carrier to move a parcel (next step, or the status given)."""
        if not tms.settings.sandbox_routes:
            raise NotFound("the sandbox routes are turned off", code="not_found")
        asked = data or AdvanceIn()

        def work(reply: Reply) -> None:
            s = t.shipments.c
            with tms.kernel.db.transaction(write=False) as conn:
                shipment = visible_shipment(
                    conn, principal, sa.and_(s.carrier == SANDBOX, s.tracking_no == tracking_no)
                )
            may_post(principal, shipment)
            status = asked.status or NEXT.get(shipment.status)
            if status is None:
                raise Conflict(
                    f"parcel {tracking_no} is {shipment.status}; say which status to send",
                    code="shipment_not_advanceable",
                    extra={"status": shipment.status},
                )
            body = msgspec.json.encode(
                {
                    "tracking_no": tracking_no,
                    "status": status,
                    "occurred_at": utcnow().isoformat(),
                    # No text of its own unless asked: the status is what it reports, and
                    # pages word it in their own language (a carrier's text is not translated).
                    "description": asked.description,
                    "event_id": f"sandbox-{uuid.uuid4().hex}",
                    "location": asked.location,
                    "warehouse": asked.warehouse,
                }
            )
            secret = tms.carriers[SANDBOX].secret
            receive_signed(tms, SANDBOX, sign(secret, body), body, source="sandbox", reply=reply)

        return idempotent(asked, work)
