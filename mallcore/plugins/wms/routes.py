"""WMS routes under ``/wms``: warehouses, stock, movements, stocktakes, transfers, dispatch.

Who may do what:

- Warehouses are platform objects (any shop's goods may sit in any of
  them): only platform warehouse staff (role ``warehouse`` with no shop) and
  admins create or change them; every staff member may list them.
- Stock belongs to the shop that sells the SKU (the catalog says which):
  warehouse staff of a shop move (inbound, stocktake, transfer) and see only
  their shop's SKUs, merchants see them read-only, platform staff and admins
  see and move everything. Another shop's SKU answers 403 ``shop_forbidden``
  (SKUs are public in the catalog, so their existence is no secret).
- Orders: warehouse staff see and dispatch only their shop's orders; any
  other order answers 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import sqlalchemy as sa
from litestar import Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import (
    Caller,
    Conflict,
    Forbidden,
    InvalidInput,
    Kernel,
    NotFound,
    OrderStatus,
    OutOfStock,
    Principal,
    require,
    utcnow,
)
from mallcore.kernel import tables as kt
from mallcore.kernel.http import IdempotencyKey
from mallcore.kernel.http import idempotent as idempotent_call

from . import tables as t
from .schemas import (
    CountResult,
    DispatchOut,
    InboundIn,
    InboundOut,
    MovementView,
    OrderStock,
    ParcelLine,
    ParcelView,
    QueueEntry,
    ReservationView,
    StockSummary,
    StocktakeIn,
    StocktakeOut,
    StockView,
    TransferIn,
    TransferOut,
    WarehouseIn,
    WarehousePatch,
    WarehouseView,
)
from .stock import catalog_skus, movement

if TYPE_CHECKING:
    from mallcore.kernel import Claim

    from . import WmsCenter

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
# Ids beyond a 64-bit integer are refused (400), never sent to the database.
MAX_ID = 2**63 - 1
OrderId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
IdCursor = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]


def _platform_staff(principal: Principal) -> None:
    require(principal, "warehouse")
    if not principal.is_admin and principal.shop is not None:
        raise Forbidden(
            "warehouses are platform objects; only platform warehouse staff or admins change them",
            code="platform_only",
        )


def _shop_filter(principal: Principal) -> str | None:
    """The shop whose SKUs a reader is limited to (None: every shop)."""
    return None if principal.is_admin else principal.shop


def _stock_view(row: Any) -> StockView:
    return StockView(
        sku=row.sku,
        warehouse=row.warehouse,
        on_hand=row.on_hand,
        reserved=row.reserved,
        available=row.on_hand - row.reserved,
        b_grade=row.b_grade,
        quarantine=row.quarantine,
    )


def _movement_view(row: Any) -> MovementView:
    return MovementView(**{f: getattr(row, f) for f in MovementView.__struct_fields__})


def routes(kernel: Kernel, center: WmsCenter) -> list[Any]:
    db, stock = kernel.db, center.stock
    s, w, m, r = t.stock.c, t.warehouses.c, t.movements.c, t.reservations.c

    def sku_shops(conn: sa.Connection, skus: list[str]) -> dict[str, str]:
        return dict(
            conn.execute(
                sa.select(catalog_skus.c.code, catalog_skus.c.shop).where(catalog_skus.c.code.in_(skus))
            ).all()
        )

    def may_move(conn: sa.Connection, principal: Principal, skus: list[str]) -> None:
        """404 for unknown SKUs, 403 unless the principal's shop sells them (or platform staff)."""
        shops = sku_shops(conn, skus)
        unknown = [sku for sku in skus if sku not in shops]
        if unknown:
            raise NotFound(
                f"unknown SKU: {', '.join(unknown)}", code="sku_not_found", extra={"skus": unknown}
            )
        foreign = [sku for sku in skus if not principal.can_act_for_shop(shops[sku], "warehouse", "merchant")]
        if foreign:
            raise Forbidden(
                f"SKU of another shop: {', '.join(foreign)}", code="shop_forbidden", extra={"skus": foreign}
            )

    def stock_row(conn: sa.Connection, sku: str, warehouse: str) -> StockView:
        row = conn.execute(sa.select(t.stock).where(s.sku == sku, s.warehouse == warehouse)).first()
        if row is None:
            return StockView(
                sku=sku, warehouse=warehouse, on_hand=0, reserved=0, available=0, b_grade=0, quarantine=0
            )
        return _stock_view(row)

    def idempotent(
        principal: Principal, key: str | None, scope: str, data: msgspec.Struct, run: Callable[[Any], bytes]
    ) -> Response[Any]:
        """Run ``run(claim)`` (which records its 201 reply in its transaction) once per key."""
        return idempotent_call(kernel, principal, key, scope, data, lambda claim: (201, run(claim)))

    def record(conn: sa.Connection, claim: Claim | None, reply: msgspec.Struct) -> bytes:
        body = msgspec.json.encode(reply)
        if claim is not None:
            kernel.idempotency.record(conn, claim, 201, body)
        return body

    # -- warehouses ----------------------------------------------------------------

    def warehouse_view(conn: sa.Connection, code: str) -> WarehouseView:
        row = conn.execute(sa.select(t.warehouses).where(w.code == code)).first()
        if row is None:
            raise NotFound(f"warehouse {code} not found", code="warehouse_not_found")
        return WarehouseView(**{f: getattr(row, f) for f in WarehouseView.__struct_fields__})

    @post("/wms/warehouses", status_code=201, sync_to_thread=True, tags=["wms"])
    def create_warehouse(data: JSONBody[WarehouseIn], principal: Caller) -> WarehouseView:
        _platform_staff(principal)
        now = utcnow()
        try:
            with db.transaction() as conn:
                conn.execute(
                    t.warehouses.insert().values(
                        code=data.code,
                        name=data.name,
                        region=data.region,
                        active=data.active,
                        priority=data.priority,
                        created_at=now,
                        updated_at=now,
                    )
                )
                view = warehouse_view(conn, data.code)
        except IntegrityError as exc:
            raise Conflict(f"warehouse {data.code} exists", code="warehouse_exists") from exc
        stock.invalidate()
        return view

    @get("/wms/warehouses", sync_to_thread=True, tags=["wms"])
    def list_warehouses(principal: Caller, include_inactive: FromQuery[bool] = False) -> list[WarehouseView]:
        require(principal, "warehouse", "merchant")
        stmt = sa.select(t.warehouses).order_by(w.code)
        if not include_inactive:
            stmt = stmt.where(w.active.is_(True))
        with db.transaction(write=False) as conn:
            return [
                WarehouseView(**{f: getattr(row, f) for f in WarehouseView.__struct_fields__})
                for row in conn.execute(stmt)
            ]

    @patch("/wms/warehouses/{code:str}", sync_to_thread=True, tags=["wms"])
    def update_warehouse(
        code: FromPath[str], data: JSONBody[WarehousePatch], principal: Caller
    ) -> WarehouseView:
        _platform_staff(principal)
        values = {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not None}
        with db.transaction() as conn:
            warehouse_view(conn, code)
            if values:
                conn.execute(
                    t.warehouses.update().where(w.code == code).values(**values, updated_at=utcnow())
                )
            view = warehouse_view(conn, code)
        stock.invalidate()
        return view

    # -- stock ----------------------------------------------------------------------

    @post("/wms/inbound", status_code=201, sync_to_thread=True, tags=["wms"])
    def inbound(
        data: JSONBody[InboundIn], principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response[InboundOut]:
        require(principal, "warehouse")

        def run(claim: Claim | None) -> bytes:
            with db.transaction() as conn:
                found = stock.warehouse(conn, data.warehouse)
                if not found.active:
                    raise Conflict(f"warehouse {data.warehouse} is not active", code="warehouse_inactive")
                may_move(conn, principal, [data.sku])
                stock.add(conn, [{"sku": data.sku, "warehouse": data.warehouse, data.bucket: data.quantity}])
                row = movement(
                    data.sku,
                    data.warehouse,
                    "inbound",
                    principal.subject,
                    data.reason,
                    utcnow(),
                    deltas={data.bucket: data.quantity},
                )
                movement_id = conn.execute(t.movements.insert().values(**row).returning(m.id)).scalar_one()
                reply = InboundOut(movement_id=movement_id, stock=stock_row(conn, data.sku, data.warehouse))
                return record(conn, claim, reply)

        return idempotent(principal, idempotency_key, "POST /wms/inbound", data, run)

    @get("/wms/stock", sync_to_thread=True, tags=["wms"])
    def list_stock(
        principal: Caller,
        sku: FromQuery[str | None] = None,
        warehouse: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        after_warehouse: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> list[StockView]:
        """Stock rows by SKU then warehouse; page with ``after=<last sku>&after_warehouse=<its warehouse>``."""
        require(principal, "warehouse", "merchant")
        stmt = sa.select(t.stock).order_by(s.sku, s.warehouse).limit(limit)
        shop = _shop_filter(principal)
        if shop is not None:
            stmt = stmt.where(
                s.sku.in_(sa.select(catalog_skus.c.code).where(catalog_skus.c.shop == shop).scalar_subquery())
            )
        if sku:
            stmt = stmt.where(s.sku == sku)
        if warehouse:
            stmt = stmt.where(s.warehouse == warehouse)
        if after and after_warehouse:
            # The rest of that SKU's warehouses, then the next SKUs.
            stmt = stmt.where(sa.or_(s.sku > after, sa.and_(s.sku == after, s.warehouse > after_warehouse)))
        elif after:
            stmt = stmt.where(s.sku > after)
        with db.transaction(write=False) as conn:
            return [_stock_view(row) for row in conn.execute(stmt)]

    @get("/wms/stock/{sku:str}", sync_to_thread=True, tags=["wms"])
    def sku_stock(sku: FromPath[str], principal: Caller) -> StockSummary:
        require(principal, "warehouse", "merchant")
        with db.transaction(write=False) as conn:
            may_move(conn, principal, [sku])
            rows = [
                _stock_view(row)
                for row in conn.execute(sa.select(t.stock).where(s.sku == sku).order_by(s.warehouse))
            ]
        return StockSummary(
            sku=sku,
            on_hand=sum(x.on_hand for x in rows),
            reserved=sum(x.reserved for x in rows),
            available=sum(x.available for x in rows),
            b_grade=sum(x.b_grade for x in rows),
            quarantine=sum(x.quarantine for x in rows),
            warehouses=rows,
        )

    @get("/wms/stock/{sku:str}/movements", sync_to_thread=True, tags=["wms"])
    def sku_movements(
        sku: FromPath[str],
        principal: Caller,
        warehouse: FromQuery[str | None] = None,
        before: IdCursor = None,
        limit: Limit = 100,
    ) -> list[MovementView]:
        """Movements of a SKU, newest first; page with ``before=<last id>``."""
        require(principal, "warehouse", "merchant")
        stmt = sa.select(t.movements).where(m.sku == sku).order_by(m.id.desc()).limit(limit)
        if warehouse:
            stmt = stmt.where(m.warehouse == warehouse)
        if before:
            stmt = stmt.where(m.id < before)
        with db.transaction(write=False) as conn:
            may_move(conn, principal, [sku])
            return [_movement_view(row) for row in conn.execute(stmt)]

    @post("/wms/stocktakes", status_code=201, sync_to_thread=True, tags=["wms"])
    def stocktake(
        data: JSONBody[StocktakeIn], principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response[StocktakeOut]:
        """Record counted units per SKU; each difference becomes a stocktake movement."""
        require(principal, "warehouse")
        skus = [c.sku for c in data.counts]
        if len(set(skus)) != len(skus):
            raise InvalidInput("a SKU is counted twice", code="sku_repeated")

        def run(claim: Claim | None) -> bytes:
            with db.transaction() as conn:
                stock.warehouse(conn, data.warehouse)
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
                    stock.add(
                        conn,
                        [
                            {"sku": x.sku, "warehouse": data.warehouse, "on_hand": x.difference}
                            for x in changed
                        ],
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
                reply = StocktakeOut(
                    ref=ref,
                    warehouse=data.warehouse,
                    lines=lines,
                    difference=sum(x.difference for x in lines),
                )
                return record(conn, claim, reply)

        return idempotent(principal, idempotency_key, "POST /wms/stocktakes", data, run)

    @post("/wms/transfers", status_code=201, sync_to_thread=True, tags=["wms"])
    def transfer(
        data: JSONBody[TransferIn], principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response[TransferOut]:
        """Move available units between warehouses (booked out and in at once)."""
        require(principal, "warehouse")
        if data.from_warehouse == data.to_warehouse:
            raise InvalidInput("source and destination are the same warehouse", code="same_warehouse")

        def run(claim: Claim | None) -> bytes:
            with db.transaction() as conn:
                stock.warehouse(conn, data.from_warehouse)
                if not stock.warehouse(conn, data.to_warehouse).active:
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
                reply = TransferOut(
                    ref=ref,
                    sku=data.sku,
                    quantity=data.quantity,
                    source=stock_row(conn, data.sku, data.from_warehouse),
                    destination=stock_row(conn, data.sku, data.to_warehouse),
                )
                return record(conn, claim, reply)

        return idempotent(principal, idempotency_key, "POST /wms/transfers", data, run)

    # -- orders ------------------------------------------------------------------------

    @get("/wms/orders/{order_id:int}", sync_to_thread=True, tags=["wms"])
    def order_stock(order_id: OrderId, principal: Caller) -> OrderStock:
        """The order's reservations and stock movements (staff of its shop)."""
        require(principal, "warehouse", "merchant")
        with db.transaction(write=False) as conn:
            order = kernel.orders.visible(conn, principal, order_id)
            if not principal.can_act_for_shop(order.shop, "warehouse", "merchant"):
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            reservations = [
                ReservationView(**{f: getattr(row, f) for f in ReservationView.__struct_fields__})
                for row in conn.execute(
                    sa.select(t.reservations).where(r.order_id == order_id).order_by(r.id)
                )
            ]
            moves = [
                _movement_view(row)
                for row in conn.execute(sa.select(t.movements).where(m.order_id == order_id).order_by(m.id))
            ]
        return OrderStock(order_id=order_id, status=order.status, reservations=reservations, movements=moves)

    @get("/wms/dispatch-queue", sync_to_thread=True, tags=["wms"])
    def dispatch_queue(principal: Caller, after: IdCursor = None, limit: Limit = 100) -> list[QueueEntry]:
        """Paid orders waiting for dispatch, oldest first; page with ``after=<last order id>``."""
        require(principal, "warehouse")
        o, li = kt.orders.c, kt.order_lines.c
        stmt = (
            sa.select(o.id, o.shop, o.placed_at, o.updated_at, o.hold)
            .where(o.status == OrderStatus.PAID.value)
            .order_by(o.id)
            .limit(limit)
        )
        shop = _shop_filter(principal)
        if shop is not None:
            stmt = stmt.where(o.shop == shop)
        if after:
            stmt = stmt.where(o.id > after)
        with db.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
            ids = [row.id for row in rows]
            if not ids:
                return []
            sizes = {
                row.order_id: (row.lines, row.units)
                for row in conn.execute(
                    sa.select(
                        li.order_id,
                        sa.func.count().label("lines"),
                        sa.func.sum(li.quantity).label("units"),
                    )
                    .where(li.order_id.in_(ids))
                    .group_by(li.order_id)
                )
            }
            held: dict[int, set[str]] = {}
            for row in conn.execute(
                sa.select(r.order_id, r.warehouse).where(r.order_id.in_(ids), r.status == "live").distinct()
            ):
                held.setdefault(row.order_id, set()).add(row.warehouse)
        return [
            QueueEntry(
                order_id=row.id,
                shop=row.shop,
                placed_at=row.placed_at,
                waiting_since=row.updated_at,
                lines=sizes.get(row.id, (0, 0))[0],
                units=int(sizes.get(row.id, (0, 0))[1] or 0),
                hold=row.hold,
                warehouses=sorted(held.get(row.id, ())),
            )
            for row in rows
        ]

    @post("/wms/orders/{order_id:int}/dispatch", status_code=200, sync_to_thread=True, tags=["wms"])
    def dispatch(order_id: OrderId, principal: Caller) -> DispatchOut:
        """Dispatch a paid order now: the warehouse plan and its parcels."""
        require(principal, "warehouse")
        with kernel.orders.stage("dispatch", order_id, principal) as ctx:
            if not principal.can_act_for_shop(ctx.order.shop, "warehouse"):
                raise NotFound(f"order {order_id} not found", code="order_not_found")
            kernel.orders.dispatch_in(ctx)
            parcels = list(ctx.parcels)
        return DispatchOut(
            order_id=order_id,
            status=ctx.order.status,
            parcels=[
                ParcelView(
                    warehouse=p.warehouse,
                    region=p.region,
                    weight_grams=p.weight_grams,
                    freight=p.freight,
                    lines=[ParcelLine(line_id=line_id, quantity=q) for line_id, q in p.lines],
                )
                for p in parcels
            ],
        )

    return [
        create_warehouse,
        list_warehouses,
        update_warehouse,
        inbound,
        list_stock,
        sku_stock,
        sku_movements,
        stocktake,
        transfer,
        order_stock,
        dispatch_queue,
        dispatch,
    ]
