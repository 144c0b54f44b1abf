"""恶意买家 Merchants report a customer; risk staff confirm (list entries) or dismiss.

A merchant reports a customer of their shop (optionally naming the order).
Risk staff of that shop, or of the platform, decide: **confirm** adds list
entries (the customer's id, and as asked their phone, address, device or
IP from the reported order, else their latest placement) on the shop's list
or, for platform staff, the platform's, and lowers the customer's credit;
**dismiss** closes the report. Merchants see their shop's reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Conflict, NotFound, Principal, require_platform, utcnow, visible_to
from mallcore.kernel.http import Reply
from mallcore.kernel.tables import orders as kernel_orders

from . import tables as t
from .admin import add_entry, may_manage
from .schemas import ListIn, ReportDecision, ReportIn, ReportView

if TYPE_CHECKING:
    from . import RiskCenter


def report_view(row: Any) -> ReportView:
    return ReportView(
        id=row.id,
        shop=row.shop,
        customer=row.customer,
        order_id=row.order_id,
        reason=row.reason,
        reported_by=row.reported_by,
        status=row.status,
        entries=list(row.entries or []),
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
        created_at=row.created_at,
    )


class Reports:
    def __init__(self, center: RiskCenter) -> None:
        self.center = center

    def file(self, principal: Principal, data: ReportIn, reply: Reply) -> None:
        if not principal.can_act_for_shop(data.shop, "merchant"):
            raise NotFound(f"no shop '{data.shop}'", code="shop_not_found")
        kernel = self.center.kernel
        with kernel.db.transaction() as conn:
            if data.order_id is not None:
                o = kernel_orders.c
                order = conn.execute(sa.select(o.shop, o.customer).where(o.id == data.order_id)).first()
                if order is None or order.shop != data.shop or order.customer != data.customer:
                    raise NotFound(
                        f"order {data.order_id} of {data.customer} in {data.shop} not found",
                        code="order_not_found",
                    )
            report_id = conn.execute(
                t.reports.insert()
                .values(
                    shop=data.shop,
                    customer=data.customer,
                    order_id=data.order_id,
                    reason=data.reason,
                    reported_by=principal.subject,
                    status="open",
                    created_at=utcnow(),
                )
                .returning(t.reports.c.id)
            ).scalar_one()
            reply(conn, report_view(self._row(conn, principal, report_id)), 201)

    def _row(self, conn: sa.Connection, principal: Principal, report_id: int) -> Any:
        r = t.reports.c
        row = conn.execute(
            sa.select(t.reports).where(r.id == report_id, visible_to(principal, r.shop))
        ).first()
        if row is None:
            raise NotFound(f"report {report_id} not found", code="report_not_found")
        return row

    def get(self, principal: Principal, report_id: int) -> ReportView:
        with self.center.kernel.db.transaction(write=False) as conn:
            return report_view(self._row(conn, principal, report_id))

    def find(
        self, principal: Principal, *, status: str | None, shop: str | None, after: int | None, limit: int
    ) -> list[ReportView]:
        """Oldest first (a queue); ``after`` (an id) pages on."""
        r = t.reports.c
        stmt = sa.select(t.reports).where(visible_to(principal, r.shop))
        if status and status != "all":
            stmt = stmt.where(r.status == status)
        if shop:
            stmt = stmt.where(r.shop == shop)
        if after:
            stmt = stmt.where(r.id > after)
        with self.center.kernel.db.transaction(write=False) as conn:
            return [report_view(row) for row in conn.execute(stmt.order_by(r.id).limit(limit))]

    def decide(
        self, principal: Principal, report_id: int, data: ReportDecision, *, confirm: bool, reply: Reply
    ) -> None:
        center = self.center
        now = utcnow()
        center.decisions.flush()  # what the reported order showed may still be with the writer
        with center.kernel.db.transaction() as conn:
            row = self._row(conn, principal, report_id)
            may_manage(principal, row.shop)
            if row.status != "open":
                raise Conflict(
                    f"report {report_id} is {row.status}", code="report_closed", extra={"status": row.status}
                )
            entries: list[int] = []
            if confirm:
                shop = row.shop
                if data.scope == "platform":
                    require_platform(principal, "risk")
                    shop = None
                for kind, value in self._values(conn, row, data.kinds):
                    try:
                        entry = add_entry(
                            conn,
                            principal,
                            ListIn(
                                kind=kind,  # type: ignore[arg-type]
                                value=value,
                                action=data.action,
                                reason=f"report {report_id}: {row.reason}"[:500],
                                expires_at=data.expires_at,
                                shop=shop,
                            ),
                            source="report",
                            report_id=report_id,
                        )
                        entries.append(entry.id)
                    except Conflict:
                        continue  # listed already
                center.profiles.change(
                    conn, row.customer, "report_confirmed", actor=principal.subject, now=now, note=data.note
                )
            conn.execute(
                t.reports.update()
                .where(t.reports.c.id == report_id)
                .values(
                    status="confirmed" if confirm else "dismissed",
                    entries=entries or None,
                    decided_by=principal.subject,
                    decided_at=now,
                    note=data.note,
                )
            )
            reply(conn, report_view(self._row(conn, principal, report_id)))
        if confirm:
            center.changed("lists")

    def _values(self, conn: sa.Connection, row: Any, kinds: Sequence[str]) -> list[tuple[str, str]]:
        """(kind, value) of the reported customer: their id, and what their order showed."""
        out = [("customer", row.customer)]
        wanted = [k for k in dict.fromkeys(kinds) if k != "customer"]
        if not wanted:
            return out
        d = t.decisions.c
        stmt = sa.select(d.facts).where(d.customer == row.customer, d.stage == "place")
        stmt = stmt.where(d.order_id == row.order_id) if row.order_id else stmt.where(d.shop == row.shop)
        decision = conn.execute(stmt.order_by(d.id.desc()).limit(1)).first()
        facts = decision.facts if decision is not None else {}
        source = {
            "phone": (facts.get("address") or {}).get("phone"),
            "address": (facts.get("address") or {}).get("fingerprint"),
            "device": (facts.get("request") or {}).get("device"),
            "ip": (facts.get("request") or {}).get("ip"),
        }
        return out + [(k, source[k]) for k in wanted if source.get(k)]
