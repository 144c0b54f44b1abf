"""Coupon templates (优惠券模板): create, change, end, list, read.

Checks on creation, each a 422 with its code before anything is written:
``coupon_kind_unknown`` (kind not ``amount`` or ``percent``),
``amount_invalid`` (a zero or negative value, total, limit or minimum
spend), ``threshold_below_discount`` (an amount coupon worth as much as its
minimum spend), ``percent_invalid`` (outside 1..99), ``rules_invalid`` (a
cap on an amount coupon), ``window_invalid`` (no validity, a window ending
before it starts or already over, ``valid_days`` outside 1..3650), and the
scope (:mod:`.owners`).

A change (:meth:`Templates.edit`, ``PATCH /promotion/coupon-templates/{id}``)
may rename, resize (``total``, never below what is issued: 409
``total_below_issued``), change the per-customer limit, the validity window
(coupons issued keep the window they were issued with), whether customers
may claim, and pause or resume issuing; an ended template: 409
``template_ended``. What a coupon is worth is not editable. Audited like
campaigns (``promotion.template_changed``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Conflict, Event, InvalidInput, Principal, utcnow, visible_to

from . import tables as t
from .cache import bump_version
from .campaigns import audit, changes_of
from .owners import check_scope, currency_of, may_manage, owned_row, window
from .rules import short
from .schemas import TemplateIn, TemplatePatch, TemplateView

if TYPE_CHECKING:
    from . import PromotionCenter


def coupon_label(kind: str, value: int, cap: int | None, min_spend: int, currency: str) -> str:
    """满100减10, 10元无门槛券, 9折券 (最多减50)."""
    if kind == "percent":
        tenths = 100 - value
        text = (f"{tenths // 10}" if tenths % 10 == 0 else f"{tenths / 10:g}") + "折券"
        text = (f"满{short(min_spend, currency)} " if min_spend else "") + text
        return text + (f" (最多减{short(cap, currency)})" if cap else "")
    if min_spend:
        return f"满{short(min_spend, currency)}减{short(value, currency)}"
    return f"{short(value, currency)}元无门槛券"


def template_view(row: Any) -> TemplateView:
    return TemplateView(
        id=row.id,
        shop=row.shop,
        name=row.name,
        kind=row.kind,
        value=row.value,
        cap=row.cap,
        min_spend=row.min_spend,
        currency=row.currency,
        label=coupon_label(row.kind, row.value, row.cap, row.min_spend, row.currency),
        skus=list(row.skus or ()),
        categories=list(row.categories or ()),
        total=row.total,
        issued=row.issued,
        left=row.total - row.issued,
        per_customer=row.per_customer,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        valid_days=row.valid_days,
        claimable=row.claimable,
        status=row.status,
        funded_by="platform" if row.shop is None else "shop",
        created_by=row.created_by,
        created_at=row.created_at,
        ended_by=row.ended_by,
    )


def check_terms(data: TemplateIn, now: datetime) -> None:
    if data.kind not in ("amount", "percent"):
        raise InvalidInput(
            f"unknown coupon kind {data.kind!r} (amount or percent)", code="coupon_kind_unknown"
        )
    for field in ("total", "per_customer"):
        if getattr(data, field) <= 0:
            raise InvalidInput(f"{field} must be positive", code="amount_invalid", extra={"field": field})
    if data.min_spend < 0:
        raise InvalidInput(
            "min_spend must not be negative", code="amount_invalid", extra={"field": "min_spend"}
        )
    if data.kind == "amount":
        if data.value <= 0:
            raise InvalidInput("value must be positive", code="amount_invalid", extra={"field": "value"})
        if data.cap is not None:
            raise InvalidInput("only percent coupons have a cap", code="rules_invalid")
        if data.min_spend and data.value >= data.min_spend:
            raise InvalidInput(
                f"the minimum spend {data.min_spend} must be above the value {data.value}",
                code="threshold_below_discount",
            )
    else:
        if not 1 <= data.value <= 99:
            raise InvalidInput("a percent coupon takes 1 to 99 percent off", code="percent_invalid")
        if data.cap is not None and data.cap <= 0:
            raise InvalidInput("cap must be positive", code="amount_invalid", extra={"field": "cap"})
    if data.valid_to is None and data.valid_days is None:
        raise InvalidInput("a coupon needs valid_to or valid_days", code="window_invalid")
    if data.valid_days is not None and not 1 <= data.valid_days <= 3650:
        raise InvalidInput("valid_days is 1 to 3650", code="window_invalid")
    window(data.valid_from, data.valid_to, now)


class Templates:
    def __init__(self, center: PromotionCenter) -> None:
        self.center = center
        self.kernel = center.kernel

    def create(self, conn: sa.Connection, principal: Principal, data: TemplateIn) -> TemplateView:
        may_manage(principal, data.shop, "coupon templates")
        now = utcnow()
        check_terms(data, now)
        currency = currency_of(self.kernel, data.shop)
        skus = list(dict.fromkeys(data.skus))
        categories = list(dict.fromkeys(data.categories))
        check_scope(conn, data.shop, skus, categories)
        template_id = conn.execute(
            t.templates.insert()
            .values(
                shop=data.shop,
                name=data.name,
                kind=data.kind,
                value=data.value,
                cap=data.cap,
                min_spend=data.min_spend,
                currency=currency,
                skus=skus,
                categories=categories,
                total=data.total,
                issued=0,
                per_customer=data.per_customer,
                valid_from=data.valid_from,
                valid_to=data.valid_to,
                valid_days=data.valid_days,
                claimable=data.claimable,
                status="active",
                created_by=principal.subject,
                created_at=now,
                updated_at=now,
            )
            .returning(t.templates.c.id)
        ).scalar_one()
        bump_version(conn, data.shop or t.PLATFORM)
        return template_view(self.row(conn, template_id))

    def row(self, conn: sa.Connection, template_id: int) -> Any:
        return owned_row(self.kernel, conn, t.templates, template_id, "template")

    def visible_row(
        self, conn: sa.Connection, principal: Principal, template_id: int, *, lock: bool = False
    ) -> Any:
        return owned_row(
            self.kernel, conn, t.templates, template_id, "template", principal=principal, lock=lock
        )

    def end(self, conn: sa.Connection, principal: Principal, template_id: int) -> TemplateView:
        """No more coupons of it are issued; those issued stay good until they expire."""
        row = self.visible_row(conn, principal, template_id, lock=True)
        may_manage(principal, row.shop, "coupon templates")
        if row.status == "ended":
            raise Conflict(f"coupon template {template_id} has ended already", code="template_ended")
        tp = t.templates.c
        conn.execute(
            t.templates.update()
            .where(tp.id == template_id)
            .values(status="ended", ended_by=principal.subject, updated_at=utcnow())
        )
        bump_version(conn, row.shop or t.PLATFORM)
        return template_view(self.row(conn, template_id))

    def edit(
        self,
        conn: sa.Connection,
        principal: Principal,
        template_id: int,
        data: TemplatePatch,
        events: list[Event],
    ) -> TemplateView:
        """Change a template in ``conn``; only the fields ``data`` gives change."""
        row = self.visible_row(conn, principal, template_id, lock=True)
        may_manage(principal, row.shop, "coupon templates")
        now = utcnow()
        if row.status == "ended":
            raise Conflict(
                f"coupon template {template_id} has ended; it cannot be changed", code="template_ended"
            )
        values: dict[str, Any] = {}
        for field in ("name", "per_customer", "claimable"):
            if getattr(data, field) is not None:
                values[field] = getattr(data, field)
        if data.total is not None:
            if data.total < row.issued:
                raise Conflict(
                    f"{row.issued} coupons are issued already; the total cannot go below",
                    code="total_below_issued",
                    extra={"issued": row.issued, "total": data.total},
                )
            values["total"] = data.total
        if data.valid_from is not None or data.valid_to is not None:
            starts = data.valid_from or row.valid_from
            ends = data.valid_to or row.valid_to
            window(starts, ends, now)
            values["valid_from"], values["valid_to"] = starts, ends
        if data.paused is not None:
            values["status"] = "paused" if data.paused else "active"
        changes = changes_of(row, values)
        if not changes:
            return template_view(row)
        tp = t.templates.c
        stmt = t.templates.update().where(tp.id == template_id, tp.status != "ended")
        if "total" in values:  # claims move the issued counter without this row's lock
            stmt = stmt.where(tp.issued <= values["total"])
        if not conn.execute(stmt.values(**values, updated_at=now)).rowcount:
            raise Conflict(
                f"coupon template {template_id} changed meanwhile",
                code="total_below_issued" if "total" in values else "template_ended",
            )
        bump_version(conn, row.shop or t.PLATFORM)
        audit(self.kernel, conn, events, "template", template_id, row.shop, principal, changes, now)
        return template_view(self.row(conn, template_id))

    def get(self, principal: Principal, template_id: int) -> TemplateView:
        with self.kernel.db.transaction(write=False) as conn:
            return template_view(self.visible_row(conn, principal, template_id))

    def search(
        self,
        principal: Principal,
        *,
        shop: str | None = None,
        platform: bool = False,
        status: str | None = None,
        before: int | None = None,
        limit: int = 50,
    ) -> list[TemplateView]:
        tp = t.templates.c
        stmt = sa.select(t.templates).where(visible_to(principal, tp.shop))
        if platform:
            stmt = stmt.where(tp.shop.is_(None))
        elif shop:
            stmt = stmt.where(tp.shop == shop)
        if status:
            stmt = stmt.where(tp.status == status)
        if before:
            stmt = stmt.where(tp.id < before)
        with self.kernel.db.transaction(write=False) as conn:
            return [template_view(r) for r in conn.execute(stmt.order_by(tp.id.desc()).limit(limit))]

    def claimable(self, conn: sa.Connection, shop: str) -> list[TemplateView]:
        """Templates shoppers of ``shop`` may claim now: its own and the platform's."""
        tp = t.templates.c
        now = utcnow()
        currency = currency_of(self.kernel, shop)
        stmt = (
            sa.select(t.templates)
            .where(
                sa.or_(tp.shop == shop, tp.shop.is_(None)),
                tp.currency == currency,
                tp.claimable.is_(True),
                tp.status == "active",
                tp.issued < tp.total,
                sa.or_(tp.valid_to.is_(None), tp.valid_to > now),
            )
            .order_by(tp.id)
        )
        return [template_view(r) for r in conn.execute(stmt)]
