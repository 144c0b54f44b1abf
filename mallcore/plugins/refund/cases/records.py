"""A case as stored, and the one place that reads and writes its rows.

:class:`Case` is a row of ``refund_cases`` with its lines; :class:`CaseRecords`
loads cases, inserts a new one and writes a changed one. Every write is
conditional on the status the case had when it was read: a row that changed
meanwhile is not overwritten (see :meth:`CaseRecords.write`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import Conflict, NotFound, Principal
from mallcore.kernel.aftersale import CaseLine, Inspection, Pickup, ReturnAddress, ReturnParcel

from .. import tables as t
from ..schemas import ReturnParcelView
from ..states import GOODS_BACK
from ..states import CaseStatus as S

if TYPE_CHECKING:
    from mallcore.kernel import Database


class Case(msgspec.Struct, kw_only=True):
    """A case as stored (one row of ``refund_cases`` plus its lines)."""

    id: int
    order_id: int
    shop: str
    customer: str
    type: str
    status: str
    reason: str
    reason_text: str
    shipped: bool
    lines: list[CaseLine]
    refund_id: int | None = None
    refund_status: str | None = None
    refund_amount: int = 0
    replacement_order_id: int | None = None
    approved_by: str | None = None
    received_by: str | None = None
    return_parcel: ReturnParcel | None = None
    pickup: Pickup | None = None
    inspections: list[Inspection] = msgspec.field(default_factory=list)
    replacement_skus: dict[int, str] = msgspec.field(default_factory=dict)
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    # why a reacting center keeps the case from automatic decisions (``AfterSaleCase.hold``)
    hold: str | None = None
    due_at: datetime | None = None
    timer: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def ref(self) -> str:
        """The case's tag on the order timeline."""
        return f"after_sale:{self.id}"

    def return_address(self) -> ReturnAddress | None:
        """Where the goods go back, once a warehouse gave its address (WMS, at ``awaiting_return``)."""
        raw = self.data.get("return_address")
        if not isinstance(raw, dict):
            return None
        found = msgspec.convert(raw, ReturnAddress)
        return found if found.filled else None

    def return_by(self) -> datetime | None:
        """The deadline to ship the goods back: the ``close`` timer while ``awaiting_return``."""
        if self.status == "awaiting_return" and self.timer == "close" and self.hold is None:
            return self.due_at
        return None

    def parcel_back(self, *, promised: bool = True, warehouse: str | None = None) -> ReturnParcelView | None:
        """The return parcel as the case shows it (:class:`ReturnParcelView`): the waybill once
        there is one, else expected while the case waits for the goods; ``None`` when no goods
        come back. ``promised``: say the deadline; ``warehouse``: where returns go when no
        return address names one (the configured return warehouse)."""
        rp = self.return_parcel
        if rp is not None:
            return ReturnParcelView(
                status=rp.status,
                warehouse=rp.warehouse,
                carrier=rp.carrier,
                tracking_no=rp.tracking_no,
                phone=rp.phone,
            )
        if self.type not in GOODS_BACK or self.status not in (S.AWAITING_RETURN, S.PICKUP_REQUESTED):
            return None
        asked = self.data.get("return_address")
        if isinstance(asked, dict) and asked.get("warehouse"):
            warehouse = str(asked["warehouse"])
        elif self.data.get("return_warehouse"):
            # where the goods left from, kept at approval (no return address names one)
            warehouse = str(self.data["return_warehouse"])
        return ReturnParcelView(
            status="awaiting_pickup" if self.status == S.PICKUP_REQUESTED else "awaiting_waybill",
            warehouse=warehouse,
            return_by=self.return_by() if promised else None,
        )

    def passed(self) -> dict[int, int]:
        """Units per line that passed inspection."""
        out: dict[int, int] = {}
        for i in self.inspections:
            if i.passed:
                out[i.line_id] = out.get(i.line_id, 0) + i.quantity
        return out


def case_not_found(case_id: int) -> NotFound:
    return NotFound(f"after-sale case {case_id} not found", code="case_not_found")


