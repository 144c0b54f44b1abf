"""The kernel's routes: orders, shops and who-am-I (docs/architecture.md, "The HTTP contract")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from ..auth import Caller
from ..errors import Conflict
from ..i18n import pick_language
from ..schemas import (
    CancelOrder,
    OrderSummary,
    OrderView,
    PaymentView,
    PayOrder,
    PlaceOrder,
    ShopCode,
    StaffStep,
    TimelineView,
)
from ..types import Shop
from .guards import roles
from .replies import Idempotent

if TYPE_CHECKING:
    from ..kernel import Kernel


class ShopIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: ShopCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "CNY"


class Me(msgspec.Struct):
    subject: str
    roles: list[str]
    shop: str | None
    platform: bool = False


def order_routes(kernel: Kernel) -> list[Any]:
    orders, views = kernel.orders, kernel.order_views

    @post("/orders", status_code=201, sync_to_thread=True, tags=["orders"], summary="Place an order")
    def place_order(
        data: JSONBody[PlaceOrder], principal: Caller, idempotent: Idempotent
    ) -> Response[OrderView]:
        return idempotent(data, lambda reply: orders.place(principal, data, reply=reply))

    @post(
        "/orders/preview",
        status_code=200,
        sync_to_thread=True,
        tags=["orders"],
        summary="Price without placing",
    )
    def preview_order(
        data: JSONBody[PlaceOrder], principal: Caller, request: Request[Any, Any, Any]
    ) -> OrderView:
        return orders.preview(principal, data, lang=pick_language(request.headers.get("accept-language")))

    @get("/orders", sync_to_thread=True, tags=["orders"], summary="List visible orders, newest first")
    def list_orders(
        principal: Caller,
        status: FromQuery[str | None] = None,
        shop: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[OrderSummary]:
        return views.search(principal, status=status, shop=shop, before=before, limit=limit)

    @get("/orders/{order_id:int}", sync_to_thread=True, tags=["orders"])
    def get_order(order_id: FromPath[int], principal: Caller) -> OrderView:
        return views.get(principal, order_id)

    @get("/orders/{order_id:int}/timeline", sync_to_thread=True, tags=["orders"])
    def order_timeline(
        order_id: FromPath[int],
        principal: Caller,
        request: Request[Any, Any, Any],
        ref: FromQuery[str | None] = None,
    ) -> list[TimelineView]:
        lang = pick_language(request.headers.get("accept-language"))
        return views.timeline(principal, order_id, lang=lang, ref=ref)

    @post("/orders/{order_id:int}/payments", status_code=201, sync_to_thread=True, tags=["orders"])
    def pay_order(
        order_id: FromPath[int], data: JSONBody[PayOrder], principal: Caller, idempotent: Idempotent
    ) -> Response[PaymentView]:
        return idempotent(
            data,
            lambda reply: orders.pay(principal, order_id, data.method, data.amount, data.data, reply=reply),
        )

    @post("/orders/{order_id:int}/cancel", status_code=200, sync_to_thread=True, tags=["orders"])
    def cancel_order(
        order_id: FromPath[int], principal: Caller, data: JSONBody[CancelOrder | None] = None
    ) -> OrderView:
        return orders.cancel(principal, order_id, (data or CancelOrder()).reason)

    @post("/orders/{order_id:int}/dispatch", status_code=200, sync_to_thread=True, tags=["orders"])
    def dispatch_order(order_id: FromPath[int], principal: Caller) -> OrderView:
        return orders.dispatch(principal, order_id)

    def staff_step(step: str) -> Any:
        @post(
            f"/orders/{{order_id:int}}/{step}",
            status_code=200,
            sync_to_thread=True,
            tags=["orders"],
            name=f"order_{step}",
            summary=f"Mark the order {step} by hand (deliver: the customer, or platform staff)"
            if step == "deliver"
            else f"Staff: mark the order {step} by hand",
        )
        def handler(
            order_id: FromPath[int], principal: Caller, data: JSONBody[StaffStep | None] = None
        ) -> OrderView:
            return orders.staff_step(principal, order_id, step, (data or StaffStep()).note)

        return handler

    @get("/shops", sync_to_thread=True, tags=["shops"])
    def list_shops(principal: Caller) -> list[Shop]:
        return kernel.shops.all()

    @post("/shops", status_code=201, sync_to_thread=True, tags=["shops"], guards=[roles("admin")])
    def create_shop(data: JSONBody[ShopIn], principal: Caller) -> Shop:
        with kernel.db.transaction() as conn:
            if kernel.shops.find(conn, data.code) is not None:
                raise Conflict(f"shop '{data.code}' exists", code="shop_exists")
            return kernel.shops.ensure(conn, data.code, data.name, data.currency)

    @get("/me", sync_to_thread=False, tags=["auth"])
    def whoami(principal: Caller) -> Me:
        return Me(principal.subject, sorted(principal.roles), principal.shop, principal.platform)

    return [
        place_order,
        preview_order,
        list_orders,
        get_order,
        order_timeline,
        pay_order,
        cancel_order,
        dispatch_order,
        staff_step("ship"),
        staff_step("deliver"),
        staff_step("complete"),
        list_shops,
        create_shop,
        whoami,
    ]
