"""The read side: a case as its reader may see it, and the list of cases.

Customers see the public timeline entries and the outcome of each inspection;
staff of the shop see everything. What a case would refund now is quoted by
the kernel's allocation, as its refund would be.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec
import sqlalchemy as sa

from mallcore.kernel import (
    LIVE_REFUND_STATUSES,
    MallcoreError,
    Order,
    OrderContext,
    Principal,
    utcnow,
    visible_to,
)
from mallcore.kernel.aftersale import Inspection
from mallcore.kernel.schemas import TimelineView

from .. import states as st
from .. import tables as t
from ..schemas import CaseLineView, CaseSummary, CaseView
from .records import Case, CaseRecords, case_not_found
from .settlement import Settlement

if TYPE_CHECKING:
    from mallcore.kernel import Kernel


@dataclass(frozen=True)
class Reading:
    records: CaseRecords
    settlement: Settlement
    # (the kernel: its orders give the OrderContext a refund quote runs in, its views the timeline)
    kernel: Kernel
    # where returns go when no return address names a warehouse (``return_warehouse``)
    return_warehouse: str | None = None

    def get(self, principal: Principal, case_id: int, lang: str) -> CaseView:
        self.records.locate(principal, case_id)
        with self.kernel.db.transaction(write=False) as conn:
            case = self.records.load(conn, case_id)
            if case is None:
                raise case_not_found(case_id)
            return self.view(conn, case, principal, lang)

    def view(
        self,
        conn: sa.Connection,
        case: Case,
        principal: Principal,
        lang: str,
        *,
        order: Order | None = None,
        pending: OrderContext | None = None,
    ) -> CaseView:
        """The case for ``principal``; ``pending``: the stage that just changed it, not yet written."""
        order = order or self.kernel.orders.load(conn, case.order_id)
        assert order is not None
        staff = principal.is_admin or principal.can_act_for_shop(
            case.shop, "merchant", "warehouse", "finance"
        )
        # (cast: OrderService.list shadows the builtin in its annotations)
        timeline: list[TimelineView] = cast(
            Any,
            self.kernel.order_views.timeline_entries(
                conn, case.order_id, lang=lang, public_only=not staff, ref=case.ref
            ),
        )
        if pending is not None:
            timeline.extend(_pending(pending, case.ref, lang, staff))
        # A held case's deadline will not be kept: the customer is not promised it.
        promised = staff or case.hold is None
        return CaseView(
            id=case.id,
            order_id=case.order_id,
            type=case.type,
            status=case.status,
            status_text=st.label(case.status, lang),
            shop=case.shop,
            customer=case.customer,
            reason=case.reason,
            reason_text=case.reason_text,
            lines=[
                CaseLineView(
                    line_id=x.line_id,
                    sku=x.sku,
                    quantity=x.quantity,
                    received=x.received,
                    replacement_sku=case.replacement_skus.get(x.line_id),
                )
                for x in case.lines
            ],
            shipped=case.shipped,
            refund_amount=case.refund_amount,
            refund_id=case.refund_id,
            refund_status=case.refund_status,
            refundable_amount=self.refundable(conn, order, case, principal),
            currency=order.currency,
            replacement_order_id=case.replacement_order_id,
            return_parcel=case.parcel_back(promised=promised, warehouse=self.return_warehouse),
            pickup=case.pickup,
            inspections=[_inspection(i, staff) for i in case.inspections],
            return_address=case.return_address(),
            return_by=case.return_by() if promised else None,
            due_at=case.due_at if promised else None,
            timer=case.timer if promised else None,
            created_at=case.created_at or utcnow(),
            updated_at=case.updated_at or utcnow(),
            timeline=timeline,
            hold=case.hold if staff else None,
        )

    def refundable(self, conn: sa.Connection, order: Order, case: Case, principal: Principal) -> int:
        """What the case's units would refund now, by the kernel's allocation (0 if nothing)."""
        if case.type == "repair" or case.status in st.TERMINAL or case.refund_status in LIVE_REFUND_STATUSES:
            return 0
        units = case.passed() if case.inspections else {x.line_id: x.quantity for x in case.lines}
        ctx = self.kernel.orders.context("after_sale_view", order, conn, principal)
        money = self.settlement
        try:
            items = money.items(ctx, case, units)
            if not items:
                return 0
            return sum(q.amount for q in self.kernel.refunds.quote(ctx, items, money.shipping_mode(case)))
        except MallcoreError:
            return 0

    def summaries(
        self,
        principal: Principal,
        *,
        status: str | None,
        order_id: int | None,
        before: int | None,
        limit: int,
    ) -> list[CaseSummary]:
        """The cases ``principal`` may see, newest first."""
        c = t.cases.c
        stmt = sa.select(t.cases).where(visible_to(principal, c.shop, c.customer))
        if status:
            stmt = stmt.where(c.status == status)
        if order_id is not None:
            stmt = stmt.where(c.order_id == order_id)
        if before:
            stmt = stmt.where(c.id < before)
        stmt = stmt.order_by(c.id.desc()).limit(limit)
        with self.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
        out = []
        for r in rows:
            staff = principal.is_admin or principal.can_act_for_shop(
                r.shop, "merchant", "warehouse", "finance"
            )
            out.append(
                CaseSummary(
                    id=r.id,
                    order_id=r.order_id,
                    type=r.type,
                    status=r.status,
                    shop=r.shop,
                    customer=r.customer,
                    refund_amount=r.refund_amount,
                    replacement_order_id=r.replacement_order_id,
                    due_at=r.due_at if staff or r.hold is None else None,
                    created_at=r.created_at,
                    hold=r.hold if staff else None,
                )
            )
        return out


def _pending(ctx: OrderContext, ref: str, lang: str, staff: bool) -> Iterable[TimelineView]:
    """Timeline entries this stage has written but not yet flushed (the reply is built in the stage)."""
    for e in ctx.pending_timeline:
        if e.ref != ref or not (e.public or staff):
            continue
        yield TimelineView(
            at=e.at,
            kind=e.kind,
            actor=e.actor,
            message=(e.messages or {}).get(lang) or e.message,
            public=e.public,
            ref=e.ref,
            data=e.row_data(),
        )


def _inspection(inspection: Inspection, staff: bool) -> dict[str, Any]:
    """Staff see the whole verdict; the customer the outcome (the grades and notes are internal,
    as the timeline entry that lists them is)."""
    if staff:
        return cast(dict[str, Any], msgspec.to_builtins(inspection))
    return {
        "line_id": inspection.line_id,
        "sku": inspection.sku,
        "quantity": inspection.quantity,
        "passed": inspection.passed,
    }
