"""The kernel's routes: orders, shops and who-am-I (docs/architecture.md, "The HTTP contract")."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath, FromQuery, HeaderParameter, JSONBody, QueryParameter
from sqlalchemy.exc import IntegrityError

from ..auth import Caller, require
from ..errors import Conflict, MallcoreError
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
from ..types import Claim, Shop

if TYPE_CHECKING:
    from ..kernel import Kernel

IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        required=False,
        description="Replays of the same key return the first response and change nothing.",
    ),
]


def raw_json(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(content=body, status_code=status, media_type="application/json", headers=headers)


def idempotent(
    kernel: Kernel,
    principal: Caller,
    key: str | None,
    scope: str,
    data: msgspec.Struct,
    run: Callable[[Claim | None], tuple[int, bytes]],
) -> Response[Any]:
    """Run ``run(claim)`` once per Idempotency-Key; replays get the first reply."""
    idem = kernel.idempotency
    claim = None if key is None else idem.claim(principal.subject, key, scope, msgspec.json.encode(data))
    if claim is not None:
        stored = idem.lookup(claim)
        if stored is not None:
            status, body = idem.replay(claim, stored)
            return raw_json(body, status, {"Idempotent-Replayed": "true"})
    try:
        status, body = run(claim)
    except (IntegrityError, MallcoreError):
        # A concurrent request with the same key may have won; answer as it did.
        stored = idem.lookup(claim) if claim is not None else None
        if stored is None:
            raise
        status, body = idem.replay(claim, stored)  # type: ignore[arg-type]
        return raw_json(body, status, {"Idempotent-Replayed": "true"})
    return raw_json(body, status)


class ShopIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    code: ShopCode
    name: str
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "CNY"


class Me(msgspec.Struct):
    subject: str
    roles: list[str]
    shop: str | None


def order_routes(kernel: Kernel) -> list[Any]:
    orders, views = kernel.orders, kernel.order_views

    @post("/orders", status_code=201, sync_to_thread=True, tags=["orders"], summary="Place an order")
    def place_order(
        data: JSONBody[PlaceOrder], principal: Caller, idempotency_key: IdempotencyKey = None
    ) -> Response[OrderView]:
        def run(claim: Claim | None) -> tuple[int, bytes]:
            return 201, orders.place(principal, data, claim=claim)[1]

        return idempotent(kernel, principal, idempotency_key, "POST /orders", data, run)

    @post(
        "/orders/preview",
        status_code=200,
        sync_to_thread=True,
        tags=["orders"],
        summary="Price without placing",
    )
    def preview_order(data: JSONBody[PlaceOrder], principal: Caller) -> OrderView:
        return orders.preview(principal, data)

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
        order_id: FromPath[int],
        data: JSONBody[PayOrder],
        principal: Caller,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[PaymentView]:
        def run(claim: Claim | None) -> tuple[int, bytes]:
            return 201, orders.pay(principal, order_id, data.method, data.amount, data.data, claim=claim)[1]

        return idempotent(kernel, principal, idempotency_key, f"POST /orders/{order_id}/payments", data, run)

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
            summary=f"Staff: mark the order {step} by hand",
        )
        def handler(
            order_id: FromPath[int], principal: Caller, data: JSONBody[StaffStep | None] = None
        ) -> OrderView:
            return orders.staff_step(principal, order_id, step, (data or StaffStep()).note)

        return handler

    @get("/shops", sync_to_thread=True, tags=["shops"])
    def list_shops(principal: Caller) -> list[Shop]:
        return kernel.shops.all()

    @post("/shops", status_code=201, sync_to_thread=True, tags=["shops"])
    def create_shop(data: JSONBody[ShopIn], principal: Caller) -> Shop:
        require(principal, "admin")
        with kernel.db.transaction() as conn:
            if kernel.shops.find(conn, data.code) is not None:
                raise Conflict(f"shop '{data.code}' exists", code="shop_exists")
            return kernel.shops.ensure(conn, data.code, data.name, data.currency)

    @get("/me", sync_to_thread=False, tags=["auth"])
    def whoami(principal: Caller) -> Me:
        return Me(principal.subject, sorted(principal.roles), principal.shop)

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