class CaseRecords:
    """Reads and writes ``refund_cases`` and ``refund_case_lines``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        c = t.cases.c
        self._select_case = sa.select(t.cases).where(c.id == sa.bindparam("case_id"))
        self._select_lines = (
            sa.select(t.case_lines)
            .where(t.case_lines.c.case_id == sa.bindparam("case_id"))
            .order_by(t.case_lines.c.id)
        )

    def load(self, conn: sa.Connection, case_id: int) -> Case | None:
        row = conn.execute(self._select_case, {"case_id": case_id}).first()
        if row is None:
            return None
        lines = [_line(r) for r in conn.execute(self._select_lines, {"case_id": case_id})]
        return case_from_row(row, lines)

    def load_for_order(self, conn: sa.Connection, order_id: int) -> list[Case]:
        rows = conn.execute(sa.select(t.cases).where(t.cases.c.order_id == order_id).order_by(t.cases.c.id))
        by_case: dict[int, list[CaseLine]] = {}
        for r in conn.execute(
            sa.select(t.case_lines).where(t.case_lines.c.order_id == order_id).order_by(t.case_lines.c.id)
        ):
            by_case.setdefault(r.case_id, []).append(_line(r))
        return [case_from_row(row, by_case.get(row.id, [])) for row in rows]

    def locate(self, principal: Principal, case_id: int) -> int:
        """The order of a case the principal may see (404 otherwise)."""
        c = t.cases.c
        with self.db.transaction(write=False) as conn:
            row = conn.execute(sa.select(c.order_id, c.shop, c.customer).where(c.id == case_id)).first()
        if row is None or not principal.can_see(row.shop, row.customer):
            raise case_not_found(case_id)
        return int(row.order_id)

    def insert(self, conn: sa.Connection, case: Case) -> None:
        """Store a new case and its lines; sets ``case.id``."""
        row = _mutable(case)
        row.update(
            order_id=case.order_id,
            shop=case.shop,
            customer=case.customer,
            type=case.type,
            reason=case.reason,
            reason_text=case.reason_text,
            replacement_skus={str(k): v for k, v in case.replacement_skus.items()} or None,
            created_at=case.created_at,
        )
        case.id = conn.execute(t.cases.insert().values(**row).returning(t.cases.c.id)).scalar_one()
        conn.execute(
            t.case_lines.insert(),
            [
                {
                    "case_id": case.id,
                    "order_id": case.order_id,
                    "line_id": x.line_id,
                    "sku": x.sku,
                    "quantity": x.quantity,
                    "received": x.received,
                }
                for x in case.lines
            ],
        )

    def write(self, conn: sa.Connection, case: Case, read_as: str) -> None:
        """Write the case's changing fields, if its row is still ``read_as``.

        The step that changed the case checked its move against the status it
        read. A row no longer in that status was changed by another request
        since: nothing is written, and the caller hears 409 ``write_conflict``
        (retry: the step may well be allowed, or refused, on the new state),
        never ``invalid_transition``, which says the step is not allowed.
        """
        c = t.cases.c
        done = conn.execute(
            t.cases.update().where(c.id == case.id, c.status == read_as).values(**_mutable(case))
        ).rowcount
        if done != 1:
            raise Conflict(
                f"after-sale case {case.id} was changed by another request at the same time; "
                "nothing was written, try again",
                code="write_conflict",
                extra={"case_id": case.id},
            )

    def write_received(self, conn: sa.Connection, case: Case) -> None:
        """Store the units received back per line."""
        cl = t.case_lines.c
        conn.execute(
            t.case_lines.update()
            .where(cl.case_id == sa.bindparam("b_case"), cl.line_id == sa.bindparam("b_line"))
            .values(received=sa.bindparam("b_received")),
            [{"b_case": case.id, "b_line": x.line_id, "b_received": x.received} for x in case.lines],
        )


def _line(row: Any) -> CaseLine:
    return CaseLine(line_id=row.line_id, sku=row.sku, quantity=row.quantity, received=row.received)


def case_from_row(row: Any, lines: list[CaseLine] | None = None) -> Case:
    """A case from its ``refund_cases`` row (``lines``: its lines, when they are needed)."""
    return Case(
        id=row.id,
        order_id=row.order_id,
        shop=row.shop,
        customer=row.customer,
        type=row.type,
        status=row.status,
        reason=row.reason,
        reason_text=row.reason_text or "",
        shipped=row.shipped,
        lines=lines or [],
        refund_id=row.refund_id,
        refund_status=row.refund_status,
        refund_amount=row.refund_amount,
        replacement_order_id=row.replacement_order_id,
        approved_by=row.approved_by,
        received_by=row.received_by,
        return_parcel=None if row.return_parcel is None else msgspec.convert(row.return_parcel, ReturnParcel),
        pickup=None if row.pickup is None else msgspec.convert(row.pickup, Pickup),
        inspections=msgspec.convert(row.inspections or [], list[Inspection]),
        replacement_skus={int(k): v for k, v in (row.replacement_skus or {}).items()},
        data=row.data or {},
        hold=row.hold,
        due_at=row.due_at,
        timer=row.timer,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _mutable(case: Case) -> dict[str, Any]:
    """The columns a step may change."""
    return {
        "status": case.status,
        "shipped": case.shipped,
        "refund_id": case.refund_id,
        "refund_status": case.refund_status,
        "refund_amount": case.refund_amount,
        "replacement_order_id": case.replacement_order_id,
        "approved_by": case.approved_by,
        "received_by": case.received_by,
        "return_parcel": None if case.return_parcel is None else msgspec.to_builtins(case.return_parcel),
        "pickup": None if case.pickup is None else msgspec.to_builtins(case.pickup),
        "inspections": [msgspec.to_builtins(i) for i in case.inspections] or None,
        "data": case.data or None,
        "hold": case.hold,
        "due_at": case.due_at,
        "timer": case.timer,
        "updated_at": case.updated_at,
    }
