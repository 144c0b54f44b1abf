"""After-sale routes: cases and their steps (``/after-sales``) and the reasons a customer
can pick (``/refund/reasons``). The customer's tracking page is the kernel's
(``/track/{order_id}``); this center adds its cases to it (:mod:`.tracking`).

Each step of a case is one route, ``POST /after-sales/{case_id}/<step>``, made by
:func:`step` from the step's entry in :data:`.cases.steps.STEPS`: its guard admits
the roles that may take the step, and its handler hands the body to ``take``,
which runs the step in the case's order stage, once per ``Idempotency-Key``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import msgspec
from litestar import Controller, Request, Response, Router, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mallcore.kernel import Caller, pick_language
from mallcore.kernel.http import Idempotent, center_router, roles

from .cases.steps import STEPS
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

if TYPE_CHECKING:
    from . import RefundCenter

# Handlers get the center as ``refund: RefundDep``.
RefundDep: TypeAlias = NamedDependency["RefundCenter"]
# Takes the route's step on its case with the request's body: ``return take(data)``.
TakeStep: TypeAlias = Callable[[msgspec.Struct | None], Response[Any]]
Take: TypeAlias = NamedDependency[TakeStep]

TAGS = ["after-sale"]
STEP = "refund.step"  # in a step route's ``opt``: the name of its step


def routes(center: RefundCenter) -> list[Router]:
    return [center_router(center, [CaseController, ReasonController], path="/")]


def _lang(request: Request[Any, Any, Any]) -> str:
    return pick_language(request.headers.get("accept-language"))


def step(name: str) -> post:
    """The route of the step ``name``: ``POST /after-sales/{case_id}/<name>``, for the roles that may take it."""
    return post(
        f"/{{case_id:int}}/{name}",
        status_code=200,
        sync_to_thread=True,
        guards=[roles(*STEPS[name].who)],
        opt={STEP: name},
    )


def _take(
    request: Request[Any, Any, Any],
    case_id: FromPath[int],
    principal: Caller,
    refund: RefundDep,
    idempotent: Idempotent,
) -> TakeStep:
    name: str = request.route_handler.opt[STEP]
    lang = _lang(request)

    def take(data: msgspec.Struct | None) -> Response[Any]:
        return idempotent(
            data, lambda reply: refund.cases.step(principal, case_id, name, data, lang=lang, reply=reply)
        )

    return take


class CaseController(Controller):
    path = "/after-sales"
    tags = TAGS
    dependencies = {"take": Provide(_take, sync_to_thread=False)}

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("customer")],
        summary="Open an after-sale case",
    )
    def open_case(
        self,
        data: JSONBody[OpenCase],
        principal: Caller,
        refund: RefundDep,
        idempotent: Idempotent,
        request: Request[Any, Any, Any],
    ) -> Response[CaseView]:
        """Open an after-sale case on one of the caller's orders (customer): refund only, return and
        refund, exchange or repair, with a reason and the lines. Another customer's order: 404. Honours
        `Idempotency-Key`.
        """
        lang = _lang(request)
        return idempotent(data, lambda reply: refund.cases.open(principal, data, lang=lang, reply=reply))

    @get("/", sync_to_thread=True, summary="Cases the caller may see, newest first")
    def list_cases(
        self,
        principal: Caller,
        refund: RefundDep,
        status: FromQuery[str | None] = None,
        order_id: FromQuery[int | None] = None,
        before: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
    ) -> list[CaseSummary]:
        """After-sale cases, newest first: a customer's own, a shop's staff their shop's, platform staff
        all.
        """
        return refund.cases.reading.summaries(
            principal, status=status, order_id=order_id, before=before, limit=limit
        )

    @get("/{case_id:int}", sync_to_thread=True, summary="A case with its timeline")
    def get_case(
        self, case_id: FromPath[int], principal: Caller, refund: RefundDep, request: Request[Any, Any, Any]
    ) -> CaseView:
        """One after-sale case with its timeline, shipments and refund. Not the caller's: 404."""
        return refund.cases.reading.get(principal, case_id, _lang(request))

    @step("approve")
    def approve(self, take: Take, data: JSONBody[Decision | None] = None) -> Response[CaseView]:
        """Merchant: approve the request (or, once inspected, redo its refund or replacement)."""
        return take(data)

    @step("reject")
    def reject(self, take: Take, data: JSONBody[Rejection]) -> Response[CaseView]:
        """Merchant: reject the request, with the reason the customer sees."""
        return take(data)

    @step("cancel")
    def withdraw(self, take: Take, data: JSONBody[Withdrawal | None] = None) -> Response[CaseView]:
        """Customer: withdraw the request (before the goods are on their way)."""
        return take(data)

    @step("return-shipment")
    def return_shipment(self, take: Take, data: JSONBody[ReturnShipment]) -> Response[CaseView]:
        """Customer: "我已寄出" — the carrier, waybill number and a phone."""
        return take(data)

    @step("pickup")
    def pickup(self, take: Take, data: JSONBody[PickupIn]) -> Response[CaseView]:
        """Customer: book a door pickup (上门取件); TMS books the courier."""
        return take(data)

    @step("receive")
    def receive(self, take: Take, data: JSONBody[Receive]) -> Response[CaseView]:
        """Warehouse: goods received and inspected (per unit); a passing return goes on to its refund."""
        return take(data)

    @step("repaired")
    def repaired(self, take: Take, data: JSONBody[StaffNote | None] = None) -> Response[CaseView]:
        """Warehouse or merchant: the repair is done."""
        return take(data)

    @step("ship-back")
    def ship_back(self, take: Take, data: JSONBody[ShipBack]) -> Response[CaseView]:
        """Warehouse or merchant: the repaired goods are sent back, with their waybill."""
        return take(data)


class ReasonController(Controller):
    path = "/refund/reasons"
    tags = TAGS

    @get("/", sync_to_thread=False, summary="Reasons a customer can pick")
    def reasons(self, refund: RefundDep, request: Request[Any, Any, Any]) -> list[ReasonView]:
        """The reasons a customer can give for an after-sale case, in the request's language, and whether
        each is the merchant's fault.
        """
        lang = _lang(request)
        return [
            ReasonView(code=r.code, text=r.zh if lang == "zh" else r.en, merchant_fault=r.merchant_fault)
            for r in refund.settings.reasons
        ]
