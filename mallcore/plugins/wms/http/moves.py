"""Units moved by warehouse staff: ``POST /wms/inbound``, ``/wms/stocktakes``, ``/wms/transfers``.

Warehouse staff of the SKU's shop (platform warehouse staff and admins: any
SKU) move stock; each move is booked in the ledger as movements and runs
once per ``Idempotency-Key`` (a scanner that retries books the units once).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa
from litestar import Controller, Response, post
from litestar.params import JSONBody

from mallcore.kernel import Caller, Conflict, InvalidInput, OutOfStock, Principal, utcnow
from mallcore.kernel.http import Idempotent, Reply, roles

from .. import tables as t
from ..schemas import (
    CountResult,
    InboundIn,
    InboundOut,
    StocktakeIn,
    StocktakeOut,
    TransferIn,
    TransferOut,
)
from ..stock import movement
from .deps import Wms
from .stock import may_move, stock_row

if TYPE_CHECKING:
    from .. import WmsCenter


class StockMoveController(Controller):
    path = "/"
    guards = [roles("warehouse")]
    tags = ["wms"]

    @post("/inbound", status_code=201, sync_to_thread=True)
    def inbound(
        self, data: JSONBody[InboundIn], principal: Caller, wms: Wms, idempotent: Idempotent
    ) -> Response[InboundOut]:
        """Receive stock into a warehouse (warehouse staff for their shop's SKUs): each line adds units on
        hand, booked as a movement. Honours `Idempotency-Key`.
        """
        return idempotent(data, lambda reply: inbound(wms, principal, data, reply))

    @post("/stocktakes", status_code=201, sync_to_thread=True)
    def stocktake(
        self, data: JSONBody[StocktakeIn], principal: Caller, wms: Wms, idempotent: Idempotent
    ) -> Response[StocktakeOut]:
        """Record counted units per SKU; each difference becomes a stocktake movement."""
        return idempotent(data, lambda reply: stocktake(wms, principal, data, reply))

    @post("/transfers", status_code=201, sync_to_thread=True)
    def transfer(
        self, data: JSONBody[TransferIn], principal: Caller, wms: Wms, idempotent: Idempotent
    ) -> Response[TransferOut]:
        """Move available units between warehouses (booked out and in at once)."""
        return idempotent(data, lambda reply: transfer(wms, principal, data, reply))


def inbound(wms: WmsCenter, principal: Principal, data: InboundIn, reply: Reply) -> None:
    """The work of ``POST /wms/inbound`` (also the console's form); ``reply`` gets the answer."""
    with wms.kernel.db.transaction() as conn:
        if not wms.warehouses.get(conn, data.warehouse).active:
            raise Conflict(f"warehouse {data.warehouse} is not active", code="warehouse_inactive")
        may_move(conn, principal, [data.sku])
        wms.stock.add(conn, [{"sku": data.sku, "warehouse": data.warehouse, data.bucket: data.quantity}])
        row = movement(
            data.sku,
            data.warehouse,
            "inbound",
            principal.subject,
            data.reason,
            utcnow(),
            deltas={data.bucket: data.quantity},
        )
        movement_id = conn.execute(
            t.movements.insert().values(**row).returning(t.movements.c.id)
        ).scalar_one()
        stock = stock_row(conn, data.sku, data.warehouse)
        reply(conn, InboundOut(movement_id=movement_id, stock=stock), 201)


def stocktake(wms: WmsCenter, principal: Principal, data: StocktakeIn, reply: Reply) -> None:
    """The work of ``POST /wms/stocktakes`` (also the console's form); ``reply`` gets the answer."""
    skus = [c.sku for c in data.counts]
    if len(set(skus)) != len(skus):
        raise InvalidInput("a SKU is counted twice", code="sku_repeated")
    db = wms.kernel.db

    s = t.stock.c
    with db.transaction() as conn:
        wms.warehouses.get(conn, data.warehouse)
        may_move(conn, principal, skus)
        current = {
            row.sku: row
            for row in conn.execute(
                db.lock_clause(
                    sa.select(s.sku, s.on_hand, s.reserved)
                    .where(s.warehouse == data.warehouse, s.sku.in_(skus))
                    .order_by(s.sku)
                )
            )
        }
        lines = []
        for count in data.counts:
            row = current.get(count.sku)
            before, reserved = (row.on_hand, row.reserved) if row is not None else (0, 0)
            lines.append(
                CountResult(
                    sku=count.sku,
                    previous=before,
                    counted=count.counted,
                    difference=count.counted - before,
                    reserved=reserved,
                )
            )
        short = [x for x in lines if x.counted < x.reserved]
        if short:
            raise Conflict(
                "counted fewer units than orders hold: "
                + ", ".join(f"{x.sku} (counted {x.counted}, held {x.reserved})" for x in short)
                + "; cancel or re-route those orders first",
                code="stocktake_below_reserved",
                extra={"skus": [x.sku for x in short]},
            )
        ref = f"stocktake:{uuid.uuid4().hex[:12]}"
        now = utcnow()
        changed = [x for x in lines if x.difference]
        if changed:
            wms.stock.add(
                conn,
                [{"sku": x.sku, "warehouse": data.warehouse, "on_hand": x.difference} for x in changed],
            )
        conn.execute(
            t.movements.insert(),
            [
                movement(
                    x.sku,
                    data.warehouse,
                    "stocktake",
                    principal.subject,
                    f"{data.reason}: counted {x.counted}, was {x.previous}",
                    now,
                    on_hand=x.difference,
                    ref=ref,
                )
                for x in lines
            ],
        )
        difference = sum(x.difference for x in lines)
        reply(
            conn,
            StocktakeOut(ref=ref, warehouse=data.warehouse, lines=lines, difference=difference),
            201,
        )


def transfer(wms: WmsCenter, principal: Principal, data: TransferIn, reply: Reply) -> None:
    """The work of ``POST /wms/transfers`` (also the console's form); ``reply`` gets the answer."""
    if data.from_warehouse == data.to_warehouse:
        raise InvalidInput("source and destination are the same warehouse", code="same_warehouse")
    db, stock = wms.kernel.db, wms.stock

    s = t.stock.c
    with db.transaction() as conn:
        wms.warehouses.get(conn, data.from_warehouse)
        if not wms.warehouses.get(conn, data.to_warehouse).active:
            raise Conflict(f"warehouse {data.to_warehouse} is not active", code="warehouse_inactive")
        may_move(conn, principal, [data.sku])
        # Lock both rows in (sku, warehouse) order, as every other writer does (no deadlock).
        conn.execute(
            db.lock_clause(
                sa.select(s.sku)
                .where(s.sku == data.sku, s.warehouse.in_((data.from_warehouse, data.to_warehouse)))
                .order_by(s.warehouse)
            )
        ).all()
        if not stock.take(conn, data.sku, data.from_warehouse, data.quantity):
            left = stock.available(conn, [data.sku]).get((data.sku, data.from_warehouse), 0)
            raise OutOfStock(
                f"only {left} of {data.sku} available at {data.from_warehouse}",
                extra={"skus": [data.sku], "available": left},
            )
        stock.add(conn, [{"sku": data.sku, "warehouse": data.to_warehouse, "on_hand": data.quantity}])
        ref = f"transfer:{uuid.uuid4().hex[:12]}"
        now = utcnow()
        conn.execute(
            t.movements.insert(),
            [
                movement(
                    data.sku,
                    data.from_warehouse,
                    "transfer_out",
                    principal.subject,
                    f"{data.reason} to {data.to_warehouse}",
                    now,
                    on_hand=-data.quantity,
                    ref=ref,
                ),
                movement(
                    data.sku,
                    data.to_warehouse,
                    "transfer_in",
                    principal.subject,
                    f"{data.reason} from {data.from_warehouse}",
                    now,
                    on_hand=data.quantity,
                    ref=ref,
                ),
            ],
        )
        view = TransferOut(
            ref=ref,
            sku=data.sku,
            quantity=data.quantity,
            source=stock_row(conn, data.sku, data.from_warehouse),
            destination=stock_row(conn, data.sku, data.to_warehouse),
        )
        reply(conn, view, 201)
