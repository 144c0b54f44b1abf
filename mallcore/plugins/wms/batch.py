"""Holding stock for a batch of combined placements (``order_reserve_batch``).

With one active warehouse (a flash sale's usual set-up) the whole batch
takes its units with **one conditional UPDATE per SKU** for the batch's
total, then one INSERT of reservations and one of movements for all its
orders. When a total does not fit, the stock rows are read (locked on
PostgreSQL) and the units go to the earliest arrivals, order by order, each
order whole or not at all; the others are refused with 409
``out_of_stock`` naming what was left for them, as if placed alone in that
order. With several active warehouses each order is planned as
:meth:`StockService.reserve` plans it, one after the other in a savepoint.

Overselling stays impossible: units only leave through the conditional
UPDATE, whose WHERE re-checks ``on_hand - reserved`` on the row it changes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from mallcore.kernel import Conflict, MallcoreError, PlacementIntent, utcnow

from . import tables as t
from .stock import Hold, StockService

REASON = "order placed"


class BatchReserve:
    def __init__(self, stock: StockService, *, hold_minutes: int) -> None:
        self.stock = stock
        self.hold = timedelta(minutes=hold_minutes)
        s = t.stock.c
        db = stock.kernel.db
        self._left = db.lock_clause(
            sa.select(s.sku, s.on_hand - s.reserved).where(
                s.sku.in_(sa.bindparam("skus", expanding=True)), s.warehouse == sa.bindparam("wh")
            )
        )

    def __call__(self, conn: sa.Connection, intents: Sequence[PlacementIntent]) -> None:
        stock = self.stock
        sites = stock.warehouses.ranked(conn, None)
        if len(sites) != 1:
            self._one_by_one(conn, intents)
            return
        wh = sites[0].code
        needs: dict[int, dict[str, int]] = {}
        for intent in intents:
            need = {line.sku: line.quantity for line in intent.lines if line.quantity > 0}
            if not need:
                intent.refuse(Conflict("nothing to reserve", code="nothing_to_reserve"))
            else:
                needs[intent.arrival] = need
        by_arrival = {i.arrival: i for i in intents}
        granted = list(needs)
        if not self._take(conn, wh, _totals(needs.values())):
            # Not enough for everyone: the earliest arrivals first, each order whole.
            left = {
                row[0]: row[1]
                for row in conn.execute(self._left, {"skus": sorted(_totals(needs.values())), "wh": wh})
            }
            granted = []
            for arrival, need in needs.items():
                if all(left.get(sku, 0) >= q for sku, q in need.items()):
                    for sku, q in need.items():
                        left[sku] -= q
                    granted.append(arrival)
                else:
                    avail = {(sku, wh): max(0, left.get(sku, 0)) for sku in need}
                    by_arrival[arrival].refuse(stock.out_of_stock(need, avail, sites))
            taken = _totals(needs[a] for a in granted)
            if taken and not self._take(conn, wh, taken):
                # The rows were read in this transaction (locked on PostgreSQL): cannot happen.
                raise RuntimeError("stock changed under a locked read")
        self._record(conn, wh, [(by_arrival[a], needs[a]) for a in granted])

    def _take(self, conn: sa.Connection, wh: str, totals: dict[str, int]) -> bool:
        """One conditional UPDATE per SKU (one executemany); all of them or none."""
        rows = [{"k_sku": sku, "k_wh": wh, "k_q": q} for sku, q in sorted(totals.items())]
        if not rows:
            return True
        savepoint = conn.begin_nested() if len(rows) > 1 else None
        if self.stock._fast_reserve.execute(conn, rows).rowcount == len(rows):
            if savepoint is not None:
                savepoint.commit()
            return True
        if savepoint is not None:
            savepoint.rollback()
        return False

    def _record(
        self, conn: sa.Connection, wh: str, granted: list[tuple[PlacementIntent, dict[str, int]]]
    ) -> None:
        """Reservations and movements of the whole batch, one statement each."""
        if not granted:
            return
        holds: list[Hold] = []
        for intent, need in granted:
            order = intent.order
            expires_at = (order.placed_at or utcnow()) + self.hold
            actor = intent.ctx.principal.subject
            line_of = {line.sku: line.id for line in intent.lines}
            holds.extend(
                (order.id, line_of[sku], sku, wh, q, expires_at, actor, REASON)
                for sku, q in sorted(need.items())
            )
        self.stock.record_holds(conn, holds)

    def _one_by_one(self, conn: sa.Connection, intents: Sequence[PlacementIntent]) -> None:
        """Several warehouses: each order planned on its own, in arrival order."""
        for intent in intents:
            order = intent.order
            savepoint = conn.begin_nested()
            try:
                self.stock.reserve(
                    conn,
                    order,
                    intent.lines,
                    actor=intent.ctx.principal.subject,
                    reason=REASON,
                    expires_at=(order.placed_at or utcnow()) + self.hold,
                )
            except MallcoreError as exc:
                savepoint.rollback()
                intent.refuse(exc)
            else:
                savepoint.commit()


def _totals(needs: Any) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for need in needs:
        for sku, q in need.items():
            totals[sku] += q
    return dict(totals)
