"""Shipments and their tracking events: the one code path every event takes.

A carrier webhook, the sandbox's advance route, a staff event and a retried
unknown event all end in :meth:`Tracker.receive`, which finds the shipment
by ``(carrier, tracking_no)`` and applies the event in one order stage:

1. Replays are ignored: an event is known by the carrier's ``event_id`` or,
   without one, by a hash of its content; a key seen before changes nothing.
2. The event is always recorded. It sets the shipment's status unless it is
   late: ``delivered`` is final (a late ``in_transit`` does not undo it), and
   an event older than the one that set the current status is history only
   (``applied = false``). A newer ``in_transit`` after ``out_for_delivery``
   does apply (the parcel went back to the depot).
3. Outbound parcels move the order: the first movement ships it
   (``kernel.orders.ship_in``), the last parcel delivered delivers it
   (``kernel.orders.deliver_in``).
4. Return parcels and pickups tell the after-sale center through
   ``after_sale_parcel`` when their status changes.
5. A timeline entry (English + Chinese) with ``ref = "shipment:<id>"``, or
   ``"after_sale:<case id>"`` for return parcels; late events are staff-only.

Events for waybills nobody knows are stored in ``tms_unknown_events`` for
review (``GET /tms/unknown-events``) and applied later if the waybill turns
up (a customer files it on a case, or staff retry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import (
    SYSTEM,
    Conflict,
    InvalidInput,
    OrderContext,
    Principal,
    Rejected,
    TimelineEntry,
    utcnow,
)
from mallcore.kernel.aftersale import Parcel, ParcelEvent

from . import tables as t
from .freight import quote_parcels
from .schemas import EventResult

if TYPE_CHECKING:
    from mallcore.kernel.http import Reply

    from . import TmsCenter

# The source of a staff event posted by a shop's own staff (not the platform's): a
# ``delivered`` from it is a claim the customer or the carrier must confirm.
SHOP_CLAIM = "shop"
MOVEMENT = frozenset({"picked_up", "in_transit", "out_for_delivery", "delivered"})
RETURN_KINDS = ("return", "pickup")
WHAT = {"outbound": ("Parcel", "包裹"), "ship_back": ("Repaired item", "维修寄回包裹")}

_EN = {
    "created": "{what} handed to {carrier}, waybill {no}",
    "picked_up": "{what} {no} picked up by {carrier}",
    "in_transit": "{what} {no} in transit",
    "out_for_delivery": "{what} {no} out for delivery",
    "delivered": "{what} {no} delivered",
    "exception": "Delivery problem with {what_lower} {no}",
    "pickup_failed": "Pickup of {what_lower} {no} failed",
    "stale": "{what} {no} has shown no movement for {hours} hours",
}
_ZH = {
    "created": "{what}已交{carrier}承运,运单号{no}",
    "picked_up": "{carrier}已揽收{what}{no}",
    "in_transit": "{what}{no}运输中",
    "out_for_delivery": "{what}{no}派送中",
    "delivered": "{what}{no}已签收",
    "exception": "{what}{no}配送异常",
    "pickup_failed": "{what}{no}上门取件失败",
    "stale": "{what}{no}已超过{hours}小时无物流更新",
}


def message(
    kind: str, status: str, tracking_no: str, carrier: tuple[str, str], **extra: Any
) -> tuple[str, str]:
    """A shipment's timeline entry in English and Chinese; ``carrier``: its name in each."""
    what, what_zh = WHAT.get(kind, ("Return parcel", "退货包裹"))
    values = {"no": tracking_no, **extra}
    en = _EN[status].format(what=what, what_lower=what.lower(), carrier=carrier[0], **values)
    zh = _ZH[status].format(what=what_zh, what_lower=what_zh, carrier=carrier[1], **values)
    return en, zh


