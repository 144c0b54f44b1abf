"""TMS routes under ``/tms``.

- Templates: ``POST/GET /tms/templates``, ``GET/PUT/DELETE /tms/templates/{id}``
  (merchants of the shop and admins write; shop staff read).
- ``GET /tms/carriers``.
- Shipments: ``GET /tms/shipments`` (staff: their shop; customers: their
  own), ``GET /tms/shipments/{id}`` with events, ``POST
  /tms/shipments/{id}/events`` (merchant or warehouse staff of the shop).
- ``POST /tms/webhooks/{carrier}``: carrier events, HMAC-signed (docs/centers/tms.md).
- ``POST /tms/sandbox/{tracking_no}/advance``: tell the sandbox carrier to
  move a parcel; it signs the event and feeds it to the webhook's code path.
- Unknown waybills: ``GET /tms/unknown-events``, ``POST
  /tms/unknown-events/{id}/retry`` and ``/dismiss`` (admins and platform
  staff: the events belong to no known shop).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter, RawBody

from mallcore.kernel import (
    Caller,
    Conflict,
    Forbidden,
    InvalidInput,
    Kernel,
    NotFound,
    Principal,
    Unauthenticated,
    require,
    utcnow,
)
from mallcore.kernel.http import IdempotencyKey, idempotent, resend_on_conflict
from mallcore.kernel.signing import HEADER, sign, verify

from . import tables as t
from .carriers import SANDBOX
from .freight import bump_version
from .schemas import (
    AdvanceIn,
    CarrierEventIn,
    CarrierView,
    Charge,
    DismissIn,
    EventResult,
    EventView,
    FreeRule,
    RegionRule,
    ShipmentDetail,
    StaffEventIn,
    TemplateIn,
    TemplateSpec,
    TemplateView,
    UnknownEventView,
)
from .tracking import Incoming, aware, event_key

if TYPE_CHECKING:
    from mallcore.kernel import Claim

    from . import TmsCenter


class _NoBody(msgspec.Struct):
    """What a request without a body is hashed as, for ``Idempotency-Key``."""


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
SANDBOX_TEXT = {
    "picked_up": "Collected by the courier 快递员已揽件",
    "in_transit": "Arrived at the sorting centre 已到达分拣中心",
    "out_for_delivery": "Out for delivery 派送中",
    "delivered": "Signed for 已签收",
    "exception": "Delivery attempt failed 派送异常",
    "pickup_failed": "Courier could not collect the parcel 上门取件失败",
}


# -- templates -------------------------------------------------------------------------


def _check_spec(data: TemplateSpec) -> None:
    for rule in data.free:
        if rule.min_amount is None and rule.min_quantity is None:
            raise InvalidInput(
                "a free-shipping rule needs min_amount or min_quantity", code="free_rule_invalid"
            )


def save_template(
    conn: sa.Connection, data: TemplateSpec, actor: str, template_id: int | None, shop: str | None = None
) -> int:
    """Insert or replace a template and its bindings, in the caller's transaction.

    The caller bumps the shop's template version (:func:`bump_version`).
    """
    _check_spec(data)
    shop = shop or getattr(data, "shop", None)
    assert shop
    tp, b = t.templates.c, t.bindings.c
    origin = data.origin or ""
    taken = conn.execute(
        sa.select(tp.id).where(tp.shop == shop, tp.name == data.name, tp.id != (template_id or 0))
    ).first()
    if taken is not None:
        raise Conflict(f"shop {shop} already has a template named {data.name}", code="template_name_taken")
    skus = list(dict.fromkeys(data.skus))
    wanted = skus + ([""] if data.default else [])
    if wanted:
        clash = conn.execute(
            sa.select(b.sku, b.template_id).where(
                b.shop == shop, b.origin == origin, b.sku.in_(wanted), b.template_id != (template_id or 0)
            )
        ).all()
        if clash:
            skus_taken = sorted(r.sku for r in clash if r.sku)
            what = ", ".join(skus_taken) if skus_taken else "the shop default"
            if skus_taken and any(not r.sku for r in clash):
                what += " and the shop default"
            raise Conflict(
                f"already bound to another template for this origin: {what}",
                code="template_binding_taken",
                extra={"skus": skus_taken, "default": any(not r.sku for r in clash)},
            )
    now = utcnow()
    unit = 1 if data.mode == "piece" else 1000

    def filled(rule: Any) -> Any:
        # Store the units the rule means, so what is shown is what is charged.
        return msgspec.structs.replace(rule, first=rule.first or unit, additional=rule.additional or unit)

    spec = {
        "default_rule": msgspec.to_builtins(filled(data.default_rule)),
        "rules": msgspec.to_builtins([filled(rule) for rule in data.rules]),
        "free": msgspec.to_builtins(data.free),
        "not_delivered": list(dict.fromkeys(data.not_delivered)),
    }
    values = {
        "name": data.name,
        "mode": data.mode,
        "origin": origin,
        "split": data.split,
        "spec": spec,
        "active": data.active,
        "updated_at": now,
    }
    if template_id is None:
        template_id = conn.execute(
            t.templates.insert()
            .values(shop=shop, created_by=actor, created_at=now, **values)
            .returning(tp.id)
        ).scalar_one()
    else:
        conn.execute(t.templates.update().where(tp.id == template_id).values(**values))
        conn.execute(t.bindings.delete().where(b.template_id == template_id))
    if wanted:
        conn.execute(
            t.bindings.insert(),
            [{"shop": shop, "sku": sku, "origin": origin, "template_id": template_id} for sku in wanted],
        )
    return template_id


def load_templates(conn: sa.Connection, where: Any, limit: int = 200) -> list[TemplateView]:
    tp, b = t.templates.c, t.bindings.c
    rows = conn.execute(sa.select(t.templates).where(where).order_by(tp.id).limit(limit)).all()
    if not rows:
        return []
    bound: dict[int, list[str]] = {}
    default: set[int] = set()
    for r in conn.execute(
        sa.select(b.template_id, b.sku).where(b.template_id.in_([row.id for row in rows])).order_by(b.sku)
    ):
        if r.sku:
            bound.setdefault(r.template_id, []).append(r.sku)
        else:
            default.add(r.template_id)
    out = []
    for row in rows:
        spec = row.spec or {}
        out.append(
            TemplateView(
                id=row.id,
                shop=row.shop,
                name=row.name,
                mode=row.mode,
                default_rule=msgspec.convert(spec.get("default_rule") or {"first_fee": 0}, Charge),
                rules=msgspec.convert(spec.get("rules") or [], list[RegionRule]),
                free=msgspec.convert(spec.get("free") or [], list[FreeRule]),
                not_delivered=list(spec.get("not_delivered") or []),
                origin=row.origin or None,
                split=row.split,
                default=row.id in default,
                skus=bound.get(row.id, []),
                active=row.active,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return out


def _manage(principal: Principal, shop: str) -> None:
    require(principal, "merchant")
    if not principal.can_act_for_shop(shop, "merchant"):
        raise Forbidden(f"you do not manage shop {shop}", code="shop_forbidden")


def _platform(principal: Principal) -> None:
    """Admins and staff of no shop: unknown waybills belong to no known shop."""
    if principal.is_admin:
        return
    if principal.has("merchant", "warehouse") and principal.shop is None:
        return
    raise Forbidden("only admins and platform staff review unknown waybills", code="role_required")


def routes(kernel: Kernel, center: TmsCenter) -> list[Any]:
    db = kernel.db
    tracker = center.tracker
    settings = center.settings

    def template_or_404(conn: sa.Connection, principal: Principal, template_id: int) -> TemplateView:
        found = load_templates(conn, t.templates.c.id == template_id, 1)
        if not found or not principal.can_see(found[0].shop):
            raise NotFound(f"template {template_id} not found", code="template_not_found")
        return found[0]

    def reply(conn: sa.Connection, claim: Claim | None, status_code: int, view: msgspec.Struct) -> bytes:
        """The response body, stored for its Idempotency-Key in the transaction of the work."""
        body = msgspec.json.encode(view)
        if claim is not None:
            kernel.idempotency.record(conn, claim, status_code, body)
        return body

    @post("/tms/templates", status_code=201, sync_to_thread=True, tags=["tms"])
    def create_template(
        data: JSONBody[TemplateIn], principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response[TemplateView]:
        """Create a freight template (运费模板) for a shop."""

        def run(claim: Claim | None) -> tuple[int, bytes]:
            _manage(principal, data.shop)
            kernel.shops.get(data.shop)  # 422 shop_unknown: no template for a shop that does not exist
            with db.transaction() as conn:
                template_id = save_template(conn, data, principal.subject, None)
                bump_version(conn, data.shop)
                body = reply(conn, claim, 201, template_or_404(conn, principal, template_id))
            center.freight.invalidate(data.shop)
            return 201, body

        return idempotent(kernel, principal, idempotency_key, "POST /tms/templates", data, run)

    @get("/tms/templates", sync_to_thread=True, tags=["tms"])
    def list_templates(principal: Caller, shop: FromQuery[str | None] = None) -> list[TemplateView]:
        require(principal, "merchant", "warehouse", "finance")
        tp = t.templates.c
        where: list[Any] = [sa.true()]
        if not principal.is_admin and principal.shop is not None:
            where.append(tp.shop == principal.shop)
        if shop:
            where.append(tp.shop == shop)
        with db.transaction(write=False) as conn:
            return load_templates(conn, sa.and_(*where), 500)

    @get("/tms/templates/{template_id:int}", sync_to_thread=True, tags=["tms"])
    def get_template(template_id: FromPath[int], principal: Caller) -> TemplateView:
        require(principal, "merchant", "warehouse", "finance")
        with db.transaction(write=False) as conn:
            return template_or_404(conn, principal, template_id)

    @put("/tms/templates/{template_id:int}", sync_to_thread=True, tags=["tms"])
    def replace_template(
        template_id: FromPath[int],
        data: JSONBody[TemplateSpec],
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[TemplateView]:
        """Replace a template's rules and bindings (the shop cannot change)."""

        def run(claim: Claim | None) -> tuple[int, bytes]:
            require(principal, "merchant")
            with db.transaction() as conn:
                current = template_or_404(conn, principal, template_id)
                _manage(principal, current.shop)
                save_template(conn, data, principal.subject, template_id, current.shop)
                bump_version(conn, current.shop)
                body = reply(conn, claim, 200, template_or_404(conn, principal, template_id))
            center.freight.invalidate(current.shop)
            return 200, body

        scope = f"PUT /tms/templates/{template_id}"
        return idempotent(kernel, principal, idempotency_key, scope, data, run)

    @delete("/tms/templates/{template_id:int}", status_code=204, sync_to_thread=True, tags=["tms"])
    def delete_template(template_id: FromPath[int], principal: Caller) -> None:
        require(principal, "merchant")
        with db.transaction() as conn:
            current = template_or_404(conn, principal, template_id)
            _manage(principal, current.shop)
            conn.execute(t.bindings.delete().where(t.bindings.c.template_id == template_id))
            conn.execute(t.templates.delete().where(t.templates.c.id == template_id))
            bump_version(conn, current.shop)
        center.freight.invalidate(current.shop)

    @get("/tms/carriers", sync_to_thread=False, tags=["tms"])
    def list_carriers(principal: Caller) -> list[CarrierView]:
        return [
            CarrierView(
                code=c.code, name=c.name, waybill_prefix=c.prefix, pickup=c.pickup, webhooks=bool(c.secret)
            )
            for c in center.carriers.values()
        ]

    # -- shipments --------------------------------------------------------------------

    def shipment_rows(conn: sa.Connection, where: Any, limit: int) -> list[ShipmentDetail]:
        s = t.shipments.c
        return [
            ShipmentDetail(
                id=r.id,
                order_id=r.order_id,
                shop=r.shop,
                customer=r.customer,
                kind=r.kind,
                case_id=r.case_id,
                carrier=r.carrier,
                tracking_no=r.tracking_no,
                status=r.status,
                warehouse=r.warehouse,
                region=r.region,
                lines=[{"line_id": a, "quantity": b} for a, b in r.lines or []],
                weight_grams=r.weight_grams,
                freight=r.freight,
                pickup=r.pickup,
                created_at=r.created_at,
                updated_at=r.updated_at,
                picked_up_at=r.picked_up_at,
                delivered_at=r.delivered_at,
                stale_at=r.stale_at,
            )
            for r in conn.execute(sa.select(t.shipments).where(where).order_by(s.id.desc()).limit(limit))
        ]

    def visible_shipment(conn: sa.Connection, principal: Principal, where: Any) -> ShipmentDetail:
        found = shipment_rows(conn, where, 1)
        if not found:
            raise NotFound("shipment not found", code="shipment_not_found")
        shipment = found[0]
        if not principal.can_see(shipment.shop, shipment.customer):
            raise NotFound("shipment not found", code="shipment_not_found")
        return shipment

    def may_post(principal: Principal, shipment: ShipmentDetail) -> None:
        if not principal.can_act_for_shop(shipment.shop, "merchant", "warehouse"):
            raise Forbidden("only the shop's merchant or warehouse staff post events", code="role_required")

    @get("/tms/shipments", sync_to_thread=True, tags=["tms"])
    def list_shipments(
        principal: Caller,
        order_id: FromQuery[int | None] = None,
        case_id: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        carrier: FromQuery[str | None] = None,
        tracking_no: FromQuery[str | None] = None,
        stale: FromQuery[bool | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[ShipmentDetail]:
        s = t.shipments.c
        where: list[Any] = [sa.true()]
        if not principal.is_admin:
            if principal.has("merchant", "warehouse", "finance"):
                if principal.shop is not None:
                    where.append(s.shop == principal.shop)
            else:
                where.append(s.customer == principal.subject)
        for column, value in (
            (s.order_id, order_id),
            (s.case_id, case_id),
            (s.kind, kind),
            (s.status, status),
            (s.carrier, carrier),
            (s.tracking_no, tracking_no),
        ):
            if value is not None:
                where.append(column == value)
        if stale is not None:
            where.append(s.stale_at.is_not(None) if stale else s.stale_at.is_(None))
        if before:
            where.append(s.id < before)
        with db.transaction(write=False) as conn:
            return shipment_rows(conn, sa.and_(*where), limit)

    @get("/tms/shipments/{shipment_id:int}", sync_to_thread=True, tags=["tms"])
    def get_shipment(shipment_id: FromPath[int], principal: Caller) -> ShipmentDetail:
        e = t.events.c
        with db.transaction(write=False) as conn:
            shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
            shipment.events = [
                EventView(
                    id=r.id,
                    status=r.status,
                    occurred_at=r.occurred_at,
                    location=r.location,
                    description=r.description,
                    warehouse=r.warehouse,
                    source=r.source,
                    applied=r.applied,
                    received_at=r.received_at,
                )
                for r in conn.execute(
                    sa.select(t.events).where(e.shipment_id == shipment_id).order_by(e.occurred_at, e.id)
                )
            ]
        return shipment

    @post("/tms/shipments/{shipment_id:int}/events", status_code=201, sync_to_thread=True, tags=["tms"])
    def post_event(
        shipment_id: FromPath[int],
        data: JSONBody[StaffEventIn],
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventResult]:
        """Record a tracking event by hand (a phone call with the carrier, a scan).

        Without ``occurred_at`` the event happened "now", so only an ``Idempotency-Key``
        tells a retried request from a second event.
        """

        def run(claim: Claim | None) -> tuple[int, bytes]:
            result = staff_event(shipment_id, data, principal, claim)
            return 201, msgspec.json.encode(result)

        scope = f"POST /tms/shipments/{shipment_id}/events"
        return idempotent(kernel, principal, idempotency_key, scope, data, run)

    def staff_event(
        shipment_id: int, data: StaffEventIn, principal: Principal, claim: Claim | None
    ) -> EventResult:
        with db.transaction(write=False) as conn:
            shipment = visible_shipment(conn, principal, t.shipments.c.id == shipment_id)
        may_post(principal, shipment)
        occurred = aware(data.occurred_at) if data.occurred_at else utcnow()
        event = Incoming(
            carrier=shipment.carrier,
            tracking_no=shipment.tracking_no,
            status=data.status,
            occurred_at=occurred,
            description=data.description,
            location=data.location,
            warehouse=data.warehouse,
            event_key=event_key(
                None,
                shipment.tracking_no,
                data.status,
                occurred,
                data.description,
                data.location,
                data.warehouse,
            ),
            source="staff",
            actor=principal.subject,
        )
        return tracker.receive(event, principal=principal, claim=claim, status_code=201)

    # -- the carrier webhook and the sandbox ----------------------------------------------

    def handle_webhook(
        code: str, header: str | None, body: bytes, source: str = "carrier", claim: Claim | None = None
    ) -> EventResult:
        carrier = center.carriers.get(code)
        if carrier is None or not carrier.secret:
            raise NotFound(f"no webhook for carrier {code}", code="carrier_unknown")
        if header is not None and not header.isascii():
            # kernel.signing.verify compares str digests, which fails (500) on non-ASCII text.
            raise Unauthenticated("malformed signature header", code="signature_invalid")
        verify(carrier.secret, header, body, tolerance=settings.webhook_tolerance_seconds)
        try:
            data = msgspec.json.decode(body, type=CarrierEventIn)
            payload = msgspec.json.decode(body)
        except msgspec.ValidationError as exc:
            raise InvalidInput(str(exc), code="invalid_request") from exc
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"malformed JSON: {exc}", code="malformed_json") from exc
        event = Incoming(
            carrier=code,
            tracking_no=data.tracking_no,
            status=data.status,
            occurred_at=aware(data.occurred_at),
            description=data.description,
            location=data.location,
            warehouse=data.warehouse,
            event_key=event_key(
                data.event_id,
                data.tracking_no,
                data.status,
                data.occurred_at,
                data.description,
                data.location,
                data.warehouse,
            ),
            source=source,
            actor=f"carrier:{code}",
            payload=payload if isinstance(payload, dict) else {"body": payload},
        )
        return tracker.receive(event, claim=claim)

    @post("/tms/webhooks/{carrier:str}", status_code=200, sync_to_thread=True, tags=["tms"])
    def webhook(carrier: FromPath[str], request: Request[Any, Any, Any], body: RawBody) -> EventResult:
        """A carrier's tracking event, signed ``X-Mallcore-Signature: t=<unix>,v1=<hmac>``.

        An event whose stage lost a write race was not recorded: the carrier hears 503
        ``retry_later`` (carriers resend on 5xx; many drop an event on a 4xx).
        """
        with resend_on_conflict():
            return handle_webhook(carrier, request.headers.get(HEADER), body)

    @post("/tms/sandbox/{tracking_no:str}/advance", status_code=200, sync_to_thread=True, tags=["tms"])
    def sandbox_advance(
        tracking_no: FromPath[str],
        principal: Caller,
        data: JSONBody[AdvanceIn | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EventResult]:
        """Tell the sandbox carrier to move a parcel (next step, or the status given)."""
        if not settings.sandbox_routes:
            raise NotFound("the sandbox routes are turned off", code="not_found")
        asked = data or AdvanceIn()

        def run(claim: Claim | None) -> tuple[int, bytes]:
            return 200, msgspec.json.encode(advance(tracking_no, principal, asked, claim))

        scope = f"POST /tms/sandbox/{tracking_no}/advance"
        return idempotent(kernel, principal, idempotency_key, scope, asked, run)

    def advance(tracking_no: str, principal: Principal, data: AdvanceIn, claim: Claim | None) -> EventResult:
        s = t.shipments.c
        with db.transaction(write=False) as conn:
            shipment = visible_shipment(
                conn, principal, sa.and_(s.carrier == SANDBOX, s.tracking_no == tracking_no)
            )
        may_post(principal, shipment)
        status = data.status or NEXT.get(shipment.status)
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
                "description": data.description or SANDBOX_TEXT.get(status, ""),
                "event_id": f"sandbox-{uuid.uuid4().hex}",
                "location": data.location or "Sandbox City 沙盒市",
                "warehouse": data.warehouse,
            }
        )
        secret = center.carriers[SANDBOX].secret
        return handle_webhook(SANDBOX, sign(secret, body), body, source="sandbox", claim=claim)

    # -- unknown waybills -------------------------------------------------------------------

    def unknown_or_404(conn: sa.Connection, event_id: int) -> Any:
        row = conn.execute(sa.select(t.unknown_events).where(t.unknown_events.c.id == event_id)).first()
        if row is None:
            raise NotFound(f"unknown-waybill event {event_id} not found", code="event_not_found")
        return row

    def unknown_view(r: Any) -> UnknownEventView:
        return UnknownEventView(
            id=r.id,
            carrier=r.carrier,
            tracking_no=r.tracking_no,
            status=r.status,
            occurred_at=r.occurred_at,
            location=r.location,
            description=r.description,
            warehouse=r.warehouse,
            received_at=r.received_at,
            resolved_at=r.resolved_at,
            resolution=r.resolution,
            resolved_by=r.resolved_by,
            note=r.note,
        )

    @get("/tms/unknown-events", sync_to_thread=True, tags=["tms"])
    def list_unknown(
        principal: Caller,
        resolved: FromQuery[bool] = False,
        carrier: FromQuery[str | None] = None,
        tracking_no: FromQuery[str | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 100,
    ) -> list[UnknownEventView]:
        """Carrier events for waybills no shipment has, kept for review."""
        _platform(principal)
        u = t.unknown_events.c
        stmt = sa.select(t.unknown_events).where(
            u.resolved_at.is_not(None) if resolved else u.resolved_at.is_(None)
        )
        if carrier:
            stmt = stmt.where(u.carrier == carrier)
        if tracking_no:
            stmt = stmt.where(u.tracking_no == tracking_no)
        with db.transaction(write=False) as conn:
            return [unknown_view(r) for r in conn.execute(stmt.order_by(u.id.desc()).limit(limit))]

    @post("/tms/unknown-events/{event_id:int}/retry", status_code=200, sync_to_thread=True, tags=["tms"])
    def retry_unknown(
        event_id: FromPath[int], principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response[EventResult]:
        """Apply a kept event now that its waybill is known (409 ``waybill_unknown`` if still not)."""

        def run(claim: Claim | None) -> tuple[int, bytes]:
            _platform(principal)
            with db.transaction(write=False) as conn:
                row = unknown_or_404(conn, event_id)
            if row.resolved_at is not None:
                raise Conflict(f"event {event_id} was already {row.resolution}", code="event_resolved")
            return 200, msgspec.json.encode(tracker.retry(row, principal, claim=claim))

        scope = f"POST /tms/unknown-events/{event_id}/retry"
        return idempotent(kernel, principal, idempotency_key, scope, _NoBody(), run)

    @post("/tms/unknown-events/{event_id:int}/dismiss", status_code=200, sync_to_thread=True, tags=["tms"])
    def dismiss_unknown(
        event_id: FromPath[int],
        principal: Caller,
        data: JSONBody[DismissIn | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[UnknownEventView]:
        asked = data or DismissIn()

        def run(claim: Claim | None) -> tuple[int, bytes]:
            _platform(principal)
            u = t.unknown_events.c
            with db.transaction() as conn:
                row = unknown_or_404(conn, event_id)
                if row.resolved_at is not None:
                    raise Conflict(f"event {event_id} was already {row.resolution}", code="event_resolved")
                conn.execute(
                    t.unknown_events.update()
                    .where(u.id == event_id, u.resolved_at.is_(None))
                    .values(
                        resolved_at=utcnow(),
                        resolution="dismissed",
                        resolved_by=principal.subject,
                        note=asked.note or None,
                    )
                )
                return 200, reply(conn, claim, 200, unknown_view(unknown_or_404(conn, event_id)))

        scope = f"POST /tms/unknown-events/{event_id}/dismiss"
        return idempotent(kernel, principal, idempotency_key, scope, asked, run)

    return [
        create_template,
        list_templates,
        get_template,
        replace_template,
        delete_template,
        list_carriers,
        list_shipments,
        get_shipment,
        post_event,
        webhook,
        sandbox_advance,
        list_unknown,
        retry_unknown,
        dismiss_unknown,
    ]
