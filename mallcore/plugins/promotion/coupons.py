"""Issuing coupons (claim, batch codes, grants, redemption) and the customer's wallet.

Never more coupons than a template holds, never more per customer than its
limit, under any concurrency: issuing runs, in one transaction,

1. the customer's count (claims and redemptions only), ``INSERT ... ON
   CONFLICT DO UPDATE SET claimed = claimed + 1 WHERE claimed + 1 <=
   per_customer`` (409 ``coupon_limit_reached`` when no row changed);
2. the template's counter, ``UPDATE ... SET issued = issued + n WHERE
   status = 'active' AND issued + n <= total`` (409 ``coupons_sold_out``);
3. the coupon rows.

Codes are 16 characters from a 32-letter alphabet (80 random bits from
:mod:`secrets`), unique by constraint. A coupon belongs to one customer
from its claim; another customer's code answers exactly like an unknown one.

Claims, redemptions, batches and grants are outbox events
(``promotion.coupon_claimed`` with the customer and, over HTTP, the device
id and client IP, so a risk center can count claims per device).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mallcore.kernel import (
    Conflict,
    Event,
    InvalidInput,
    NotFound,
    Principal,
    current_request,
    utcnow,
    visible_to,
)

from . import tables as t
from .schemas import CouponView
from .templates import coupon_label

if TYPE_CHECKING:
    from mallcore.kernel import Kernel

    from . import PromotionCenter

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by people
CODE_LENGTH = 16
STATUSES = ("available", "locked", "used", "expired")


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def validity(template: Any, now: datetime) -> tuple[datetime | None, datetime | None]:
    """A new coupon's window: the template's dates, or ``valid_days`` from now (not past valid_to)."""
    if template.valid_days:
        end = now + timedelta(days=template.valid_days)
        if template.valid_to is not None:
            end = min(end, template.valid_to)
        return now, end
    return template.valid_from, template.valid_to


def status_of(row: Any, now: datetime) -> str:
    if row.customer is None:
        return "unredeemed"
    if row.status == "available" and row.valid_to is not None and row.valid_to <= now:
        return "expired"
    return str(row.status)


class Coupons:
    def __init__(self, center: PromotionCenter) -> None:
        self.center = center
        self.kernel: Kernel = center.kernel
        cl = t.claims.c
        insert = sqlite.insert if self.kernel.db.is_sqlite else postgresql.insert
        base = insert(t.claims).values(
            template_id=sa.bindparam("tid"), customer=sa.bindparam("who"), claimed=1
        )
        self._count = base.on_conflict_do_update(
            index_elements=[cl.template_id, cl.customer],
            set_={"claimed": cl.claimed + 1},
            where=cl.claimed + 1 <= sa.bindparam("limit", type_=sa.Integer),
        ).returning(cl.claimed)  # a row back: counted (an upsert's row count is unreliable)
        tp = t.templates.c
        n: Any = sa.bindparam("n", type_=sa.Integer)
        self._issue = (
            t.templates.update()
            .where(tp.id == sa.bindparam("tid"), tp.status == "active", tp.issued + n <= tp.total)
            .values(issued=tp.issued + n, updated_at=sa.bindparam("now"))
        )

    # -- issuing -------------------------------------------------------------------------

    def _template(self, conn: sa.Connection, template_id: int) -> Any:
        row = conn.execute(sa.select(t.templates).where(t.templates.c.id == template_id)).first()
        if row is None:
            raise NotFound(f"coupon template {template_id} not found", code="template_not_found")
        return row

    def _take(self, conn: sa.Connection, template: Any, n: int, now: datetime) -> None:
        _issuing(template, now)
        if not conn.execute(self._issue, {"tid": template.id, "n": n, "now": now}).rowcount:
            raise Conflict(
                f"coupon template {template.id} has no coupons left",
                code="coupons_sold_out",
                extra={"total": template.total},
            )

    def _count_claim(self, conn: sa.Connection, template: Any, customer: str) -> None:
        params = {"tid": template.id, "who": customer, "limit": template.per_customer}
        if conn.execute(self._count, params).first() is None:
            raise Conflict(
                f"at most {template.per_customer} coupon(s) of this template per customer",
                code="coupon_limit_reached",
                extra={"per_customer": template.per_customer},
            )

    def _insert(
        self,
        conn: sa.Connection,
        template: Any,
        customer: str | None,
        source: str,
        reason: str,
        now: datetime,
        n: int = 1,
    ) -> list[dict[str, Any]]:
        start, end = (
            validity(template, now) if customer is not None else (template.valid_from, template.valid_to)
        )
        rows = [
            {
                "code": new_code(),
                "template_id": template.id,
                "shop": template.shop,
                "customer": customer,
                "status": "available",
                "source": source,
                "reason": reason[:200],
                "valid_from": start,
                "valid_to": end,
                "order_id": None,
                "issued_at": now,
                "claimed_at": now if customer is not None else None,
                "used_at": None,
                "updated_at": now,
            }
            for _ in range(n)
        ]
        conn.execute(t.coupons.insert(), rows)
        return rows

    def _event(self, conn: sa.Connection, topic: str, payload: dict[str, Any], events: list[Event]) -> None:
        """Write an outbox event in ``conn``; ``events`` collects it for delivery after commit."""
        facts = current_request()
        if facts is not None:
            payload = {**payload, "device_id": facts.device_id, "ip": facts.ip}
        event = Event(topic=topic, payload=payload)
        self.kernel.events.write(conn, [event])
        events.append(event)

    def claim(
        self, conn: sa.Connection, principal: Principal, template_id: int, events: list[Event]
    ) -> CouponView:
        """A customer claims a coupon (领券); the caller delivers ``events`` after commit."""
        template = self._template(conn, template_id)
        if not template.claimable:
            # Not offered to customers: as if it did not exist.
            raise NotFound(f"coupon template {template_id} not found", code="template_not_found")
        now = utcnow()
        _issuing(template, now)
        self._count_claim(conn, template, principal.subject)
        self._take(conn, template, 1, now)
        row = self._insert(conn, template, principal.subject, "claim", "", now)[0]
        self._event(
            conn,
            "promotion.coupon_claimed",
            {
                "customer": principal.subject,
                "template_id": template.id,
                "shop": template.shop,
                "via": "claim",
            },
            events,
        )
        return self.coupon(conn, principal, row["code"])

    def batch(
        self, conn: sa.Connection, template: Any, count: int, actor: str, events: list[Event]
    ) -> list[str]:
        """``count`` codes customers redeem (兑换码); not anyone's until redeemed."""
        limit = self.center.settings.max_batch_codes
        if count > limit:
            raise InvalidInput(
                f"at most {limit} codes per batch", code="batch_too_large", extra={"max": limit}
            )
        now = utcnow()
        self._take(conn, template, count, now)
        rows = self._insert(conn, template, None, "batch", f"batch by {actor}", now, count)
        self._event(
            conn,
            "promotion.coupons_issued",
            {"template_id": template.id, "shop": template.shop, "count": count, "by": actor},
            events,
        )
        return [r["code"] for r in rows]

    def redeem(self, conn: sa.Connection, principal: Principal, code: str, events: list[Event]) -> CouponView:
        """A customer redeems a batch code into their wallet."""
        c = t.coupons.c
        row = conn.execute(sa.select(t.coupons).where(c.code == code)).first()
        if row is not None and row.customer == principal.subject:
            raise Conflict(f"coupon {code} is in your wallet already", code="coupon_already_redeemed")
        if row is None or row.customer is not None:
            raise NotFound(f"no coupon {code}", code="coupon_not_found")
        now = utcnow()
        if row.valid_to is not None and row.valid_to <= now:
            raise Conflict(f"coupon {code} has expired", code="coupon_expired")
        template = self._template(conn, row.template_id)
        self._count_claim(conn, template, principal.subject)
        start, end = validity(template, now)
        taken = conn.execute(
            t.coupons.update()
            .where(c.id == row.id, c.customer.is_(None), c.status == "available")
            .values(
                customer=principal.subject, valid_from=start, valid_to=end, claimed_at=now, updated_at=now
            )
        ).rowcount
        if not taken:  # another customer redeemed it a moment ago
            raise NotFound(f"no coupon {code}", code="coupon_not_found")
        self._event(
            conn,
            "promotion.coupon_claimed",
            {
                "customer": principal.subject,
                "template_id": template.id,
                "shop": template.shop,
                "via": "redeem",
            },
            events,
        )
        return self.coupon(conn, principal, code)

    def grant(self, conn: sa.Connection, customer: str, template_id: int, reason: str, source: str) -> str:
        """Another center's reward (``coupon_grant``): the template's total holds, not its
        per-customer limit. Raises :class:`Conflict` when unknown, ended or used up."""
        row = conn.execute(sa.select(t.templates).where(t.templates.c.id == template_id)).first()
        if row is None:
            raise Conflict(f"coupon template {template_id} does not exist", code="template_not_found")
        now = utcnow()
        self._take(conn, row, 1, now)
        code = self._insert(conn, row, customer, "grant", reason or source, now)[0]["code"]
        self.kernel.events.write(
            conn,
            [
                Event(
                    topic="promotion.coupon_granted",
                    payload={
                        "customer": customer,
                        "template_id": template_id,
                        "source": source,
                        "reason": reason,
                    },
                )
            ],
        )
        return str(code)

    # -- reading -------------------------------------------------------------------------

    def _select(self) -> Any:
        c, tp = t.coupons.c, t.templates.c
        return sa.select(
            c.id, c.code, c.status, c.template_id, c.shop, c.customer, c.valid_from, c.valid_to, c.source,
            c.reason, c.order_id, c.issued_at, tp.name, tp.kind, tp.value, tp.cap, tp.min_spend, tp.currency,
        ).join(t.templates, tp.id == c.template_id)  # fmt: skip

    def coupon(self, conn: sa.Connection, principal: Principal, code: str) -> CouponView:
        c = t.coupons.c
        row = conn.execute(
            self._select().where(c.code == code, visible_to(principal, c.shop, c.customer))
        ).first()
        if row is None or (row.customer is None and not principal.has("merchant")):
            raise NotFound(f"no coupon {code}", code="coupon_not_found")
        return _view(row, utcnow())

    def search(
        self,
        principal: Principal,
        *,
        status: str | None = None,
        customer: str | None = None,
        template_id: int | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[CouponView]:
        """Newest first. A customer's wallet (their own coupons); staff see their shop's."""
        c = t.coupons.c
        now = utcnow()
        stmt = self._select().where(visible_to(principal, c.shop, c.customer))
        if not principal.has("merchant"):
            stmt = stmt.where(c.customer == principal.subject)
        if customer:
            stmt = stmt.where(c.customer == customer)
        if template_id is not None:
            stmt = stmt.where(c.template_id == template_id)
        if status is not None:
            stmt = stmt.where(_status_clause(status, now))
        if before:
            stmt = stmt.where(c.id < before)
        with self.kernel.db.transaction(write=False) as conn:
            return [_view(r, now) for r in conn.execute(stmt.order_by(c.id.desc()).limit(limit))]


def _issuing(template: Any, now: datetime) -> None:
    """409 unless ``template`` issues coupons now: ``template_paused``, ``template_ended``."""
    if template.status == "paused":
        raise Conflict(f"coupon template {template.id} is paused", code="template_paused")
    if template.status != "active" or (template.valid_to is not None and template.valid_to <= now):
        raise Conflict(f"coupon template {template.id} has ended", code="template_ended")


def _status_clause(status: str, now: datetime) -> Any:
    c = t.coupons.c
    late = sa.and_(c.valid_to.is_not(None), c.valid_to <= now)
    if status == "available":
        return sa.and_(c.status == "available", c.customer.is_not(None), sa.not_(late))
    if status == "expired":
        return sa.or_(c.status == "expired", sa.and_(c.status == "available", c.customer.is_not(None), late))
    if status in ("locked", "used"):
        return c.status == status
    if status == "unredeemed":
        return c.customer.is_(None)
    raise InvalidInput(f"status is one of {', '.join(STATUSES)}, unredeemed", code="status_unknown")


def _view(row: Any, now: datetime) -> CouponView:
    return CouponView(
        id=row.id,
        code=row.code,
        status=status_of(row, now),
        template_id=row.template_id,
        name=row.name,
        label=coupon_label(row.kind, row.value, row.cap, row.min_spend, row.currency),
        kind=row.kind,
        value=row.value,
        cap=row.cap,
        min_spend=row.min_spend,
        currency=row.currency,
        shop=row.shop,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        source=row.source,
        reason=row.reason,
        order_id=row.order_id,
        issued_at=row.issued_at,
        customer=row.customer,
    )