class Incoming(msgspec.Struct, kw_only=True):
    """One tracking event, whoever sent it, ready to apply."""

    carrier: str
    tracking_no: str
    status: str
    occurred_at: datetime
    description: str = ""
    location: str = ""
    warehouse: str | None = None
    event_key: str
    source: str  # carrier | sandbox | staff (platform) | shop (a shop's staff) | customer | review
    actor: str
    payload: dict[str, Any] = msgspec.field(default_factory=dict)

    @classmethod
    def reported(
        cls,
        carrier: str,
        tracking_no: str,
        report: Any,
        occurred_at: datetime,
        *,
        event_id: str | None = None,
        source: str,
        actor: str,
        payload: dict[str, Any] | None = None,
    ) -> Incoming:
        """An event as a carrier or staff report it (``report`` has ``status``, ``description``,
        ``location``, ``warehouse``), known by ``event_id`` or else by its content."""
        at = aware(occurred_at)
        return cls(
            carrier=carrier,
            tracking_no=tracking_no,
            status=report.status,
            occurred_at=at,
            description=report.description,
            location=report.location,
            warehouse=report.warehouse,
            event_key=event_key(
                event_id,
                tracking_no,
                report.status,
                at,
                report.description,
                report.location,
                report.warehouse,
            ),
            source=source,
            actor=actor,
            payload=payload or {},
        )


def aware(value: datetime) -> datetime:
    """``value`` in UTC (naive means UTC); 422 if it has no UTC equivalent (year 0 or 10000)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"occurred_at {value.isoformat()} is out of range", code="occurred_at_invalid"
        ) from None


def event_key(event_id: str | None, tracking_no: str, status: str, occurred_at: datetime, *rest: Any) -> str:
    """The carrier's id, or a hash of what the event says (so a replay is recognised)."""
    if event_id:
        return f"id:{event_id}"
    content = msgspec.json.encode([tracking_no, status, aware(occurred_at).isoformat(), *rest])
    return "h:" + hashlib.sha256(content).hexdigest()


def carrier_principal(carrier: str) -> Principal:
    return Principal(f"carrier:{carrier}", frozenset({"admin", "system"}))


