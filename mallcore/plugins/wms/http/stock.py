"""Stock and its ledger under ``/wms/stock``: what is where, and every movement of a SKU.

Stock belongs to the shop that sells the SKU (the catalog says which):
staff of a shop see only their shop's SKUs (another shop's answers 403
``shop_forbidden``: SKUs are public in the catalog, so their existence is
no secret); platform staff and admins see everything.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from mallcore.kernel import Caller, Forbidden, NotFound, Principal, visible_to
from mallcore.kernel.http import roles

from .. import tables as t
from ..schemas import MovementView, StockSummary, StockView, view_of
from .deps import IdCursor, Limit, Wms


def may_move(conn: sa.Connection, principal: Principal, skus: list[str]) -> None:
    """404 for unknown SKUs, 403 unless the principal's shop sells them (or platform staff)."""
    c = t.catalog_skus.c
    shops = dict(conn.execute(sa.select(c.code, c.shop).where(c.code.in_(skus))).all())
    unknown = [sku for sku in skus if sku not in shops]
    if unknown:
        raise NotFound(f"unknown SKU: {', '.join(unknown)}", code="sku_not_found", extra={"skus": unknown})
    foreign = [sku for sku in skus if not principal.can_act_for_shop(shops[sku], "warehouse", "merchant")]
    if foreign:
        raise Forbidden(
            f"SKU of another shop: {', '.join(foreign)}", code="shop_forbidden", extra={"skus": foreign}
        )


def stock_view(row: Any) -> StockView:
    return StockView(
        sku=row.sku,
        warehouse=row.warehouse,
        on_hand=row.on_hand,
        reserved=row.reserved,
        available=row.on_hand - row.reserved,
        b_grade=row.b_grade,
        quarantine=row.quarantine,
    )


def stock_row(conn: sa.Connection, sku: str, warehouse: str) -> StockView:
    """The stock of ``sku`` at ``warehouse`` (zeros when it never had any)."""
    s = t.stock.c
    row = conn.execute(sa.select(t.stock).where(s.sku == sku, s.warehouse == warehouse)).first()
    if row is None:
        return StockView(
            sku=sku, warehouse=warehouse, on_hand=0, reserved=0, available=0, b_grade=0, quarantine=0
        )
    return stock_view(row)


class StockController(Controller):
    path = "/stock"
    guards = [roles("warehouse", "merchant")]
    tags = ["wms"]

    @get("/", sync_to_thread=True)
    def list_stock(
        self,
        principal: Caller,
        wms: Wms,
        sku: FromQuery[str | None] = None,
        warehouse: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
        after_warehouse: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> list[StockView]:
        """Stock rows by SKU then warehouse; page with ``after=<last sku>&after_warehouse=<its warehouse>``."""
        s, c = t.stock.c, t.catalog_skus.c
        sku_shop = sa.select(c.shop).where(c.code == s.sku).scalar_subquery()
        stmt = (
            sa.select(t.stock)
            .where(visible_to(principal, sku_shop))
            .order_by(s.sku, s.warehouse)
            .limit(limit)
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
        with wms.kernel.db.transaction(write=False) as conn:
            return [stock_view(row) for row in conn.execute(stmt)]

    @get("/{sku:str}", sync_to_thread=True)
    def sku_stock(self, sku: FromPath[str], principal: Caller, wms: Wms) -> StockSummary:
        """A SKU's stock per warehouse: on hand, reserved, available, B-grade and quarantined (warehouse
        staff and merchants of the SKU's shop). Another shop's SKU: 403 (its existence is public in the
        catalog).
        """
        s = t.stock.c
        with wms.kernel.db.transaction(write=False) as conn:
            may_move(conn, principal, [sku])
            rows = [
                stock_view(row)
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

    @get("/{sku:str}/movements", sync_to_thread=True)
    def sku_movements(
        self,
        sku: FromPath[str],
        principal: Caller,
        wms: Wms,
        warehouse: FromQuery[str | None] = None,
        before: IdCursor = None,
        limit: Limit = 100,
    ) -> list[MovementView]:
        """Movements of a SKU, newest first; page with ``before=<last id>``."""
        m = t.movements.c
        stmt = sa.select(t.movements).where(m.sku == sku).order_by(m.id.desc()).limit(limit)
        if warehouse:
            stmt = stmt.where(m.warehouse == warehouse)
        if before:
            stmt = stmt.where(m.id < before)
        with wms.kernel.db.transaction(write=False) as conn:
            may_move(conn, principal, [sku])
            return [view_of(MovementView, row) for row in conn.execute(stmt)]
