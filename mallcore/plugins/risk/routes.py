"""The risk center's HTTP routes, one controller per resource (mounted under ``/risk``).

Who may: risk staff and admins manage lists and rules and work the review
queue (a shop's risk staff their shop's, platform risk staff everything);
merchants read their shop's list and the decisions on their shop's orders,
and report customers. Customers see none of it (403 ``role_required``);
anything outside the caller's shop answers 404. Every write honours
``Idempotency-Key``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import sqlalchemy as sa
from litestar import Controller, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mallcore.kernel import Caller, InvalidInput, NotFound, visible_to
from mallcore.kernel.http import Idempotent, center_router, roles

from . import tables as t
from .admin import Admin
from .customers import Customers
from .reports import Reports
from .reviews import STATUSES, Reviews
from .schemas import (
    ChargebackIn,
    DecisionView,
    DryRunIn,
    DryRunView,
    ListEntryView,
    ListIn,
    ProfileView,
    ReportDecision,
    ReportIn,
    ReportView,
    ReviewNote,
    ReviewView,
    RuleIn,
    RulePatch,
    RuleView,
    StatsView,
)

if TYPE_CHECKING:
    from . import RiskCenter

Risk: TypeAlias = NamedDependency["RiskCenter"]
Limit = Annotated[int, QueryParameter(ge=1, le=200)]


class ListController(Controller):
    path = "/lists"
    guards = [roles("risk", "merchant")]
    tags = ["risk"]

    @get("/", sync_to_thread=True, summary="List entries the caller may see, newest first")
    def entries(
        self,
        principal: Caller,
        risk: Risk,
        kind: FromQuery[str | None] = None,
        value: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        shop: Annotated[str | None, QueryParameter(description="a shop, or 'platform'")] = None,
        active: FromQuery[bool | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[ListEntryView]:
        """Black, white and watch list entries, newest first: a shop's risk staff and merchants see their
        shop's and the platform's, platform risk staff all.
        """
        return Admin(risk).entries(
            principal,
            kind=kind,
            value=value,
            action=action,
            shop=shop,
            active=active,
            before=before,
            limit=limit,
        )

    @get("/{entry_id:int}", sync_to_thread=True)
    def entry(self, entry_id: FromPath[int], principal: Caller, risk: Risk) -> ListEntryView:
        """One list entry. Another shop's: 404."""
        return Admin(risk).entry(principal, entry_id)

    @post("/", status_code=201, sync_to_thread=True, guards=[roles("risk")], summary="Add a list entry")
    def add(
        self, data: JSONBody[ListIn], principal: Caller, risk: Risk, idempotent: Idempotent
    ) -> Response[ListEntryView]:
        """Add a list entry (risk staff): a customer, device, IP, phone or address to block, review or
        allow, for the caller's shop or the platform. Honours `Idempotency-Key`.
        """
        return idempotent(data, lambda reply: Admin(risk).add(principal, data, reply))

    @delete("/{entry_id:int}", status_code=200, sync_to_thread=True, guards=[roles("risk")])
    def remove(
        self, entry_id: FromPath[int], principal: Caller, risk: Risk, idempotent: Idempotent
    ) -> Response[ListEntryView]:
        """Deactivate a list entry (risk staff). Another shop's: 404. Honours `Idempotency-Key`."""
        return idempotent(None, lambda reply: Admin(risk).remove(principal, entry_id, reply))


class RuleController(Controller):
    path = "/rules"
    guards = [roles("risk")]
    tags = ["risk"]

    @get("/", sync_to_thread=True, summary="Rules: from config (read-only) and the API")
    def rules(self, principal: Caller, risk: Risk) -> list[RuleView]:
        """The risk rules: those from config (read-only) and those added through the API."""
        return Admin(risk).rules(principal)

    @get("/{rule_id:int}", sync_to_thread=True)
    def rule(self, rule_id: FromPath[int], principal: Caller, risk: Risk) -> RuleView:
        """One rule added through the API. Another shop's: 404."""
        return Admin(risk).rule(principal, rule_id)

    @post("/", status_code=201, sync_to_thread=True, summary="Add a rule (a CEL condition, checked)")
    def add(
        self, data: JSONBody[RuleIn], principal: Caller, risk: Risk, idempotent: Idempotent
    ) -> Response[RuleView]:
        """Add a rule: a CEL condition over an order's facts and an action (block, review, allow); the
        condition is compiled and checked first (422 when it does not). Honours `Idempotency-Key`.
        """
        return idempotent(data, lambda reply: Admin(risk).add_rule(principal, data, reply))

    @patch("/{rule_id:int}", sync_to_thread=True)
    def change(
        self,
        rule_id: FromPath[int],
        data: JSONBody[RulePatch],
        principal: Caller,
        risk: Risk,
        idempotent: Idempotent,
    ) -> Response[RuleView]:
        """Change a rule's condition, action or active flag; the condition is checked as when adding.
        Another shop's: 404. Honours `Idempotency-Key`.
        """
        return idempotent(data, lambda reply: Admin(risk).change_rule(principal, rule_id, data, reply))

    @delete("/{rule_id:int}", status_code=200, sync_to_thread=True)
    def remove(
        self, rule_id: FromPath[int], principal: Caller, risk: Risk, idempotent: Idempotent
    ) -> Response[RuleView]:
        """Remove a rule added through the API. Another shop's: 404. Honours `Idempotency-Key`."""
        return idempotent(None, lambda reply: Admin(risk).remove_rule(principal, rule_id, reply))

    @post(
        "/dry-run", status_code=200, sync_to_thread=True, summary="Which past orders a condition would catch"
    )
    def dry_run(self, data: JSONBody[DryRunIn], principal: Caller, risk: Risk) -> DryRunView:
        """Which recent orders a condition would have caught, without saving it; an invalid condition
        answers 422.
        """
        return Admin(risk).dry_run(principal, data)


