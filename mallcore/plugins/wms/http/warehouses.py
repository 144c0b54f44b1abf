"""Warehouses under ``/wms/warehouses``: platform objects (any shop's goods may sit in any).

Every staff member lists them; only platform warehouse staff (role
``warehouse``, no shop) and admins create or change them (403
``platform_only`` for shop staff). A change drops this process's cached
warehouse list at once (:mod:`..warehouses`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from litestar import Controller, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import Conflict, NotFound, utcnow
from mallcore.kernel.http import platform, roles

from .. import tables as t
from ..schemas import WarehouseIn, WarehousePatch, WarehouseView, view_of
from .deps import Wms

if TYPE_CHECKING:
    from .. import WmsCenter


def warehouse_view(conn: sa.Connection, code: str) -> WarehouseView:
    row = conn.execute(sa.select(t.warehouses).where(t.warehouses.c.code == code)).first()
    if row is None:
        raise NotFound(f"warehouse {code} not found", code="warehouse_not_found")
    return view_of(WarehouseView, row)


class WarehouseController(Controller):
    path = "/warehouses"
    guards = [roles("warehouse", "merchant")]
    tags = ["wms"]

    @post("/", status_code=201, sync_to_thread=True, guards=[platform("warehouse")])
    def create_warehouse(self, data: JSONBody[WarehouseIn], wms: Wms) -> WarehouseView:
        """Create a warehouse (platform warehouse staff): code, region, priority and address. A code
        already taken answers 409.
        """
        return create_warehouse(wms, data)

    @get("/", sync_to_thread=True)
    def list_warehouses(self, wms: Wms, include_inactive: FromQuery[bool] = False) -> list[WarehouseView]:
        """The active warehouses, by code (`include_inactive=true` for all)."""
        w = t.warehouses.c
        stmt = sa.select(t.warehouses).order_by(w.code)
        if not include_inactive:
            stmt = stmt.where(w.active.is_(True))
        with wms.kernel.db.transaction(write=False) as conn:
            return [view_of(WarehouseView, row) for row in conn.execute(stmt)]

    @patch("/{code:str}", sync_to_thread=True, guards=[platform("warehouse")])
    def update_warehouse(
        self, code: FromPath[str], data: JSONBody[WarehousePatch], wms: Wms
    ) -> WarehouseView:
        """Change a warehouse's name, region, priority, address or active flag (platform warehouse staff).
        Unknown code: 404.
        """
        return update_warehouse(wms, code, data)


# The work of the routes, shared with the console's warehouse forms (platform warehouse staff).


def create_warehouse(wms: WmsCenter, data: WarehouseIn) -> WarehouseView:
    """A new warehouse; 409 ``warehouse_exists`` for a code in use."""
    now = utcnow()
    try:
        with wms.kernel.db.transaction() as conn:
            conn.execute(
                t.warehouses.insert().values(
                    code=data.code,
                    name=data.name,
                    region=data.region,
                    active=data.active,
                    priority=data.priority,
                    contact=data.contact,
                    phone=data.phone,
                    province=data.province,
                    city=data.city,
                    district=data.district,
                    street=data.street,
                    created_at=now,
                    updated_at=now,
                )
            )
            view = warehouse_view(conn, data.code)
    except IntegrityError as exc:
        raise Conflict(f"warehouse {data.code} exists", code="warehouse_exists") from exc
    wms.warehouses.invalidate()
    return view


def update_warehouse(wms: WmsCenter, code: str, data: WarehousePatch) -> WarehouseView:
    """Change the fields given (``None``: unchanged); 404 ``warehouse_not_found``."""
    values = {f: getattr(data, f) for f in data.__struct_fields__ if getattr(data, f) is not None}
    with wms.kernel.db.transaction() as conn:
        warehouse_view(conn, code)
        if values:
            conn.execute(
                t.warehouses.update().where(t.warehouses.c.code == code).values(**values, updated_at=utcnow())
            )
        view = warehouse_view(conn, code)
    wms.warehouses.invalidate()
    return view