class Tracker:
    def __init__(self, center: TmsCenter) -> None:
        self.center = center
        s = t.shipments.c
        self._by_waybill = sa.select(s.id, s.order_id, s.shop, s.customer, s.kind, s.status).where(
            s.carrier == sa.bindparam("carrier"), s.tracking_no == sa.bindparam("tracking_no")
        )

    @property
    def kernel(self) -> Any:
        return self.center.kernel

    def carrier_name(self, code: str) -> tuple[str, str]:
        """The carrier's name in English and Chinese (its code for a carrier not configured)."""
        carrier = self.center.carriers.get(code)
        return carrier.names() if carrier is not None else (code, code)

    # -- shipments at dispatch ---------------------------------------------------

    def ship(self, ctx: OrderContext) -> None:
        """One shipment per parcel of ``ctx.parcels`` (or one with every line)."""
        order = ctx.order
        lines = ctx.lines
        parcels: Sequence[Parcel] = list(ctx.parcels)
        if not parcels:
            parcels = [
                Parcel(
                    warehouse=None,
                    region=None,
                    lines=[(line.id or 0, line.quantity) for line in lines if line.quantity > 0],
                    weight_grams=sum(line.weight_grams * line.quantity for line in lines),
                )
            ]
        region = order.address.region if order.address is not None else None
        if any(p.freight is None for p in parcels):
            book = self.center.freight.get(ctx.conn, order.shop)
            if not book.empty:
                by_id = {line.id or 0: (line.sku, line.weight_grams, line.unit_price or 0) for line in lines}
                quote_parcels(book, region, by_id, parcels, order.currency)
        now = utcnow()
        rows = []
        for parcel in parcels:
            code = parcel.carrier or self.center.settings.default_carrier
            carrier = self.center.carriers.get(code)
            if carrier is None:
                raise Rejected(f"no carrier named {code} is configured", code="carrier_unknown")
            rows.append(
                {
                    "order_id": order.id,
                    "shop": order.shop,
                    "customer": order.customer,
                    "kind": "outbound",
                    "case_id": None,
                    "carrier": code,
                    "tracking_no": carrier.waybill(),
                    "status": "created",
                    "warehouse": parcel.warehouse,
                    "region": region,
                    "lines": [[line_id, qty] for line_id, qty in parcel.lines],
                    "weight_grams": parcel.weight_grams,
                    "freight": parcel.freight,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        # RETURNING the waybill too: rows may come back in any order (asking
        # SQLAlchemy to sort them costs one INSERT per row on SQLite).
        s = t.shipments.c
        by_waybill = dict(
            (r.tracking_no, r.id)
            for r in ctx.conn.execute(t.shipments.insert().returning(s.id, s.tracking_no), rows)
        )
        ids = [by_waybill[row["tracking_no"]] for row in rows]
        n = len(rows)
        for i, (shipment_id, row) in enumerate(zip(ids, rows, strict=True), 1):
            en, zh = message(
                "outbound", "created", str(row["tracking_no"]), self.carrier_name(str(row["carrier"]))
            )
            if n > 1:
                en, zh = f"Parcel {i} of {n}: {en[0].lower()}{en[1:]}", f"第{i}/{n}个包裹:{zh}"
            if row["warehouse"]:
                en, zh = f"{en}, from warehouse {row['warehouse']}", f"{zh},发货仓 {row['warehouse']}"
            ctx.timeline(
                "shipment.created",
                en,
                zh=zh,
                ref=f"shipment:{shipment_id}",
                data={
                    "shipment_id": shipment_id,
                    "carrier": row["carrier"],
                    "tracking_no": row["tracking_no"],
                    "warehouse": row["warehouse"],
                    "freight": row["freight"],
                },
            )
            ctx.emit(
                "shipment.created",
                {
                    "shipment_id": shipment_id,
                    "kind": "outbound",
                    "carrier": row["carrier"],
                    "tracking_no": row["tracking_no"],
                    "warehouse": row["warehouse"],
                    "lines": row["lines"],
                },
            )

    # -- events --------------------------------------------------------------------

    def receive(
        self,
        event: Incoming,
        *,
        principal: Principal | None = None,
        unknown_id: int | None = None,
        reply: Reply | None = None,
        status: int = 200,
    ) -> EventResult:
        """Apply ``event`` to its shipment (one stage), or keep it for review.

        ``reply`` (an HTTP write's) gets the result as ``status`` in the same transaction
        as the event, so a retried request with its ``Idempotency-Key`` replays it instead
        of recording the event twice.
        """
        with self.kernel.db.transaction(write=False) as conn:
            row = conn.execute(
                self._by_waybill, {"carrier": event.carrier, "tracking_no": event.tracking_no}
            ).first()
        if row is None:
            if unknown_id is not None:
                raise Conflict(
                    f"waybill {event.tracking_no} of {event.carrier} is still unknown", code="waybill_unknown"
                )
            return self.keep_unknown(event, reply=reply, status=status)
        try:
            with self.kernel.orders.stage(
                "tms_event", row.order_id, principal or carrier_principal(event.carrier)
            ) as ctx:
                result = self.apply(ctx, row.id, event, unknown_id=unknown_id)
                if reply is not None:
                    reply(ctx.conn, result, status)
                return result
        except IntegrityError:
            # A concurrent copy of the same event may have won the unique key; anything
            # else that clashed is a failure the sender must hear of (it retries).
            if self._key_taken(reply):
                raise  # the same Idempotency-Key won meanwhile: the caller replays its reply
            e = t.events.c
            with self.kernel.db.transaction(write=False) as conn:
                seen = conn.execute(
                    sa.select(e.id).where(e.carrier == event.carrier, e.event_key == event.event_key)
                ).scalar()
            if seen is None:
                raise
            return self._answer(
                EventResult(result="duplicate", shipment_id=row.id, event_id=seen), reply, status
            )

    def keep_unknown(self, event: Incoming, *, reply: Reply | None = None, status: int = 200) -> EventResult:
        u = t.unknown_events.c
        try:
            with self.kernel.db.transaction() as conn:
                seen = conn.execute(
                    sa.select(u.id).where(u.carrier == event.carrier, u.event_key == event.event_key)
                ).scalar()
                if seen is not None:
                    result = EventResult(result="duplicate", event_id=seen)
                    if reply is not None:
                        reply(conn, result, status)
                    return result
                unknown_id = conn.execute(
                    t.unknown_events.insert()
                    .values(
                        carrier=event.carrier,
                        tracking_no=event.tracking_no,
                        status=event.status,
                        occurred_at=event.occurred_at,
                        location=event.location,
                        description=event.description,
                        warehouse=event.warehouse,
                        event_key=event.event_key,
                        payload=event.payload,
                        received_at=utcnow(),
                    )
                    .returning(u.id)
                ).scalar_one()
                result = EventResult(result="kept_for_review", event_id=unknown_id)
                if reply is not None:
                    reply(conn, result, status)
        except IntegrityError:
            if self._key_taken(reply):
                raise  # the same Idempotency-Key won meanwhile: the caller replays its reply
            return self._answer(EventResult(result="duplicate"), reply, status)
        self.center.log.warning(
            "tms.unknown_waybill", carrier=event.carrier, tracking_no=event.tracking_no, status=event.status
        )
        return result

    def _key_taken(self, reply: Reply | None) -> bool:
        claim = reply.claim if reply is not None else None
        return claim is not None and self.kernel.idempotency.lookup(claim) is not None

    def _answer(self, result: EventResult, reply: Reply | None, status: int) -> EventResult:
        """``result`` after the event's own transaction rolled back: stored for the key on its own."""
        if reply is not None:
            with self.kernel.db.transaction() as conn:
                reply(conn, result, status)
        return result

    def apply(
        self, ctx: OrderContext, shipment_id: int, event: Incoming, *, unknown_id: int | None = None
    ) -> EventResult:
        conn = ctx.conn
        s, e = t.shipments.c, t.events.c
        seen = conn.execute(
            sa.select(e.id).where(e.carrier == event.carrier, e.event_key == event.event_key)
        ).scalar()
        if seen is not None:
            if unknown_id is not None:
                # The carrier sent it again once the waybill was known: it is in, not for review.
                self._resolve_unknown(conn, unknown_id, "duplicate", event.actor, utcnow())
            return EventResult(result="duplicate", shipment_id=shipment_id, event_id=seen)
        sh = conn.execute(sa.select(t.shipments).where(s.id == shipment_id)).one()
        now = utcnow()
        # A carrier clock ahead of ours must not block the events that follow.
        at = min(aware(event.occurred_at), now)
        # A shop declaring its own parcel delivered would release the customer's money to
        # itself: the claim is recorded, and delivery waits for the customer or the carrier.
        claim = event.source == SHOP_CLAIM and event.status == "delivered" and sh.kind == "outbound"
        applied = not claim and self._applies(sh, event.status, at)
        values: dict[str, Any] = {"updated_at": now}
        if applied:
            values["status"] = event.status
            values["last_event_at"] = max(at, sh.last_event_at) if sh.last_event_at else at
            if event.status in MOVEMENT and sh.picked_up_at is None:
                values["picked_up_at"] = at
            if event.status == "delivered":
                values["delivered_at"] = at
        if sh.kind in RETURN_KINDS and applied:
            values["stale_at"] = None
            if event.status in ("delivered", "pickup_failed"):
                values["watch_from"] = None
            elif sh.watch_from is not None:
                values["watch_from"] = now
        event_id = conn.execute(
            t.events.insert()
            .values(
                shipment_id=shipment_id,
                order_id=sh.order_id,
                carrier=event.carrier,
                status=event.status,
                occurred_at=aware(event.occurred_at),
                location=event.location,
                description=event.description,
                warehouse=event.warehouse,
                source=event.source,
                actor=event.actor,
                event_key=event.event_key,
                applied=applied,
                received_at=now,
            )
            .returning(e.id)
        ).scalar_one()
        conn.execute(t.shipments.update().where(s.id == shipment_id).values(**values))
        if unknown_id is not None:
            self._resolve_unknown(conn, unknown_id, "applied", event.actor, now)
        scan = self._tell(ctx, sh, event, applied, event_id, claim=claim)
        if claim:
            return EventResult(
                result="awaiting_confirmation", shipment_id=shipment_id, status=sh.status, event_id=event_id
            )
        if not applied:
            return EventResult(
                result="recorded", shipment_id=shipment_id, status=sh.status, event_id=event_id
            )
        if sh.kind == "outbound":
            self._move_order(ctx, sh, event.status)
        elif sh.kind in RETURN_KINDS:
            expected = sh.warehouse
            # (what the case writes about this scan is its echo: the page shows it once)
            with ctx.because(scan):
                self.kernel.hook.after_sale_parcel(
                    ctx=ctx,
                    event=ParcelEvent(
                        case_id=sh.case_id,
                        order_id=sh.order_id,
                        kind="pickup" if sh.kind == "pickup" else "return",
                        status=event.status,
                        carrier=sh.carrier,
                        tracking_no=sh.tracking_no,
                        occurred_at=aware(event.occurred_at),
                        description=event.description,
                        location=event.location,
                        warehouse=event.warehouse or expected,
                        wrong_warehouse=bool(
                            event.status == "delivered"
                            and event.warehouse
                            and expected
                            and event.warehouse != expected
                        ),
                    ),
                )
        return EventResult(result="applied", shipment_id=shipment_id, status=event.status, event_id=event_id)

    @staticmethod
    def _resolve_unknown(
        conn: sa.Connection, unknown_id: int, resolution: str, actor: str, now: datetime
    ) -> None:
        u = t.unknown_events.c
        conn.execute(
            t.unknown_events.update()
            .where(u.id == unknown_id, u.resolved_at.is_(None))
            .values(resolved_at=now, resolution=resolution, resolved_by=actor)
        )

    @staticmethod
    def _applies(sh: Any, status: str, at: datetime) -> bool:
        if sh.status == "delivered":
            return False  # final: a late event never undoes delivery
        if status == "pickup_failed" and (sh.kind != "pickup" or sh.picked_up_at is not None):
            return False
        if sh.status == "cancelled":
            return False  # a booking we cancelled (e.g. rebooked): history only
        if status == "delivered":
            return True
        return sh.last_event_at is None or at >= sh.last_event_at

    def _tell(
        self,
        ctx: OrderContext,
        sh: Any,
        event: Incoming,
        applied: bool,
        event_id: int,
        *,
        claim: bool = False,
    ) -> TimelineEntry:
        en, zh = message(sh.kind, event.status, sh.tracking_no, self.carrier_name(sh.carrier))
        if event.description:
            en, zh = f"{en}: {event.description}", f"{zh}:{event.description}"
        if event.location:
            en, zh = f"{en} ({event.location})", f"{zh}({event.location})"
        if claim:
            en += " [declared by the shop: waiting for the customer's confirmation or the carrier]"
            zh += "(商家声明已送达,等待买家确认收货或承运商信息)"
        elif not applied:
            en += " [late event, status unchanged]"
            zh += "(迟到的物流信息,状态未变)"
        data = {
            "shipment_id": sh.id,
            "event_id": event_id,
            "carrier": sh.carrier,
            "tracking_no": sh.tracking_no,
            "status": event.status,
            "occurred_at": aware(event.occurred_at).isoformat(),
            "source": event.source,
            "applied": applied,
        }
        if event.warehouse:
            data["warehouse"] = event.warehouse
        ref = f"shipment:{sh.id}" if sh.kind == "outbound" else f"after_sale:{sh.case_id}"
        entry = ctx.timeline(
            f"shipment.{event.status}" if not claim else "shipment.delivery_declared",
            en,
            zh=zh,
            public=applied or claim,
            ref=ref,
            data=data,
            actor=event.actor,
        )
        ctx.emit(
            f"shipment.{event.status}",
            {**data, "kind": sh.kind, "case_id": sh.case_id},
        )
        return entry

    def _move_order(self, ctx: OrderContext, sh: Any, status: str) -> None:
        orders = self.kernel.orders
        if status in MOVEMENT and ctx.order.status == "dispatched":
            orders.ship_in(ctx)
        if status == "delivered" and ctx.order.status in ("dispatched", "shipped"):
            s = t.shipments.c
            waiting = ctx.conn.execute(
                sa.select(sa.func.count())
                .select_from(t.shipments)
                .where(
                    s.order_id == sh.order_id,
                    s.kind == "outbound",
                    s.id != sh.id,
                    s.status.notin_(("delivered", "cancelled")),
                )
            ).scalar_one()
            if waiting == 0:
                orders.deliver_in(ctx)

    # -- unknown waybills --------------------------------------------------------------

    def adopt(self, carrier: str, tracking_no: str) -> int:
        """Apply events kept for review for a waybill that is now known; returns how many."""
        u = t.unknown_events.c
        with self.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(t.unknown_events)
                .where(u.carrier == carrier, u.tracking_no == tracking_no, u.resolved_at.is_(None))
                .order_by(u.occurred_at, u.id)
            ).all()
        done = 0
        for row in rows:
            try:
                self.retry(row)
                done += 1
            except Exception:
                self.center.log.exception("tms.adopt_failed", unknown_event=row.id)
        return done

    def retry(
        self, row: Any, principal: Principal | None = None, *, reply: Reply | None = None
    ) -> EventResult:
        event = Incoming(
            carrier=row.carrier,
            tracking_no=row.tracking_no,
            status=row.status,
            occurred_at=row.occurred_at,
            description=row.description,
            location=row.location,
            warehouse=row.warehouse,
            event_key=row.event_key,
            source="review",
            actor=principal.subject if principal else f"carrier:{row.carrier}",
        )
        return self.receive(event, principal=principal, unknown_id=row.id, reply=reply)

    # -- stale returns and pickups -----------------------------------------------------

    def flag_stale(self, hours: float) -> int:
        """Flag return parcels and pickups with no movement for ``hours`` (job).

        A parcel whose flag is refused (an ``after_sale_parcel`` raise) is
        logged and left for the next run; it never holds up the others.
        """
        now = utcnow()
        cutoff = now - timedelta(hours=hours)
        s = t.shipments.c
        flagged = after = 0
        while True:
            with self.kernel.db.transaction(write=False) as conn:
                rows = conn.execute(
                    sa.select(s.id, s.order_id)
                    .where(
                        s.id > after,
                        s.watch_from < cutoff,
                        s.stale_at.is_(None),
                        s.kind.in_(RETURN_KINDS),
                    )
                    .order_by(s.id)
                    .limit(200)
                ).all()
            for row in rows:
                try:
                    flagged += self._flag(row.id, row.order_id, hours, cutoff, now)
                except Exception:
                    self.center.log.exception("tms.stale_flag_failed", shipment_id=row.id)
            if len(rows) < 200:
                return flagged
            after = rows[-1].id

    def _flag(self, shipment_id: int, order_id: int, hours: float, cutoff: datetime, now: datetime) -> int:
        s = t.shipments.c
        with self.kernel.orders.stage("tms_stale", order_id, SYSTEM) as ctx:
            taken = ctx.conn.execute(
                t.shipments.update()
                .where(s.id == shipment_id, s.stale_at.is_(None), s.watch_from < cutoff)
                .values(stale_at=now, updated_at=now)
            ).rowcount
            if not taken:
                return 0  # another runner got it, or it moved meanwhile
            sh = ctx.conn.execute(sa.select(t.shipments).where(s.id == shipment_id)).one()
            en, zh = message(
                sh.kind, "stale", sh.tracking_no, self.carrier_name(sh.carrier), hours=f"{hours:g}"
            )
            flag = ctx.timeline(
                "shipment.stale",
                en,
                zh=zh,
                public=False,
                ref=f"after_sale:{sh.case_id}",
                data={"shipment_id": sh.id, "tracking_no": sh.tracking_no, "carrier": sh.carrier},
            )
            with ctx.because(flag):
                self.kernel.hook.after_sale_parcel(
                    ctx=ctx,
                    event=ParcelEvent(
                        case_id=sh.case_id,
                        order_id=sh.order_id,
                        kind="pickup" if sh.kind == "pickup" else "return",
                        status="stale",
                        carrier=sh.carrier,
                        tracking_no=sh.tracking_no,
                        occurred_at=now,
                        description=en,
                        warehouse=sh.warehouse,
                    ),
                )
        return 1
