"""Reading orders from their rows: the order (locked for a stage), its lines, its adjustments.

Both sides of the kernel read orders this way: the stages that change them
(:mod:`~mallcore.kernel.orders`) and the views that show them
(:mod:`~mallcore.kernel.order_views`). Visibility is checked in one place,
:meth:`OrderStore.visible`: anything the caller may not see is a 404.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from . import tables as t
from .errors import NotFound
from .types import Address, Adjustment, Line, Order, Principal

if TYPE_CHECKING:
    from .db import Database


class OrderStore:
    def __init__(self, db: Database) -> None:
        # The order without its adjustments (load_adjustments reads those).
        order_columns = [c for c in t.orders.c if c.name != "adjustments"]
        self._select_order = sa.select(*order_columns).where(t.orders.c.id == sa.bindparam("order_id"))
        self._select_order_locked = db.lock_clause(self._select_order)
        self._select_lines = (
            sa.select(t.order_lines)
            .where(t.order_lines.c.order_id == sa.bindparam("order_id"))
            .order_by(t.order_lines.c.line_no)
        )
        # One statement: the order's adjustments (as text: decoded once, not per line) and
        # its lines' ids, to turn the line numbers they were stored with into line ids.
        o, ln = t.orders.c, t.order_lines.c
        self._select_adjustments = (
            sa.select(sa.type_coerce(o.adjustments, sa.Text), ln.id, ln.line_no)
            .select_from(t.orders.outerjoin(t.order_lines, ln.order_id == o.id))
            .where(o.id == sa.bindparam("order_id"))
        )

    def load(self, conn: sa.Connection, order_id: int, *, lock: bool = False) -> Order | None:
        """The order, or ``None``; ``lock`` holds its row until the transaction ends."""
        stmt = self._select_order_locked if lock else self._select_order
        row = conn.execute(stmt, {"order_id": order_id}).first()
        return None if row is None else _order_from_row(row)

    def visible(
        self, conn: sa.Connection, principal: Principal, order_id: int, *, lock: bool = False
    ) -> Order:
        """The order if ``principal`` may see it; 404 ``order_not_found`` otherwise."""
        order = self.load(conn, order_id, lock=lock)
        if order is None or not principal.can_see(order.shop, order.customer):
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        return order

    def load_lines(self, conn: sa.Connection, order_id: int) -> list[Line]:
        return [
            Line(
                id=r.id,
                line_no=r.line_no,
                sku=r.sku,
                name=r.name,
                quantity=r.quantity,
                unit_price=r.unit_price,
                subtotal=r.subtotal,
                discount=r.discount,
                shipping=r.shipping,
                fees=r.fees,
                total=r.total,
                weight_grams=r.weight_grams,
                attrs=r.attrs or {},
            )
            for r in conn.execute(self._select_lines, {"order_id": order_id})
        ]

    def load_adjustments(self, conn: sa.Connection, order_id: int) -> list[Adjustment]:
        """The order's adjustments in applied order, by line id (``line_id``, ``allocation``)."""
        rows = conn.execute(self._select_adjustments, {"order_id": order_id}).all()
        stored = rows[0][0] if rows else None
        if isinstance(stored, str | bytes):
            stored = msgspec.json.decode(stored)
        if not stored:
            return []
        ids = {line_no: line_id for _, line_id, line_no in rows if line_id is not None}
        return [
            Adjustment(
                source=a["source"],
                reason=a["reason"],
                amount=a["amount"],
                phase=a["phase"],
                line_no=a["line_no"],
                line_id=None if a["line_no"] is None else ids[a["line_no"]],
                code=a["code"],
                funded_by=a["funded_by"],
                allocation={ids[int(no)]: share for no, share in (a["allocation"] or {}).items()},
            )
            for a in stored
        ]


def stored_adjustment(adj: Adjustment) -> dict[str, Any]:
    """An applied adjustment as the order row keeps it (``allocation`` by line number)."""
    return {
        "source": adj.source,
        "reason": adj.reason,
        "amount": adj.amount,
        "phase": adj.phase,
        "line_no": adj.line_no,
        "code": adj.code,
        "funded_by": adj.funded_by,
        "allocation": adj.allocation or None,
    }


def _order_from_row(row: Any) -> Order:
    return Order(
        id=row.id,
        shop=row.shop,
        customer=row.customer,
        status=row.status,
        currency=row.currency,
        subtotal=row.subtotal,
        discount=row.discount,
        shipping=row.shipping,
        fees=row.fees,
        total=row.total,
        paid=row.paid,
        refunded=row.refunded,
        address=None if row.address is None else msgspec.convert(row.address, type=Address),
        coupons=row.coupons or [],
        points=row.points,
        parent_id=row.parent_id,
        hold=row.hold,
        extra=row.extra or {},
        placed_at=row.placed_at,
        updated_at=row.updated_at,
    )
