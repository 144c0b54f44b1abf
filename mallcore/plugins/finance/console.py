"""The finance pages of the staff console: the refund review queue (maker-checker),
the journal, reconciliation runs with their mismatches, and shop settlements.

Approving and rejecting call ``reviews.approve`` / ``reviews.reject``, the code
behind ``POST /finance/refunds/{id}/approve|reject``: the approver is never the
requester (403 ``maker_checker``), above the threshold a second finance user must
approve, and the queue says beforehand why the signed-in user may not decide.
Reading uses the API's own views (``entry_views``, ``run_view``) and its rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from mallcore.kernel import Caller, InvalidInput, Principal, visible_to
from mallcore.kernel.console import (
    ConsolePage,
    FormError,
    Tile,
    base_path,
    form_body,
    form_fields,
    keyset,
    render,
    submit,
)
from mallcore.kernel.http import Reply, platform, roles

from . import tables as t
from .review import OPEN, why_not
from .routes import Finance, entry_views, resolve_mismatch, run_or_404, run_view
from .schemas import PayIn, ResolveIn, SettlementIn

if TYPE_CHECKING:
    from . import FinanceCenter

PAGE = 50
# What a person reads for the API's codes on these forms (English, Chinese).
MESSAGES = {
    "period_not_closed": ("Only a period that is over can be settled.", "只能结算已结束的周期。"),
    "settlement_overlaps": (
        "Another settlement already covers part of this period.",
        "该周期与已有结算单重叠。",
    ),
    "settlement_paid": ("This settlement is already paid.", "该结算单已付款。"),
    "shop_unknown": ("No such shop.", "店铺不存在。"),
    "mismatch_resolved": ("This mismatch is already resolved.", "该差异已处理。"),
    "platform_only": ("Only platform finance may do this.", "仅平台财务可执行此操作。"),
    "invalid_input": ("Some fields are missing or not valid.", "有字段缺失或填写有误。"),
}
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]


def pages(center: FinanceCenter) -> list[ConsolePage]:
    def tiles(principal: Principal, lang: str) -> list[Tile]:
        r = t.reviews.c
        with center.kernel.db.transaction(write=False) as conn:
            waiting = conn.execute(
                sa.select(r.status, sa.func.count())
                .where(visible_to(principal, r.shop), r.status.in_(OPEN))
                .group_by(r.status)
            ).all()
        count = sum(n for _, n in waiting)
        return [
            Tile(
                label="Refunds waiting for finance",
                label_zh="待财务审核退款",
                value=str(count),
                href="/finance",
                rows=[(status, str(n)) for status, n in waiting],
                tone="warn" if count else "",
            )
        ]

    return [
        ConsolePage(
            path="/finance",
            label="Finance",
            label_zh="财务",
            handlers=[FinancePages],
            roles=("finance",),
            order=30,
            tiles=tiles,
        )
    ]


class FinancePages(Controller):
    path = "/finance"
    guards = [roles("finance")]

    @get("/", sync_to_thread=True)
    def queue(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        finance: Finance,
        status: FromQuery[str] = "open",
        after: FromQuery[int | None] = None,
    ) -> Template:
        """The review queue, oldest refund first, with why the user may not decide one."""
        views = finance.reviews.find(
            principal, status=status, shop=None, order_id=None, limit=PAGE + 1, after=after
        )
        more = views[PAGE - 1].refund_id if len(views) > PAGE else None
        views = views[:PAGE]
        return render(
            request,
            "finance/console/queue.html",
            reviews=[(v, why_not(v, principal)) for v in views],
            status=status,
            more=more,
            done=request.query_params.get("done"),
        )

    @post("/refunds/{refund_id:int}/approve", sync_to_thread=True)
    def approve(
        self,
        request: Request[Any, Any, Any],
        refund_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        data: Form,
    ) -> Response[Any]:
        view = finance.reviews.approve(principal, refund_id, (data.get("note") or "")[:500] or None)
        return Redirect(f"{base_path(request)}/finance?done={view.status}:{refund_id}", status_code=303)

    @post("/refunds/{refund_id:int}/reject", sync_to_thread=True)
    def reject(
        self,
        request: Request[Any, Any, Any],
        refund_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        data: Form,
    ) -> Response[Any]:
        reason = (data.get("reason") or "").strip()
        if not reason:
            raise InvalidInput("say why the refund is rejected", code="reason_required")
        view = finance.reviews.reject(principal, refund_id, reason[:500])
        return Redirect(f"{base_path(request)}/finance?done={view.status}:{refund_id}", status_code=303)

    @get("/journal", sync_to_thread=True)
    def journal(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        finance: Finance,
        before: FromQuery[int | None] = None,
    ) -> Template:
        e = t.entries.c
        with finance.kernel.db.transaction(write=False) as conn:
            rows, more = keyset(conn, sa.select(t.entries).where(visible_to(principal, e.shop)), e.id, before)
            entries = entry_views(conn, rows)
        return render(request, "finance/console/journal.html", entries=entries, more=more)

    @get("/reconciliations", sync_to_thread=True)
    def runs(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        finance: Finance,
        before: FromQuery[int | None] = None,
    ) -> Template:
        """Runs the user may see: all for platform finance; a shop's, those with per-shop figures."""
        r = t.recon_runs.c
        stmt = sa.select(t.recon_runs)
        if not principal.is_platform:
            stmt = stmt.where(r.by_shop.is_not(None))
        with finance.kernel.db.transaction(write=False) as conn:
            rows, more = keyset(conn, stmt, r.id, before)
            runs = [run_view(conn, row, principal) for row in rows]
        return render(request, "finance/console/runs.html", runs=runs, more=more)

    @get("/reconciliations/{run_id:int}", sync_to_thread=True)
    def run(
        self,
        request: Request[Any, Any, Any],
        run_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        after: FromQuery[int | None] = None,
    ) -> Template:
        return self._run_page(request, principal, finance, run_id, after)

    def _run_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        finance: FinanceCenter,
        run_id: int,
        after: int | None,
        error: FormError | None = None,
        failed: int | None = None,
    ) -> Template:
        """A run and a page of its mismatches (by id, oldest first), each open one with a resolve form."""
        with finance.kernel.db.transaction(write=False) as conn:
            run = run_view(conn, run_or_404(conn, run_id, principal), principal, after=after, limit=PAGE + 1)
        more = run.items[PAGE - 1].id if len(run.items) > PAGE else None
        run.items = run.items[:PAGE]
        return render(
            request,
            "finance/console/run.html",
            run=run,
            more=more,
            after=after,
            error=error,
            failed=failed,
            done=request.query_params.get("done"),
        )

    @post("/mismatches/{mismatch_id:int}/resolve", sync_to_thread=True)
    def resolve(
        self,
        request: Request[Any, Any, Any],
        mismatch_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        data: Form,
    ) -> Response[Any]:
        """``resolve_mismatch``, the work of ``POST /finance/mismatches/{id}/resolve``; back to its run."""
        fields = form_fields(data)
        run_id = int(fields.get("run", 0) or 0) if str(fields.get("run", "")).isdigit() else 0
        after = int(fields["after"]) if str(fields.get("after", "")).isdigit() else None

        def work() -> str:
            body = form_body(fields, ResolveIn)
            view = resolve_mismatch(finance, principal, mismatch_id, body.note)
            back = f"/finance/reconciliations/{view.run_id}?done={mismatch_id}"
            return back + (f"&after={after}" if after is not None else "")

        return submit(
            request,
            work,
            lambda e: self._run_page(request, principal, finance, run_id, after, e, mismatch_id),
            MESSAGES,
        )

    @get("/settlements", sync_to_thread=True)
    def settlements(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        finance: Finance,
        before: FromQuery[int | None] = None,
    ) -> Template:
        return self._settlements_page(request, principal, finance, before)

    def _settlements_page(
        self,
        request: Request[Any, Any, Any],
        principal: Principal,
        finance: FinanceCenter,
        before: int | None,
        error: FormError | None = None,
        form: dict[str, Any] | None = None,
        failed: int | None = None,
    ) -> Template:
        views = finance.settlements.find(principal, shop=None, status=None, limit=PAGE + 1, before=before)
        more = views[PAGE - 1].id if len(views) > PAGE else None
        return render(
            request,
            "finance/console/settlements.html",
            settlements=views[:PAGE],
            more=more,
            error=error,
            form=form or {},
            failed=failed,
            done=request.query_params.get("done"),
        )

    @post("/settlements", sync_to_thread=True, guards=[platform("finance")])
    def create_settlement(
        self, request: Request[Any, Any, Any], principal: Caller, finance: Finance, data: Form
    ) -> Response[Any]:
        """``settlements.create``, the work of ``POST /finance/settlements`` (platform finance)."""
        fields = form_fields(data)

        def work() -> str:
            body = form_body(fields, SettlementIn)
            view = finance.settlements.create(principal, body.shop, body.start, body.end, Reply())
            return f"/finance/settlements?done=created:{view.id}"

        return submit(
            request,
            work,
            lambda e: self._settlements_page(request, principal, finance, None, e, fields),
            MESSAGES,
            not_found_on_page=True,
        )

    @post("/settlements/{settlement_id:int}/pay", sync_to_thread=True, guards=[platform("finance")])
    def pay_settlement(
        self,
        request: Request[Any, Any, Any],
        settlement_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        data: Form,
    ) -> Response[Any]:
        """``settlements.pay``, the work of ``POST /finance/settlements/{id}/pay`` (platform finance)."""
        fields = form_fields(data)

        def work() -> str:
            body = form_body(fields, PayIn)
            finance.settlements.pay(principal, settlement_id, body.reference, Reply())
            return f"/finance/settlements?done=paid:{settlement_id}"

        return submit(
            request,
            work,
            lambda e: self._settlements_page(request, principal, finance, None, e, failed=settlement_id),
            MESSAGES,
        )
