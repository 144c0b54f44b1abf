"""After-sale routes (docs/centers/refund.md): ``/after-sales``, the reasons list and the tracking page."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Template

from mallcore.kernel import Caller, Forbidden, Kernel, NotFound, Principal, pick_language, require
from mallcore.kernel.http import IdempotencyKey, idempotent

from .schemas import (
    CaseSummary,
    CaseView,
    Decision,
    OpenCase,
    PickupIn,
    ReasonView,
    Receive,
    Rejection,
    ReturnShipment,
    ShipBack,
    StaffNote,
    Withdrawal,
)
from .tracking import page_context

if TYPE_CHECKING:
    from . import RefundCenter
    from .cases import Case

TAGS = ["after-sale"]


class _NoBody(msgspec.Struct):
    pass


def _lang(request: Request[Any, Any, Any]) -> str:
    return pick_language(request.headers.get("accept-language"))


def _owner(principal: Principal, case: Case) -> None:
    if principal.is_admin:
        return
    if case.customer != principal.subject or "customer" not in principal.roles:
        raise Forbidden("only the customer who opened the case can do this", code="role_required")


def _staff(principal: Principal, case: Case, *roles: str) -> None:
    require(principal, *roles)
    if not principal.can_act_for_shop(case.shop, *roles):
        raise NotFound(f"after-sale case {case.id} not found", code="case_not_found")


def routes(kernel: Kernel, center: RefundCenter) -> list[Any]:
    cases = center.cases

    def step(
        name: str,
        principal: Principal,
        case_id: int,
        data: msgspec.Struct | None,
        key: str | None,
        request: Request[Any, Any, Any],
        action: Callable[[Any, Case], None],
    ) -> Response[Any]:
        lang = _lang(request)

        def run(claim: Any) -> tuple[int, bytes]:
            return 200, cases.step(principal, case_id, action, lang=lang, claim=claim)

        return idempotent(
            kernel, principal, key, f"POST /after-sales/{case_id}/{name}", data or _NoBody(), run
        )

    @post("/after-sales", status_code=201, sync_to_thread=True, tags=TAGS, summary="Open an after-sale case")
    def open_case(
        data: JSONBody[OpenCase],
        principal: Caller,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        lang = _lang(request)

        def run(claim: Any) -> tuple[int, bytes]:
            return 201, cases.open_from_request(principal, data, lang=lang, claim=claim)

        return idempotent(kernel, principal, idempotency_key, "POST /after-sales", data, run)

    @get("/after-sales", sync_to_thread=True, tags=TAGS, summary="Cases the caller may see, newest first")
    def list_cases(
        principal: Caller,
        status: FromQuery[str | None] = None,
        order_id: FromQuery[int | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[CaseSummary]:
        return cases.summaries(principal, status=status, order_id=order_id, before=before, limit=limit)

    @get("/after-sales/{case_id:int}", sync_to_thread=True, tags=TAGS, summary="A case with its timeline")
    def get_case(case_id: FromPath[int], principal: Caller, request: Request[Any, Any, Any]) -> CaseView:
        return cases.get(principal, case_id, _lang(request))

    @post("/after-sales/{case_id:int}/approve", status_code=200, sync_to_thread=True, tags=TAGS)
    def approve(
        case_id: FromPath[int],
        principal: Caller,
        request: Request[Any, Any, Any],
        data: JSONBody[Decision | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Merchant: approve the request (or, once inspected, redo its refund or replacement)."""

        def action(ctx: Any, case: Case) -> None:
            _staff(principal, case, "merchant")
            cases.approve(ctx, case, actor=principal.subject, decision=data)

        return step("approve", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/reject", status_code=200, sync_to_thread=True, tags=TAGS)
    def reject(
        case_id: FromPath[int],
        data: JSONBody[Rejection],
        principal: Caller,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Merchant: reject the request, with the reason the customer sees."""

        def action(ctx: Any, case: Case) -> None:
            _staff(principal, case, "merchant")
            cases.reject(ctx, case, data.reason, actor=principal.subject)

        return step("reject", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/cancel", status_code=200, sync_to_thread=True, tags=TAGS)
    def withdraw(
        case_id: FromPath[int],
        principal: Caller,
        request: Request[Any, Any, Any],
        data: JSONBody[Withdrawal | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Customer: withdraw the request (before the goods are on their way)."""

        def action(ctx: Any, case: Case) -> None:
            _owner(principal, case)
            cases.withdraw(ctx, case, (data or Withdrawal()).reason)

        return step("cancel", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/return-shipment", status_code=200, sync_to_thread=True, tags=TAGS)
    def return_shipment(
        case_id: FromPath[int],
        data: JSONBody[ReturnShipment],
        principal: Caller,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Customer: "我已寄出" — the carrier, waybill number and a phone."""

        def action(ctx: Any, case: Case) -> None:
            _owner(principal, case)
            cases.file_return(ctx, case, data)

        return step("return-shipment", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/pickup", status_code=200, sync_to_thread=True, tags=TAGS)
    def pickup(
        case_id: FromPath[int],
        data: JSONBody[PickupIn],
        principal: Caller,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Customer: book a door pickup (上门取件); TMS books the courier."""

        def action(ctx: Any, case: Case) -> None:
            _owner(principal, case)
            cases.book_pickup(ctx, case, data)

        return step("pickup", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/receive", status_code=200, sync_to_thread=True, tags=TAGS)
    def receive(
        case_id: FromPath[int],
        data: JSONBody[Receive],
        principal: Caller,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        """Warehouse: goods received and inspected (per unit); a passing return goes on to its refund."""

        def action(ctx: Any, case: Case) -> None:
            _staff(principal, case, "warehouse")
            cases.receive(ctx, case, data, actor=principal.subject)

        return step("receive", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/repaired", status_code=200, sync_to_thread=True, tags=TAGS)
    def repaired(
        case_id: FromPath[int],
        principal: Caller,
        request: Request[Any, Any, Any],
        data: JSONBody[StaffNote | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        def action(ctx: Any, case: Case) -> None:
            _staff(principal, case, "warehouse", "merchant")
            cases.repaired(ctx, case, (data or StaffNote()).note, actor=principal.subject)

        return step("repaired", principal, case_id, data, idempotency_key, request, action)

    @post("/after-sales/{case_id:int}/ship-back", status_code=200, sync_to_thread=True, tags=TAGS)
    def ship_back(
        case_id: FromPath[int],
        data: JSONBody[ShipBack],
        principal: Caller,
        request: Request[Any, Any, Any],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[CaseView]:
        def action(ctx: Any, case: Case) -> None:
            _staff(principal, case, "warehouse", "merchant")
            cases.ship_back(ctx, case, data, actor=principal.subject)

        return step("ship-back", principal, case_id, data, idempotency_key, request, action)

    @get("/refund/reasons", sync_to_thread=False, tags=TAGS, summary="Reasons a customer can pick")
    def reasons(request: Request[Any, Any, Any]) -> list[ReasonView]:
        lang = _lang(request)
        return [
            ReasonView(code=r.code, text=r.zh if lang == "zh" else r.en, merchant_fault=r.merchant_fault)
            for r in center.settings.reasons
        ]

    @get(
        "/track/{order_id:int}",
        sync_to_thread=True,
        tags=TAGS,
        media_type=MediaType.HTML,
        summary="The customer's tracking page (signed link)",
        include_in_schema=True,
    )
    def track(
        order_id: FromPath[int],
        request: Request[Any, Any, Any],
        token: FromQuery[str | None] = None,
        lang: FromQuery[str | None] = None,
    ) -> Template:
        # (hmac.compare_digest refuses non-ASCII text: a mangled link is simply not found)
        if not token or not token.isascii() or not kernel.auth.check_tracking_token(order_id, token):
            raise NotFound(f"order {order_id} not found", code="order_not_found")
        language = lang if lang in ("en", "zh") else _lang(request)
        context = page_context(kernel, center, order_id, language)
        return Template(template_name="refund/track.html", context=context, media_type=MediaType.HTML)

    return [
        open_case,
        list_cases,
        get_case,
        approve,
        reject,
        withdraw,
        return_shipment,
        pickup,
        receive,
        repaired,
        ship_back,
        reasons,
        track,
    ]
