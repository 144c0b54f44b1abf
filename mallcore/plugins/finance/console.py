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
from mallcore.kernel.console import ConsolePage, Tile, base_path, keyset, render
from mallcore.kernel.http import roles

from . import tables as t
from .review import OPEN, why_not
from .routes import Finance, entry_views, run_or_404, run_view

if TYPE_CHECKING:
    from . import FinanceCenter

PAGE = 50
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
        self, request: Request[Any, Any, Any], run_id: FromPath[int], principal: Caller, finance: Finance
    ) -> Template:
        with finance.kernel.db.transaction(write=False) as conn:
            run = run_view(conn, run_or_404(conn, run_id, principal), principal)
        return render(request, "finance/console/run.html", run=run)

    @get("/settlements", sync_to_thread=True)
    def settlements(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        finance: Finance,
        before: FromQuery[int | None] = None,
    ) -> Template:
        views = finance.settlements.find(principal, shop=None, status=None, limit=PAGE + 1, before=before)
        more = views[PAGE - 1].id if len(views) > PAGE else None
        return render(request, "finance/console/settlements.html", settlements=views[:PAGE], more=more)
