"""Returned goods back into stock: what an inspected after-sale case puts back, and where.

At ``inspected`` each passed inspection puts its units into a stock column
by disposition (:data:`BUCKETS`): restock to on hand, B-grade, quarantine;
anything else adds nothing. The case's inspections are read as its full
list so far, so hearing the case again puts nothing back twice, and a line
never gets back more units than left with it. Goods an exchange sent are
booked back against the replacement order that shipped them
(:meth:`Returns._exchanged`). Every unit put back is a ``return_restock``
movement in the ledger (:mod:`.stock`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from mallcore.kernel import OrderContext, utcnow
from mallcore.kernel import tables as kt
from mallcore.kernel.aftersale import AfterSaleCase, ReturnAddress

from . import tables as t
from .schemas import WmsSettings
from .stock import StockService, movement
from .warehouses import Warehouse, Warehouses

# Where a passed inspection's units go, by disposition: the stock column.
BUCKETS = {"restock": "on_hand", "b_grade": "b_grade", "quarantine": "quarantine"}


class _PutBack:
    """What one restock writes: stock deltas, their ``return_restock`` movements, and the report."""

    def __init__(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        self.actor = ctx.principal.subject
        self.case_id = case.id
        self.now = utcnow()
        self.adds: list[dict[str, Any]] = []
        self.moves: list[dict[str, Any]] = []
        self.done: list[dict[str, Any]] = []

    def __call__(
        self,
        sku: str,
        warehouse: str,
        bucket: str,
        quantity: int,
        order_id: int | None,
        line_id: int,
        *,
        replacement: bool = False,
    ) -> None:
        reason = f"after-sale case {self.case_id}: {bucket.replace('_', ' ')}"
        if replacement:
            reason += f" (received in exchange, replacement order {order_id})"
        self.adds.append({"sku": sku, "warehouse": warehouse, bucket: quantity})
        self.moves.append(
            movement(
                sku,
                warehouse,
                "return_restock",
                self.actor,
                reason,
                self.now,
                order_id=order_id,
                line_id=line_id,
                ref=f"after_sale:{self.case_id}",
                deltas={bucket: quantity},
            )
        )
        done = {"sku": sku, "warehouse": warehouse, "bucket": bucket, "quantity": quantity}
        self.done.append({**done, "order_id": order_id} if replacement else done)


class Returns:
    def __init__(self, stock: StockService, warehouses: Warehouses, settings: WmsSettings) -> None:
        self.stock = stock
        self.warehouses = warehouses
        self.settings = settings
        m = t.movements.c
        self._shipped_and_back = sa.select(
            m.kind, m.warehouse, m.line_id, m.ref, m.on_hand, m.b_grade, m.quarantine
        ).where(m.order_id == sa.bindparam("k_order"), m.kind.in_(("outbound", "return_restock")))

    def fill_address(self, conn: sa.Connection, case: AfterSaleCase) -> None:
        """Tell the after-sale center where the case's goods go back (``case.return_address``).

        The warehouse asked for (the after-sale center's setting), else
        ``returns_warehouse``, else the one the case's units left from, else the
        first active warehouse with an address (by priority, then code); each
        only if it has an address. None has one: left empty.
        """
        asked = case.return_address
        if asked is None or asked.filled:
            return
        w, m = t.warehouses.c, t.movements.c
        has_address = sa.and_(w.street.is_not(None), w.street != "")
        shipped_from = sa.select(m.warehouse).where(
            m.order_id == case.order_id,
            m.kind == "outbound",
            m.line_id.in_([x.line_id for x in case.lines]),
        )
        choices = [
            w.code == (asked.warehouse or self.settings.returns_warehouse),
            w.code.in_(shipped_from),
            w.active.is_(True),
        ]
        if not (asked.warehouse or self.settings.returns_warehouse):
            choices.pop(0)
        for choice in choices:
            chosen = conn.execute(
                sa.select(t.warehouses).where(choice, has_address).order_by(w.priority, w.code).limit(1)
            ).first()
            if chosen is not None:
                case.return_address = ReturnAddress(
                    warehouse=chosen.code,
                    contact=chosen.contact or "",
                    phone=chosen.phone or "",
                    province=chosen.province or "",
                    city=chosen.city or "",
                    district=chosen.district or "",
                    street=chosen.street or "",
                )
                return

    def restock(self, ctx: OrderContext, case: AfterSaleCase) -> list[dict[str, Any]]:
        """Put a case's passed, inspected units back by disposition; returns what was done.

        ``case.inspections`` is read as the case's full list so far: what was
        already put back for this case (movements with its ref) is not put
        back again, and a line never gets back more units than left with it.
        """
        wanted: dict[tuple[int, str], int] = defaultdict(int)
        sku_of: dict[int, str] = {}
        for ins in case.inspections:
            bucket = BUCKETS.get(ins.disposition)
            if ins.passed and bucket and ins.quantity > 0:
                wanted[(ins.line_id, bucket)] += ins.quantity
                sku_of[ins.line_id] = ins.sku
        if not wanted:
            return []
        conn, order = ctx.conn, ctx.order
        ref = f"after_sale:{case.id}"
        # Goods an exchange sent (the refund center marks such lines in case.data["from_exchange"];
        # the case line carries the replacement's SKU) left on the replacement order, not on
        # this one: they are booked back against the replacement's shipment (see _exchanged).
        exchanged = _from_exchange(case) & set(sku_of)
        shipped: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        done_case: dict[tuple[int, str], int] = defaultdict(int)
        done_line: dict[int, int] = defaultdict(int)
        for m in conn.execute(self._shipped_and_back, {"k_order": order.id}):
            if m.kind == "outbound":
                shipped[m.line_id][m.warehouse] += -m.on_hand
            else:
                back = m.on_hand + m.b_grade + m.quarantine
                done_line[m.line_id] += back
                if m.ref == ref:
                    for bucket in BUCKETS.values():
                        done_case[(m.line_id, bucket)] += getattr(m, bucket)
        known = self.warehouses.known(conn)
        # Where the warehouse user says the goods were received, else where the parcel actually
        # landed (the refund center notes a wrong warehouse), else where it was sent.
        parcel_wh = next(
            (
                code
                for code in (case.data.get("received_warehouse"), case.data.get("wrong_warehouse"))
                if isinstance(code, str) and code in known
            ),
            None,
        )
        if parcel_wh is None and case.return_parcel is not None:
            parcel_wh = case.return_parcel.warehouse
        quantities = {line.id: line.quantity for line in ctx.lines}
        put_back = _PutBack(ctx, case)
        for (line_id, bucket), q in sorted(wanted.items()):
            if line_id in exchanged:
                continue
            cap = sum(shipped[line_id].values()) if shipped.get(line_id) else quantities.get(line_id, 0)
            todo = min(q - done_case[(line_id, bucket)], cap - done_line[line_id])
            if todo <= 0:
                continue
            target = self._return_target(
                ctx, parcel_wh, self.settings.returns_warehouse, shipped.get(line_id), known
            )
            if target is None:
                ctx.log.warning("wms.restock_no_warehouse", case_id=case.id, line_id=line_id)
                continue
            done_line[line_id] += todo
            put_back(sku_of[line_id], target, bucket, todo, order.id, line_id)
        if exchanged:
            per_sku: dict[tuple[str, str], int] = defaultdict(int)
            for (line_id, bucket), q in wanted.items():
                if line_id in exchanged:
                    per_sku[(sku_of[line_id], bucket)] += q
            self._exchanged(ctx, case, per_sku, parcel_wh, known, put_back)
        if put_back.adds:
            self.stock.add(conn, put_back.adds)
            conn.execute(t.movements.insert(), put_back.moves)
        return put_back.done

    def _exchanged(
        self,
        ctx: OrderContext,
        case: AfterSaleCase,
        wanted: Mapping[tuple[str, str], int],
        parcel_wh: str | None,
        known: Mapping[str, Warehouse],
        put_back: _PutBack,
    ) -> None:
        """Restock goods received in exchange and returned on the original order.

        Those units went out on a replacement order (a child of this order, ``parent_id``): each
        is put back against the replacement line that shipped it (the movement's ``order_id`` and
        ``line_id`` are the replacement's, its ``ref`` this case), never more than that line
        shipped less what came back on it, whichever case brought it back. The original order's
        own lines keep their own count, so a later return of their own units is not cut short.
        """
        conn, order = ctx.conn, ctx.order
        ref = f"after_sale:{case.id}"
        m, o = t.movements.c, kt.orders.c
        rows = conn.execute(
            sa.select(
                m.order_id, m.line_id, m.sku, m.warehouse, m.kind, m.ref, m.on_hand, m.b_grade, m.quarantine
            )
            .where(
                m.order_id.in_(sa.select(o.id).where(o.parent_id == order.id)),
                m.sku.in_(sorted({sku for sku, _ in wanted})),
                m.kind.in_(("outbound", "return_restock")),
            )
            .order_by(m.id)
        )
        shipped: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        sku_at: dict[tuple[int, int], str] = {}
        back: dict[tuple[int, int], int] = defaultdict(int)
        done_case: dict[tuple[str, str], int] = defaultdict(int)
        for r in rows:
            key = (r.order_id, r.line_id)
            sku_at[key] = r.sku
            if r.kind == "outbound":
                shipped[key][r.warehouse] += -r.on_hand
            else:
                back[key] += r.on_hand + r.b_grade + r.quarantine
                if r.ref == ref:
                    for bucket in BUCKETS.values():
                        done_case[(r.sku, bucket)] += getattr(r, bucket)
        configured = self.settings.returns_warehouse
        for (sku, bucket), q in sorted(wanted.items()):
            todo = q - done_case[(sku, bucket)]
            for key in sorted(k for k in shipped if sku_at[k] == sku):
                take = min(todo, sum(shipped[key].values()) - back[key])
                if take <= 0:
                    continue
                target = self._return_target(ctx, parcel_wh, configured, shipped[key], known)
                if target is None:
                    ctx.log.warning("wms.restock_no_warehouse", case_id=case.id, sku=sku)
                    break
                back[key] += take
                todo -= take
                replacement_id, line_id = key
                put_back(sku, target, bucket, take, replacement_id, line_id, replacement=True)
            if todo > 0:
                # More came back than the replacement orders shipped: the rest is not stock.
                ctx.log.warning("wms.restock_capped", case_id=case.id, sku=sku, units=todo)

    def _return_target(
        self,
        ctx: OrderContext,
        parcel_wh: str | None,
        configured: str | None,
        origin: Mapping[str, int] | None,
        known: Mapping[str, Warehouse],
    ) -> str | None:
        # Where the goods physically arrived, else the returns warehouse, else where they left from.
        for code in (parcel_wh, configured):
            if code and code in known:
                return code
        if origin:
            return max(sorted(origin), key=lambda c: origin[c])
        region = ctx.order.address.region if ctx.order.address is not None else None
        sites = self.warehouses.ranked(ctx.conn, region)
        return sites[0].code if sites else None


def _from_exchange(case: AfterSaleCase) -> set[int]:
    """Lines of ``case`` whose goods are what an exchange sent (``{"<line_id>": case id}``)."""
    marked = case.data.get("from_exchange")
    if not isinstance(marked, dict):
        return set()
    return {int(k) for k in marked if str(k).isdigit()}
