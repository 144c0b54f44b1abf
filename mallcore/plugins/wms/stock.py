"""The stock ledger: every change of stock is a conditional update plus its movement rows.

Reservations (hold, release, cut before shipment), dispatch (ship from the
chosen warehouses) and on-hand changes (inbound, stocktakes, transfers, the
return restock of :mod:`.restock`) all come through :class:`StockService`,
so each stock column stays the sum of its movements. Which warehouses exist
is :mod:`.warehouses`; which of them ship an order is :mod:`.planning`.

All statements are built once per kernel. Hot paths stay at a fixed number
of statements whatever the number of lines:

- reserve (placement): at most one availability read (none with a single
  active warehouse), one ``executemany`` conditional UPDATE for all lines,
  one ``executemany`` INSERT of reservations, one of movements;
- release (cancel): one UPDATE ... RETURNING of the live reservations, one
  ``executemany`` UPDATE of stock, one INSERT of movements;
- dispatch: two reads, one ``executemany`` conditional UPDATE, one INSERT,
  one or two UPDATEs of reservations (plus TMS freight quotes for splits).

Overselling is impossible because stock only ever leaves through an UPDATE
whose WHERE clause re-checks ``on_hand - reserved`` on the row it changes
(PostgreSQL re-evaluates it on the latest row version after waiting for a
concurrent writer; SQLite serialises writers), and rows are always touched in
(sku, warehouse) order, so two orders never deadlock each other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mallcore.kernel import (
    Conflict,
    InvalidInput,
    Kernel,
    Line,
    Order,
    OrderContext,
    OutOfStock,
    fast,
    utcnow,
)
from mallcore.kernel.aftersale import AfterSaleCase, Parcel

from . import tables as t
from .planning import Plan, Site, Units, plans, shortfall
from .schemas import WmsSettings
from .warehouses import Warehouses

# The most units a stock column holds (32-bit integers on PostgreSQL).
MAX_UNITS = 2**31 - 1

MOVEMENT_KEYS = (
    "sku",
    "warehouse",
    "kind",
    "on_hand",
    "reserved",
    "b_grade",
    "quarantine",
    "order_id",
    "line_id",
    "ref",
    "actor",
    "reason",
    "at",
)
RESERVATION_KEYS = (
    "order_id",
    "line_id",
    "sku",
    "warehouse",
    "quantity",
    "status",
    "expires_at",
    "ref",
    "created_at",
    "updated_at",
)


# A reservation to write: order id, line id, sku, warehouse, units, expires at, actor, reason.
Hold = tuple[int | None, int | None, str, str, int, datetime | None, str, str]


def _int(name: str) -> Any:
    return sa.bindparam(name, type_=sa.Integer)


class StockService:
    """The ledger's writes: hold, release, ship, add and take units, each with its movements."""

    def __init__(self, kernel: Kernel, settings: WmsSettings, warehouses: Warehouses) -> None:
        self.kernel = kernel
        self.settings = settings
        self.warehouses = warehouses
        s, r = t.stock.c, t.reservations.c
        sku: Any = sa.bindparam("k_sku")
        wh: Any = sa.bindparam("k_wh")
        self._available = sa.select(s.sku, s.warehouse, (s.on_hand - s.reserved).label("available")).where(
            s.sku.in_(sa.bindparam("skus", expanding=True)), s.on_hand > s.reserved
        )
        # Placement: one statement for every line (executemany); the WHERE is the guard.
        self._reserve = (
            t.stock.update()
            .where(s.sku == sku, s.warehouse == wh, s.on_hand - s.reserved >= _int("k_q"))
            .values(reserved=s.reserved + _int("k_q"))
        )
        self._unreserve = (
            t.stock.update().where(s.sku == sku, s.warehouse == wh).values(reserved=s.reserved - _int("k_q"))
        )
        # Dispatch: ship ``k_ship`` units and drop the order's ``k_held`` reservation in one go;
        # units beyond what the order held must be available.
        self._ship = (
            t.stock.update()
            .where(
                s.sku == sku,
                s.warehouse == wh,
                s.on_hand - s.reserved >= _int("k_ship") - _int("k_held"),
            )
            .values(on_hand=s.on_hand - _int("k_ship"), reserved=s.reserved - _int("k_held"))
        )
        self._adjust = (
            t.stock.update()
            .where(s.sku == sku, s.warehouse == wh)
            .values(
                on_hand=s.on_hand + _int("d_on_hand"),
                b_grade=s.b_grade + _int("d_b_grade"),
                quarantine=s.quarantine + _int("d_quarantine"),
            )
        )
        self._take = (
            t.stock.update()
            .where(s.sku == sku, s.warehouse == wh, s.on_hand - s.reserved >= _int("k_q"))
            .values(on_hand=s.on_hand - _int("k_q"))
        )
        self._release_order = (
            t.reservations.update()
            .where(r.order_id == sa.bindparam("k_order"), r.status == "live")
            .values(status="released", updated_at=sa.bindparam("k_now"))
            .returning(r.sku, r.warehouse, r.quantity, r.line_id)
        )
        self._order_reservations = sa.select(
            r.id, r.line_id, r.sku, r.warehouse, r.quantity, r.status, r.ref
        ).where(r.order_id == sa.bindparam("k_order"))
        self._live_count = sa.select(sa.func.count()).where(
            r.order_id == sa.bindparam("k_order"), r.status == "live"
        )
        self._consume = (
            t.reservations.update()
            .where(r.order_id == sa.bindparam("k_order"), r.status == "live")
            .values(status="consumed", updated_at=sa.bindparam("k_now"))
        )
        self._release_pair = (
            t.reservations.update()
            .where(r.order_id == sa.bindparam("k_order"), r.sku == sku, r.warehouse == wh, r.status == "live")
            .values(status="released", updated_at=sa.bindparam("k_now"))
        )
        self._upsert: Any = None
        # The placement path's three statements, run on the driver (mallcore.kernel.fast).
        db = self.kernel.db
        self._fast_reserve = fast.statement(self._reserve, db)
        self._fast_reservations = fast.insert(t.reservations, RESERVATION_KEYS, db)
        self._fast_movements = fast.insert(t.movements, MOVEMENT_KEYS, db)

    # -- reading -------------------------------------------------------------------

    def available(self, conn: sa.Connection, skus: Iterable[str]) -> dict[tuple[str, str], int]:
        return {
            (row.sku, row.warehouse): row.available
            for row in conn.execute(self._available, {"skus": list(skus)})
        }

    def out_of_stock(self, need: Mapping[str, int], avail: Units, sites: Sequence[Site]) -> OutOfStock:
        active = {s.code for s in sites}
        usable = {k: q for k, q in avail.items() if k[1] in active}
        short = shortfall(need, usable)
        if short:
            detail = "out of stock: " + ", ".join(
                f"{sku} (wanted {need[sku]}, available {left})" for sku, left in sorted(short.items())
            )
            return OutOfStock(detail, extra={"skus": sorted(short)})
        most = self.settings.max_split
        return OutOfStock(
            f"the order cannot be filled from at most {most} warehouses", extra={"skus": sorted(need)}
        )

    # -- reserve ---------------------------------------------------------------------

    def reserve(
        self,
        conn: sa.Connection,
        order: Order,
        lines: Sequence[Line],
        *,
        actor: str,
        reason: str,
        expires_at: datetime | None,
        avail: Units | None = None,
    ) -> Plan:
        """Hold stock for ``lines`` in the warehouse(s) the planner picks, or raise OutOfStock."""
        need = {line.sku: line.quantity for line in lines if line.quantity > 0}
        if not need:
            raise Conflict("nothing to reserve", code="nothing_to_reserve")
        region = order.address.region if order.address is not None else None
        sites = self.warehouses.ranked(conn, region)
        if not sites:
            raise OutOfStock("no active warehouse", extra={"skus": sorted(need)})
        # SQLite serialises writers, so what we read is what the UPDATE sees: one try.
        # PostgreSQL may lose a race between the read and the UPDATE: re-read and re-plan.
        attempts = 1 if self.kernel.db.is_sqlite else 3
        # One warehouse: the conditional UPDATE is the whole check, no read needed, and
        # losing it is final (PostgreSQL re-checks the row's latest version after waiting).
        blind = avail is None and len(sites) == 1
        line_of = {line.sku: line.id for line in lines}
        for attempt in range(attempts):
            if blind:
                only = sites[0].code
                plan = Plan(
                    take={(sku, only): q for sku, q in need.items()}, warehouses=(only,), rule="single"
                )
            else:
                if avail is None:
                    avail = self.available(conn, need)
                candidates = plans(need, avail, sites, region, max_warehouses=self.settings.max_split)
                if not candidates:
                    raise self.out_of_stock(need, avail, sites)
                plan = candidates[0]
            rows = plan.rows()
            params = [{"k_sku": sku, "k_wh": wh, "k_q": q} for sku, wh, q in rows]
            if blind or attempt == attempts - 1:
                # No retry after this one: write the rows first so that the stock rows the
                # UPDATE locks stay locked for as little of the transaction as possible. A
                # miss raises, and the stage rolls everything back, partial holds included.
                self._record(conn, order, line_of, rows, actor, reason, expires_at)
                if self._fast_reserve.execute(conn, params).rowcount != len(rows):
                    raise self.out_of_stock(need, self.available(conn, need), sites)
                return plan
            # A multi-row miss may have held some rows: undo it with a savepoint, then re-plan.
            savepoint = conn.begin_nested() if len(rows) > 1 else None
            if self._fast_reserve.execute(conn, params).rowcount == len(rows):
                if savepoint is not None:
                    savepoint.commit()
                self._record(conn, order, line_of, rows, actor, reason, expires_at)
                return plan
            if savepoint is not None:
                savepoint.rollback()
            avail = None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _record(
        self,
        conn: sa.Connection,
        order: Order,
        line_of: Mapping[str, int | None],
        rows: Sequence[tuple[str, str, int]],
        actor: str,
        reason: str,
        expires_at: datetime | None,
    ) -> None:
        """The reservation rows and their movements (one statement each)."""
        self.record_holds(
            conn, [(order.id, line_of[sku], sku, wh, q, expires_at, actor, reason) for sku, wh, q in rows]
        )

    def record_holds(self, conn: sa.Connection, holds: Sequence[Hold]) -> None:
        """Reservation rows and their movements for ``holds`` of any number of orders:
        (order id, line id, sku, warehouse, units, expires at, actor, reason); one statement each."""
        now = utcnow()
        self._fast_reservations.execute(
            conn,
            [
                {
                    "order_id": order_id,
                    "line_id": line_id,
                    "sku": sku,
                    "warehouse": wh,
                    "quantity": q,
                    "status": "live",
                    "expires_at": expires_at,
                    "ref": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for order_id, line_id, sku, wh, q, expires_at, _, _ in holds
            ],
        )
        self._fast_movements.execute(
            conn,
            [
                movement(
                    sku, wh, "reserve", actor, reason, now, reserved=q, order_id=order_id, line_id=line_id
                )
                for order_id, line_id, sku, wh, q, _, actor, reason in holds
            ],
        )

    def has_live(self, conn: sa.Connection, order_id: int) -> bool:
        return bool(conn.execute(self._live_count, {"k_order": order_id}).scalar())

    # -- release -----------------------------------------------------------------------

    def release_order(self, conn: sa.Connection, order_id: int, *, actor: str, reason: str) -> int:
        """Release every live reservation of the order; returns the units released.

        The status change is conditional (``status = 'live'``), so running it
        twice releases nothing the second time.
        """
        now = utcnow()
        released = conn.execute(self._release_order, {"k_order": order_id, "k_now": now}).all()
        if not released:
            return 0
        per_pair: dict[tuple[str, str], int] = defaultdict(int)
        per_line: dict[tuple[str, str, int], int] = defaultdict(int)
        for row in released:
            per_pair[(row.sku, row.warehouse)] += row.quantity
            per_line[(row.sku, row.warehouse, row.line_id)] += row.quantity
        conn.execute(
            self._unreserve,
            [{"k_sku": sku, "k_wh": wh, "k_q": q} for (sku, wh), q in sorted(per_pair.items()) if q],
        )
        conn.execute(
            t.movements.insert(),
            [
                movement(sku, wh, "release", actor, reason, now, reserved=-q, order_id=order_id, line_id=line)
                for (sku, wh, line), q in sorted(per_line.items())
            ],
        )
        return sum(per_pair.values())

    def release_lines(self, ctx: OrderContext, case: AfterSaleCase) -> int:
        """Units of ``case.lines`` cut from an order before shipment: release their holds.

        A reservation row with ``ref = after_sale:<id>`` records each cut line
        (so dispatch ships only what is left, and a repeated call does nothing).
        """
        conn, order_id = ctx.conn, ctx.order.id
        assert order_id is not None
        ref = f"after_sale:{case.id}"
        rows = conn.execute(self._order_reservations, {"k_order": order_id}).all()
        done = {r.line_id for r in rows if r.ref == ref}
        # Never cut more units of a line than it has.
        room = {line.id: line.quantity for line in ctx.lines}
        for r in rows:
            if r.ref is not None and r.line_id in room:
                room[r.line_id] -= r.quantity
        live: dict[int, list[Any]] = defaultdict(list)
        for r in rows:
            if r.status == "live":
                live[r.line_id].append(r)
        now = utcnow()
        updates, records, moves = [], [], []
        per_pair: dict[tuple[str, str], int] = defaultdict(int)
        total = 0
        for case_line in case.lines:
            cutting = min(case_line.quantity, room.get(case_line.line_id, 0))
            if case_line.line_id in done or cutting <= 0:
                continue
            left = cutting
            for r in sorted(live[case_line.line_id], key=lambda r: (r.warehouse, r.id)):
                if left == 0:
                    break
                take = min(left, r.quantity)
                left -= take
                rest = r.quantity - take
                updates.append(
                    {"k_id": r.id, "k_q": rest, "k_status": "live" if rest else "released", "k_now": now}
                )
                per_pair[(r.sku, r.warehouse)] += take
                moves.append(
                    movement(
                        r.sku,
                        r.warehouse,
                        "release",
                        ctx.principal.subject,
                        "refunded before shipment",
                        now,
                        reserved=-take,
                        order_id=order_id,
                        line_id=r.line_id,
                        ref=ref,
                    )
                )
                total += take
            records.append(
                {
                    "order_id": order_id,
                    "line_id": case_line.line_id,
                    "sku": case_line.sku,
                    "warehouse": "",
                    "quantity": cutting,
                    "status": "released",
                    "expires_at": None,
                    "ref": ref,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        r_ = t.reservations.c
        if updates:
            conn.execute(
                t.reservations.update()
                .where(r_.id == sa.bindparam("k_id"))
                .values(
                    quantity=_int("k_q"), status=sa.bindparam("k_status"), updated_at=sa.bindparam("k_now")
                ),
                updates,
            )
            conn.execute(
                self._unreserve,
                [{"k_sku": sku, "k_wh": wh, "k_q": q} for (sku, wh), q in sorted(per_pair.items())],
            )
            conn.execute(t.movements.insert(), moves)
        if records:
            conn.execute(t.reservations.insert(), records)
        return total

    # -- dispatch ------------------------------------------------------------------------

    def dispatch(self, ctx: OrderContext) -> tuple[Plan, list[Parcel], int]:
        """Choose the warehouse(s), ship from them; returns the plan, its parcels, plans compared."""
        conn, order = ctx.conn, ctx.order
        assert order.id is not None
        settings = self.settings
        held: dict[tuple[str, str], int] = defaultdict(int)
        cut: dict[int, int] = defaultdict(int)
        for r in conn.execute(self._order_reservations, {"k_order": order.id}):
            if r.status == "live":
                held[(r.sku, r.warehouse)] += r.quantity
            elif r.ref is not None and r.ref.startswith("after_sale:"):
                cut[r.line_id] += r.quantity
        need: dict[str, int] = {}
        line_of: dict[str, Line] = {}
        for line in ctx.lines:
            left = line.quantity - cut.get(line.id or 0, 0)
            if left > 0:
                need[line.sku] = left
                line_of[line.sku] = line
        if not need:
            raise Conflict(f"order {order.id} has nothing left to ship", code="nothing_to_dispatch")
        region = order.address.region if order.address is not None else None
        sites = self.warehouses.ranked(conn, region)
        active = {s.code for s in sites}
        avail = self.available(conn, need)
        effective = dict(avail)
        for key, q in held.items():
            if key[1] in active:
                effective[key] = effective.get(key, 0) + q
        candidates = plans(need, effective, sites, region, held, max_warehouses=settings.max_split)
        if not candidates:
            raise self.out_of_stock(need, effective, sites)
        by_code = {s.code: s for s in sites}
        chosen = candidates[0]
        compared = len(candidates)
        if chosen.rule == "split":
            priced = []
            for i, plan in enumerate(candidates[: settings.freight_plans]):
                parcels = self.parcels(plan, line_of, by_code)
                freight = self.kernel.hook.freight_quote(
                    kernel=self.kernel, conn=conn, order=order, lines=ctx.lines, parcels=parcels
                )
                if freight is not None:
                    plan.freight = int(freight)
                    moved = sum(q - min(q, held.get(k, 0)) for k, q in plan.take.items())
                    priced.append((plan.freight, moved, i, plan, parcels))
            if priced:
                compared = len(priced)
                priced.sort(key=lambda p: p[:3])
                chosen, parcels = priced[0][3], priced[0][4]  # keep what the quote filled in
                self._ship_plan(ctx, chosen, held, line_of)
                return chosen, parcels, compared
        parcels = self.parcels(chosen, line_of, by_code)
        self._ship_plan(ctx, chosen, held, line_of)
        return chosen, parcels, compared

    def parcels(self, plan: Plan, line_of: Mapping[str, Line], by_code: Mapping[str, Site]) -> list[Parcel]:
        out = []
        for code in plan.warehouses:
            lines = [(line_of[sku], q) for (sku, wh), q in sorted(plan.take.items()) if wh == code and q > 0]
            out.append(
                Parcel(
                    warehouse=code,
                    region=by_code[code].region if code in by_code else None,
                    lines=[(line.id or 0, q) for line, q in lines],
                    weight_grams=sum(line.weight_grams * q for line, q in lines),
                    freight=plan.freight if len(plan.warehouses) == 1 else None,
                )
            )
        return out

    def _ship_plan(
        self, ctx: OrderContext, plan: Plan, held: Mapping[tuple[str, str], int], line_of: Mapping[str, Line]
    ) -> None:
        conn, order_id, actor = ctx.conn, ctx.order.id, ctx.principal.subject
        pairs = sorted(set(plan.take) | {k for k, q in held.items() if q})
        shipping = [(sku, wh, plan.take.get((sku, wh), 0), held.get((sku, wh), 0)) for sku, wh in pairs]
        got = conn.execute(
            self._ship,
            [{"k_sku": sku, "k_wh": wh, "k_ship": ship, "k_held": hold} for sku, wh, ship, hold in shipping],
        ).rowcount
        if got != len(shipping):
            raise OutOfStock(
                "stock changed while the order was being dispatched; try again",
                extra={"skus": sorted({sku for sku, _ in plan.take})},
            )
        now = utcnow()
        moves = []
        for sku, wh, ship, hold in shipping:
            line = line_of.get(sku)
            line_id = line.id if line is not None else None
            if ship:
                moves.append(
                    movement(
                        sku,
                        wh,
                        "outbound",
                        actor,
                        "dispatched",
                        now,
                        on_hand=-ship,
                        reserved=-min(ship, hold),
                        order_id=order_id,
                        line_id=line_id,
                    )
                )
            if hold > ship:
                moves.append(
                    movement(
                        sku,
                        wh,
                        "release",
                        actor,
                        "shipped from another warehouse" if ship == 0 else "not needed at dispatch",
                        now,
                        reserved=-(hold - ship),
                        order_id=order_id,
                        line_id=line_id,
                    )
                )
        conn.execute(t.movements.insert(), moves)
        if held:
            unused = [k for k, q in held.items() if q and not plan.take.get(k)]
            if unused:
                conn.execute(
                    self._release_pair,
                    [
                        {"k_order": order_id, "k_sku": sku, "k_wh": wh, "k_now": now}
                        for sku, wh in sorted(unused)
                    ],
                )
            conn.execute(self._consume, {"k_order": order_id, "k_now": now})

    # -- inbound, transfers, stocktakes, return restock -----------------------------------

    def upsert(self) -> Any:
        """INSERT ... ON CONFLICT adding deltas to a stock row (made on first use)."""
        if self._upsert is None:
            if self.kernel.db.is_sqlite:
                from sqlalchemy.dialects.sqlite import insert
            else:
                from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
            s = t.stock.c
            stmt = insert(t.stock).values(
                sku=sa.bindparam("k_sku"),
                warehouse=sa.bindparam("k_wh"),
                on_hand=_int("d_on_hand"),
                reserved=0,
                b_grade=_int("d_b_grade"),
                quarantine=_int("d_quarantine"),
            )
            self._upsert = stmt.on_conflict_do_update(
                index_elements=[s.sku, s.warehouse],
                set_={
                    "on_hand": s.on_hand + stmt.excluded.on_hand,
                    "b_grade": s.b_grade + stmt.excluded.b_grade,
                    "quarantine": s.quarantine + stmt.excluded.quarantine,
                },
                # A row that would overflow is left alone (and counted missing by add());
                # written as a subtraction, the check itself cannot overflow.
                where=sa.and_(
                    s.on_hand <= MAX_UNITS - stmt.excluded.on_hand,
                    s.b_grade <= MAX_UNITS - stmt.excluded.b_grade,
                    s.quarantine <= MAX_UNITS - stmt.excluded.quarantine,
                ),
            ).returning(s.sku)
        return self._upsert

    def add(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add deltas: rows of ``sku``, ``warehouse``, ``on_hand``/``b_grade``/``quarantine``.

        Rows that only add are upserted (the stock row may not exist yet); a
        row that removes units updates the existing row (the database checks
        the proposed row of an upsert before it sees the conflict).
        """
        # One row per stock row: a statement may not touch the same row twice.
        merged: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in rows:
            for column in ("on_hand", "b_grade", "quarantine"):
                merged[(r["sku"], r["warehouse"])][column] += r.get(column, 0)
        params: list[dict[str, Any]] = [
            {
                "k_sku": sku,
                "k_wh": wh,
                "d_on_hand": d["on_hand"],
                "d_b_grade": d["b_grade"],
                "d_quarantine": d["quarantine"],
            }
            for (sku, wh), d in sorted(merged.items())
        ]
        adding = [p for p in params if min(p["d_on_hand"], p["d_b_grade"], p["d_quarantine"]) >= 0]
        removing = [p for p in params if min(p["d_on_hand"], p["d_b_grade"], p["d_quarantine"]) < 0]
        # RETURNING counts the rows written (an upsert's rowcount is not reliable).
        if adding and len(conn.execute(self.upsert(), adding).all()) != len(adding):
            raise InvalidInput(f"a stock level would exceed {MAX_UNITS} units", code="stock_out_of_range")
        if removing and conn.execute(self._adjust, removing).rowcount != len(removing):
            raise Conflict("stock to remove is not there", code="stock_missing")

    def take(self, conn: sa.Connection, sku: str, warehouse: str, quantity: int) -> bool:
        """Remove available units (transfers out); False if not that many are available."""
        return bool(conn.execute(self._take, {"k_sku": sku, "k_wh": warehouse, "k_q": quantity}).rowcount)


def movement(
    sku: str,
    warehouse: str,
    kind: str,
    actor: str,
    reason: str,
    at: datetime,
    *,
    on_hand: int = 0,
    reserved: int = 0,
    b_grade: int = 0,
    quarantine: int = 0,
    deltas: Mapping[str, int] | None = None,
    order_id: int | None = None,
    line_id: int | None = None,
    ref: str | None = None,
) -> dict[str, Any]:
    """A movement row; ``deltas`` adds to the named stock columns (``{"b_grade": 2}``)."""
    row: dict[str, Any] = {
        "sku": sku,
        "warehouse": warehouse,
        "kind": kind,
        "on_hand": on_hand,
        "reserved": reserved,
        "b_grade": b_grade,
        "quarantine": quarantine,
        "order_id": order_id,
        "line_id": line_id,
        "ref": ref,
        "actor": actor,
        "reason": reason[:300],
        "at": at,
    }
    for column, delta in (deltas or {}).items():
        row[column] += delta
    return row