class ReviewController(Controller):
    path = "/reviews"
    guards = [roles("risk")]
    tags = ["risk"]

    @get("/", sync_to_thread=True, summary="The review queue, oldest first")
    def queue(
        self,
        principal: Caller,
        risk: Risk,
        status: Annotated[str, QueryParameter(description=", ".join(STATUSES))] = "open",
        kind: FromQuery[str | None] = None,
        shop: FromQuery[str | None] = None,
        order_id: FromQuery[int | None] = None,
        after: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[ReviewView]:
        """The review queue (orders, refunds) oldest first: a shop's risk staff their shop's, platform risk
        staff all.
        """
        if status not in STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", code="status_unknown")
        return Reviews(risk).queue(
            principal, status=status, kind=kind, shop=shop, order_id=order_id, after=after, limit=limit
        )

    @get("/{review_id:int}", sync_to_thread=True)
    def review(self, review_id: FromPath[int], principal: Caller, risk: Risk) -> ReviewView:
        """One review with the order's facts and the rules that fired. Another shop's: 404."""
        return Reviews(risk).get(principal, review_id)

    @post("/{review_id:int}/release", status_code=200, sync_to_thread=True)
    def release(
        self,
        review_id: FromPath[int],
        data: JSONBody[ReviewNote],
        principal: Caller,
        risk: Risk,
        idempotent: Idempotent,
    ) -> Response[ReviewView]:
        """Release a held order or refund (risk staff), with a note; it goes on as if the rule had not
        fired. Already decided: 409. Honours `Idempotency-Key`.
        """
        return idempotent(
            data, lambda reply: Reviews(risk).decide(principal, review_id, "released", data.note, reply)
        )

    @post("/{review_id:int}/reject", status_code=200, sync_to_thread=True)
    def reject(
        self,
        review_id: FromPath[int],
        data: JSONBody[ReviewNote],
        principal: Caller,
        risk: Risk,
        idempotent: Idempotent,
    ) -> Response[ReviewView]:
        """Reject a held order or refund (risk staff), with a note; the order is cancelled. Already
        decided: 409. Honours `Idempotency-Key`.
        """
        return idempotent(
            data, lambda reply: Reviews(risk).decide(principal, review_id, "rejected", data.note, reply)
        )


class DecisionController(Controller):
    path = "/decisions"
    guards = [roles("risk", "merchant")]
    tags = ["risk"]

    @get("/", sync_to_thread=True, summary="Decisions, newest first")
    def decisions(
        self,
        principal: Caller,
        risk: Risk,
        order_id: FromQuery[int | None] = None,
        customer: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        stage: FromQuery[str | None] = None,
        shop: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[DecisionView]:
        """Risk decisions (allow, review, block) with the rules that fired, newest first, for the orders
        the caller may see.
        """
        d = t.decisions.c
        stmt = sa.select(t.decisions).where(visible_to(principal, d.shop))
        for column, value in (
            (d.order_id, order_id),
            (d.customer, customer),
            (d.action, action),
            (d.stage, stage),
            (d.shop, shop),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if before:
            stmt = stmt.where(d.id < before)
        risk.decisions.flush()  # this worker's allowed placements, still with the writer
        with risk.kernel.db.transaction(write=False) as conn:
            return [decision_view(r) for r in conn.execute(stmt.order_by(d.id.desc()).limit(limit))]

    @get("/{decision_id:int}", sync_to_thread=True)
    def decision(self, decision_id: FromPath[int], principal: Caller, risk: Risk) -> DecisionView:
        """One risk decision with its facts and fired rules. Another shop's: 404 `decision_not_found`."""
        d = t.decisions.c
        risk.decisions.flush()
        with risk.kernel.db.transaction(write=False) as conn:
            row = conn.execute(
                sa.select(t.decisions).where(d.id == decision_id, visible_to(principal, d.shop))
            ).first()
        if row is None:
            raise NotFound(f"decision {decision_id} not found", code="decision_not_found")
        return decision_view(row)


class ReportController(Controller):
    path = "/reports"
    guards = [roles("risk", "merchant")]
    tags = ["risk"]

    @get("/", sync_to_thread=True, summary="Reports of customers, oldest first")
    def reports(
        self,
        principal: Caller,
        risk: Risk,
        status: FromQuery[str | None] = "open",
        shop: FromQuery[str | None] = None,
        after: FromQuery[int | None] = None,
        limit: Limit = 50,
    ) -> list[ReportView]:
        """Merchants' reports of customers, oldest first: a shop sees its own, platform risk staff all."""
        return Reports(risk).find(principal, status=status, shop=shop, after=after, limit=limit)

    @get("/{report_id:int}", sync_to_thread=True)
    def report(self, report_id: FromPath[int], principal: Caller, risk: Risk) -> ReportView:
        """One report of a customer. Another shop's: 404."""
        return Reports(risk).get(principal, report_id)

    @post(
        "/",
        status_code=201,
        sync_to_thread=True,
        guards=[roles("merchant")],
        summary="Report a customer (恶意买家)",
    )
    def file(
        self, data: JSONBody[ReportIn], principal: Caller, risk: Risk, idempotent: Idempotent
    ) -> Response[ReportView]:
        """Report a customer for an order of the caller's shop (merchant): abuse, fraud, malicious returns.
        Honours `Idempotency-Key`.
        """
        return idempotent(data, lambda reply: Reports(risk).file(principal, data, reply))

    @post("/{report_id:int}/confirm", status_code=200, sync_to_thread=True, guards=[roles("risk")])
    def confirm(
        self,
        report_id: FromPath[int],
        data: JSONBody[ReportDecision],
        principal: Caller,
        risk: Risk,
        idempotent: Idempotent,
    ) -> Response[ReportView]:
        """Confirm a report (risk staff): the customer's credit score drops and a list entry may be added.
        Already decided: 409. Honours `Idempotency-Key`.
        """
        return idempotent(
            data, lambda reply: Reports(risk).decide(principal, report_id, data, confirm=True, reply=reply)
        )

    @post("/{report_id:int}/dismiss", status_code=200, sync_to_thread=True, guards=[roles("risk")])
    def dismiss(
        self,
        report_id: FromPath[int],
        data: JSONBody[ReviewNote],
        principal: Caller,
        risk: Risk,
        idempotent: Idempotent,
    ) -> Response[ReportView]:
        """Dismiss a report (risk staff), with a note. Already decided: 409. Honours `Idempotency-Key`."""
        decision = ReportDecision(note=data.note)
        return idempotent(
            data,
            lambda reply: Reports(risk).decide(principal, report_id, decision, confirm=False, reply=reply),
        )


class CustomerController(Controller):
    path = "/customers"
    guards = [roles("risk")]
    tags = ["risk"]

    @get("/{customer:str}", sync_to_thread=True, summary="A customer's credit score and its history")
    def customer(self, customer: FromPath[str], principal: Caller, risk: Risk) -> ProfileView:
        """A customer's credit score and its history (risk staff)."""
        return Customers(risk).get(principal, customer)

    @post("/{customer:str}/chargebacks", status_code=201, sync_to_thread=True)
    def chargeback(
        self,
        customer: FromPath[str],
        data: JSONBody[ChargebackIn],
        principal: Caller,
        risk: Risk,
        idempotent: Idempotent,
    ) -> Response[ProfileView]:
        """Record a chargeback against a customer (risk staff); it lowers their credit score. Honours
        `Idempotency-Key`.
        """
        return idempotent(data, lambda reply: Customers(risk).chargeback(principal, customer, data, reply))


class StatsController(Controller):
    path = "/stats"
    guards = [roles("risk")]
    tags = ["risk"]

    @get(
        "/",
        sync_to_thread=True,
        summary="Open reviews and reports, decisions of the last 24 hours, list sizes",
    )
    def stats(self, principal: Caller, risk: Risk) -> StatsView:
        """Open reviews and reports, the last 24 hours' decisions by action, and list sizes, for the
        caller's scope.
        """
        return Customers(risk).stats(principal)


def decision_view(row: Any) -> DecisionView:
    return DecisionView(
        id=row.id,
        stage=row.stage,
        order_id=row.order_id,
        case_id=row.case_id,
        refund_id=row.refund_id,
        shop=row.shop,
        customer=row.customer,
        action=row.action,
        score=row.score,
        rules=list(row.rules or []),
        lists=list(row.lists or []),
        facts=dict(row.facts or {}),
        signals=dict(row.signals or {}),
        errors=list(row.errors or []),
        created_at=row.created_at,
    )


CONTROLLERS = [
    ListController,
    RuleController,
    ReviewController,
    DecisionController,
    ReportController,
    CustomerController,
    StatsController,
]


def routes(center: RiskCenter) -> list[Any]:
    return [center_router(center, CONTROLLERS)]
