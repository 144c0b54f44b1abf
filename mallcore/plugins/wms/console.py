"""The WMS pages of the staff console: stock per SKU and warehouse, movements, and the
inbound, stocktake and transfer forms.

The forms run the work of ``POST /wms/inbound``, ``/wms/stocktakes`` and
``/wms/transfers`` (:mod:`.http.moves`) with the API's bodies, so the same
checks answer (a SKU of another shop: 404; units held by orders: 409).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from mallcore.kernel import Caller, NotFound, Principal, visible_to
from mallcore.kernel.console import (
    ConsolePage,
    FormError,
    base_path,
    form_body,
    form_fields,
    keyset,
    render,
    submit,
)
from mallcore.kernel.http import Reply, platform, roles

from . import tables as t
from .http import moves
from .http.deps import Wms
from .http.stock import stock_view
from .http.warehouses import create_warehouse, update_warehouse, warehouse_view
from .schemas import InboundIn, StocktakeIn, TransferIn, WarehouseIn, WarehousePatch, WarehouseView, view_of

if TYPE_CHECKING:
    from . import WmsCenter

PAGE = 50
# What a person reads for the API's codes on the warehouse forms (English, Chinese).
MESSAGES = {
    "warehouse_exists": ("A warehouse with this code exists.", "已有相同编码的仓库。"),
    "platform_only": ("Only platform warehouse staff may change warehouses.", "仅平台仓储人员可修改仓库。"),
    "invalid_input": ("Some fields are missing or not valid.", "有字段缺失或填写有误。"),
}
ADDRESS = ("contact", "phone", "province", "city", "district", "street")
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def pages() -> list[ConsolePage]:
    return [
        ConsolePage(
            path="/wms",
            label="Stock",
            label_zh="库存",
            handlers=[StockPages, WarehousePages],
            roles=("warehouse", "merchant"),
            order=40,
        )
    ]


def _sku_visible(principal: Any, sku: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
    c = t.catalog_skus.c
    return visible_to(principal, sa.select(c.shop).where(c.code == sku).scalar_subquery())


class StockPages(Controller):
    path = "/wms"
    guards = [roles("warehouse", "merchant")]

    @get("/", sync_to_thread=True)
    def stock(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        wms: Wms,
        sku: FromQuery[str | None] = None,
        warehouse: FromQuery[str | None] = None,
        after: FromQuery[str | None] = None,
    ) -> Template:
        """Stock rows by SKU then warehouse; ``after=<sku>|<warehouse>`` for the next page."""
        s = t.stock.c
        stmt = sa.select(t.stock).where(_sku_visible(principal, s.sku)).order_by(s.sku, s.warehouse)
        if sku:
            stmt = stmt.where(s.sku == sku.strip())
        if warehouse:
            stmt = stmt.where(s.warehouse == warehouse)
        if after:
            last_sku, _, last_warehouse = after.partition("|")
            stmt = stmt.where(
                sa.or_(s.sku > last_sku, sa.and_(s.sku == last_sku, s.warehouse > last_warehouse))
            )
        with wms.kernel.db.transaction(write=False) as conn:
            rows = [stock_view(r) for r in conn.execute(stmt.limit(PAGE + 1))]
            houses = [
                w.code for w in conn.execute(sa.select(t.warehouses.c.code).order_by(t.warehouses.c.code))
            ]
        more = f"{rows[PAGE - 1].sku}|{rows[PAGE - 1].warehouse}" if len(rows) > PAGE else None
        return render(
            request,
            "wms/console/stock.html",
            rows=rows[:PAGE],
            more=more,
            sku=sku or "",
            warehouse=warehouse or "",
            warehouses=houses,
            done=request.query_params.get("done"),
        )

    @get("/movements", sync_to_thread=True)
    def movements(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        wms: Wms,
        sku: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
    ) -> Template:
        m = t.movements.c
        stmt = sa.select(t.movements).where(_sku_visible(principal, m.sku))
        if sku:
            stmt = stmt.where(m.sku == sku.strip())
        with wms.kernel.db.transaction(write=False) as conn:
            rows, more = keyset(conn, stmt, m.id, before)
        return render(request, "wms/console/movements.html", rows=rows, more=more, sku=sku or "")

    @post("/{form:str}", sync_to_thread=True, guards=[roles("warehouse")])
    def move(
        self, request: Request[Any, Any, Any], form: FromPath[str], principal: Caller, wms: Wms, data: Form
    ) -> Response[Any]:
        """Inbound, stocktake or transfer from its form, through the API's work."""
        if form == "inbound":
            fields = ("warehouse", "sku", "quantity", "bucket", "reason")
            moves.inbound(
                wms, principal, form_body({k: data[k] for k in fields if data.get(k)}, InboundIn), Reply()
            )
        elif form == "stocktakes":
            count = {"sku": data.get("sku"), "counted": data.get("counted")}
            counts = form_body({"warehouse": data.get("warehouse"), "counts": [count]}, StocktakeIn)
            moves.stocktake(wms, principal, counts, Reply())
        elif form == "transfers":
            move = {k: data.get(k) for k in ("sku", "from_warehouse", "to_warehouse", "quantity")}
            moves.transfer(wms, principal, form_body(move, TransferIn), Reply())
        else:
            raise NotFound(f"no form '{form[:20]}'", code="form_unknown")
        return Redirect(f"{base_path(request)}/wms?done={form}&sku={data.get('sku', '')}", status_code=303)


