"""The kernel's routes: orders, shops and who-am-I (docs/architecture.md, "The HTTP contract")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from litestar import Request, Response, get, post
from litestar.openapi.spec import Example
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter

from ..auth import Caller
from ..errors import Conflict, MallcoreError, NotFound
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
from .errors import mallcore_error
from .guards import roles
from .openapi import error_response
from .replies import Idempotent

if TYPE_CHECKING:
    from ..kernel import Kernel


class ShopIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The request body example of the OpenAPI document (kernel/http/examples.py): a shop the demo does not have
    EXAMPLE: ClassVar[dict[str, Any]] = {"code": "east", "name": "East shop 东区店"}

    code: ShopCode
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "CNY"


class RevokeLinkIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class LinkRevoked(msgspec.Struct):
    revoked: bool


class Me(msgspec.Struct):
    subject: str
    roles: list[str]
    shop: str | None
    platform: bool = False


PLACE_EXAMPLE = Example(
    summary="two T-shirts",
    value={
        "shop": "demo",
        "lines": [{"sku": "TEE-WHITE-M", "quantity": 2}],
        "address": {"name": "Alice", "phone": "13800000000", "region": "310000", "detail": "1 West Lake Rd"},
    },
)


def order_routes(kernel: Kernel) -> list[Any]:
    orders, views = kernel.orders, kernel.order_views

    if kernel.combiner is not None and kernel.combiner.writer == "async":
        # On the event loop: the body is checked here and the order handed to the
        # combiner's writer thread (docs/architecture.md, "Combined placements").
        async def place_order(
            data: Annotated[PlaceOrder, Body(examples=[PLACE_EXAMPLE])],
            idempotent: Idempotent,
            request: Request[Any, Any, Any],
        ) -> Response[OrderView]:
            # The caller comes with ``idempotent``: one dependency to resolve, not two.
            principal = idempotent.principal
            try:
                return await idempotent.run_async(
                    data, lambda reply: orders.place_async(principal, data, reply)
                )
            except MallcoreError as exc:
                # The answer the router's handler gives (errors.py), without the trip through
                # Litestar's exception middleware: a sold-out flash sale answers thousands of
                # 409s a second, and the trip cost a hot SKU about 5% of its rate on SQLite
                # (docs/benchmarks.md). The annotation is the 201's body, for the OpenAPI document.
                return mallcore_error(request, exc)  # type: ignore[return-value]

        threaded: dict[str, Any] = {}
    else:

        def place_order(  # type: ignore[misc]
            data: Annotated[PlaceOrder, Body(examples=[PLACE_EXAMPLE])],
            principal: Caller,
            idempotent: Idempotent,
        ) -> Response[OrderView]:
            return idempotent(data, lambda reply: orders.place(principal, data, reply=reply))

        threaded = {"sync_to_thread": True}
    place_order.__doc__ = """Place an order for the caller (a customer): pre-validate, price, reserve, in one transaction.

    Honours ``Idempotency-Key``. 201 with totals, lines, adjustments and a
    signed ``tracking_url``; 409 ``out_of_stock``, 422 ``sku_unknown``... write nothing.
    """
    placing = post("/orders", status_code=201, tags=["orders"], summary="Place an order", **threaded)(
        place_order
    )

    @post(
        "/orders/preview",
        status_code=200,
        sync_to_thread=True,
        tags=["orders"],
        summary="Price without placing",
    )
    def preview_order(
        data: Annotated[PlaceOrder, Body(examples=[PLACE_EXAMPLE])],
        principal: Caller,
        request: Request[Any, Any, Any],
    ) -> OrderView:
        """Price an order as ``POST /orders`` would, every adjustment explained, and write nothing."""
        return orders.preview(principal, data, lang=pick_language(request.headers.get("accept-language")))

    @get("/orders", sync_to_thread=True, tags=["orders"], summary="List visible orders, newest first")
    def list_orders(
        principal: Caller,
        status: FromQuery[str | None] = None,
        shop: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[OrderSummary]:
        """Orders the caller may see (their own; their shop's for staff), newest first, ``limit`` at a time."""
        return views.search(principal, status=status, shop=shop, before=before, limit=limit)

    @get("/orders/{order_id:int}", sync_to_thread=True, tags=["orders"])
    def get_order(order_id: FromPath[int], principal: Caller) -> OrderView:
        """An order with its lines, adjustments, shipments and payments (404 when not visible)."""
        return views.get(principal, order_id)

    @get("/orders/{order_id:int}/timeline", sync_to_thread=True, tags=["orders"])
    def order_timeline(
        order_id: FromPath[int],
        principal: Caller,
        request: Request[Any, Any, Any],
        ref: FromQuery[str | None] = None,
    ) -> list[TimelineView]:
        """The order's timeline across every center, in English or Chinese (``Accept-Language``)."""
        lang = pick_language(request.headers.get("accept-language"))
        return views.timeline(principal, order_id, lang=lang, ref=ref)

    @post(
        "/orders/{order_id:int}/tracking-links/revoke", status_code=200, sync_to_thread=True, tags=["orders"]
    )
    def revoke_tracking_link(
        order_id: FromPath[int], data: JSONBody[RevokeLinkIn], principal: Caller
    ) -> LinkRevoked:
        """Revoke one of the order's tracking links (a link forwarded too far): the order's
        customer, its shop's merchants, or an admin. 404 ``tracking_link_not_found`` when the
        token is not a live link of this order."""
        order = views.get(principal, order_id)  # 404 unless visible
        owner = order.customer == principal.subject and "customer" in principal.roles
        if not (owner or principal.can_act_for_shop(order.shop, "merchant")):
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        if not kernel.auth.revoke_tracking_token(order_id, data.token, principal.subject):
            raise NotFound("no such live tracking link for this order", code="tracking_link_not_found")
        return LinkRevoked(revoked=True)

    @post(
        "/orders/{order_id:int}/payments",
        status_code=201,
        sync_to_thread=True,
        tags=["orders"],
        responses={402: error_response(402)},
    )
    def pay_order(
        order_id: FromPath[int],
        data: Annotated[PayOrder, Body(examples=[Example(summary="sandbox", value={"method": "sandbox"})])],
        principal: Caller,
        idempotent: Idempotent,
    ) -> Response[PaymentView]:
        """Pay the caller's order with a payment method; honours ``Idempotency-Key``.

        402 ``payment_failed`` when the provider declines.
        """
        return idempotent(
            data,
            lambda reply: orders.pay(principal, order_id, data.method, data.amount, data.data, reply=reply),
        )

    @post("/orders/{order_id:int}/cancel", status_code=200, sync_to_thread=True, tags=["orders"])
    def cancel_order(
        order_id: FromPath[int], principal: Caller, data: JSONBody[CancelOrder | None] = None
    ) -> OrderView:
        """Cancel before dispatch: held stock is released and what was paid refunded, in one stage."""
        return orders.cancel(principal, order_id, (data or CancelOrder()).reason)

    @post("/orders/{order_id:int}/dispatch", status_code=200, sync_to_thread=True, tags=["orders"])
    def dispatch_order(order_id: FromPath[int], principal: Caller) -> OrderView:
        """Staff: mark a paid order dispatched by hand (shops that run without WMS)."""
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
            """Staff: move the order one step on by hand (shops that run without WMS/TMS)."""
            return orders.staff_step(principal, order_id, step, (data or StaffStep()).note)

        return handler

    @get("/shops", sync_to_thread=True, tags=["shops"])
    def list_shops(principal: Caller) -> list[Shop]:
        """Every shop, with its currency."""
        return kernel.shops.all()

    @post("/shops", status_code=201, sync_to_thread=True, tags=["shops"], guards=[roles("admin")])
    def create_shop(data: JSONBody[ShopIn], principal: Caller) -> Shop:
        """Admins: create a shop (409 ``shop_exists``)."""
        with kernel.db.transaction() as conn:
            if kernel.shops.find(conn, data.code) is not None:
                raise Conflict(f"shop '{data.code}' exists", code="shop_exists")
            return kernel.shops.ensure(conn, data.code, data.name, data.currency)

    @get("/me", sync_to_thread=False, tags=["auth"])
    def whoami(principal: Caller) -> Me:
        """The caller's subject, roles, shop and platform flag, as the token says."""
        return Me(principal.subject, sorted(principal.roles), principal.shop, principal.platform)

    return [
        placing,
        preview_order,
        list_orders,
        get_order,
        order_timeline,
        pay_order,
        revoke_tracking_link,
        cancel_order,
        dispatch_order,
        staff_step("ship"),
        staff_step("deliver"),
        staff_step("complete"),
        list_shops,
        create_shop,
        whoami,
    ]