class WarehousePages(Controller):
    """Warehouses and their return address: every warehouse and merchant user reads them; platform
    warehouse staff create and change them, through the work of ``POST /wms/warehouses`` and
    ``PATCH /wms/warehouses/{code}`` (403 ``platform_only`` for a shop's staff, as there)."""

    path = "/wms/warehouses"
    guards = [roles("warehouse", "merchant")]

    @get("/", sync_to_thread=True)
    def warehouses(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        wms: Wms,
        after: FromQuery[str | None] = None,
    ) -> Template:
        return self._list_page(request, wms, after)

    def _list_page(
        self,
        request: Request[Any, Any, Any],
        wms: WmsCenter,
        after: str | None = None,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        """Warehouses by code (keyset: ``after`` a code)."""
        w = t.warehouses.c
        with wms.kernel.db.transaction(write=False) as conn:
            rows, more = keyset(conn, sa.select(t.warehouses), w.code, after, ascending=True)
        return render(
            request,
            "wms/console/warehouses.html",
            warehouses=[view_of(WarehouseView, r) for r in rows],
            more=more,
            error=error,
            form=form or {"active": True, "priority": 0},
            done=request.query_params.get("done"),
        )

    @post("/", sync_to_thread=True, guards=[platform("warehouse")])
    def create(self, request: Request[Any, Any, Any], wms: Wms, data: Form) -> Response[Any]:
        fields = form_fields(data, flags=["active"])

        def work() -> str:
            view = create_warehouse(wms, form_body(fields, WarehouseIn))
            return f"/wms/warehouses?done={view.code}"

        return submit(request, work, lambda e: self._list_page(request, wms, None, e, fields), MESSAGES)

    @get("/{code:str}", sync_to_thread=True)
    def warehouse(
        self, request: Request[Any, Any, Any], code: FromPath[str], principal: Caller, wms: Wms
    ) -> Template:
        return self._edit_page(request, principal, wms, code)

    def _edit_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        wms: WmsCenter,
        code: str,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
    ) -> Template:
        with wms.kernel.db.transaction(write=False) as conn:
            view = warehouse_view(conn, code)
        return render(
            request,
            "wms/console/warehouse.html",
            warehouse=view,
            editable=principal.is_platform and principal.has("warehouse"),
            error=error,
            form=form or {f: getattr(view, f) for f in view.__struct_fields__},
            done=request.query_params.get("done"),
        )

    @post("/{code:str}", sync_to_thread=True, guards=[platform("warehouse")])
    def update(
        self, request: Request[Any, Any, Any], code: FromPath[str], principal: Caller, wms: Wms, data: Form
    ) -> Response[Any]:
        fields = form_fields(data, flags=["active"])
        fields.pop("code", None)

        def work() -> str:
            update_warehouse(wms, code, form_body(fields, WarehousePatch))
            return f"/wms/warehouses/{code}?done=saved"

        return submit(
            request, work, lambda e: self._edit_page(request, principal, wms, code, e, fields), MESSAGES
        )
