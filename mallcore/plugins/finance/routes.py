"""Finance routes under ``/finance``: finance users (a shop's, or the platform's) and admins.

Every controller admits the ``finance`` role (admins always pass, 403
``role_required`` otherwise); settling, paying out, importing statements and
posting corrections admit platform finance only (403 ``platform_only``). A
shop's finance user sees its shop's rows: lists filter with
:func:`~mallcore.kernel.visible_to`, and one object outside it answers 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias

import anyio.to_thread
import sqlalchemy as sa
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mallcore.kernel import Caller, Conflict, InvalidInput, NotFound, Principal, visible_to
from mallcore.kernel.http import Idempotent, Reply, center_router, platform, roles

from . import accounts as acc
from . import tables as t
from .journal import Line
from .reconcile import parse
from .schemas import (
    AccountView,
    ApproveIn,
    DailyRow,
    EntryIn,
    EntryView,
    MismatchView,
    PayIn,
    PostingView,
    RejectIn,
    ResolveIn,
    ReverseIn,
    ReviewView,
    RunView,
    SettlementIn,
    SettlementView,
    Statement,
)

if TYPE_CHECKING:
    from litestar import Router

    from . import FinanceCenter

# Declare ``finance: Finance`` in a handler to receive the center (see center_router).
Finance: TypeAlias = NamedDependency["FinanceCenter"]
Limit = Annotated[int, QueryParameter(ge=1, le=500)]
From = Annotated[date, QueryParameter(name="from")]
To = Annotated[date, QueryParameter(name="to")]
TAGS = ["finance"]
FINANCE = [roles("finance")]
PLATFORM = [platform("finance")]


def router(center: FinanceCenter) -> Router:
    controllers = [
        ReviewController,
        EntryController,
        AccountController,
        ReconciliationController,
        MismatchController,
        StatementController,
        SettlementController,
        ReportController,
    ]
    return center_router(center, controllers)


# -- refund review -------------------------------------------------------------------


class ReviewController(Controller):
    path = "/refunds"
    guards = FINANCE
    tags = TAGS

    @get("/", sync_to_thread=True, summary="Refunds under finance review")
    def list_reviews(
        self,
        principal: Caller,
        finance: Finance,
        status: Annotated[
            str,
            QueryParameter(
                description="open (pending or awaiting a second approval, the default), pending, "
                "awaiting_second_approval, approved, rejected, or all"
            ),
        ] = "open",
        shop: FromQuery[str | None] = None,
        order_id: FromQuery[int | None] = None,
        after: FromQuery[int | None] = None,
        limit: Limit = 100,
    ) -> list[ReviewView]:
        """Refunds waiting for (or past) finance review, in the caller's shop (platform finance: every
        shop), filtered by status, shop or order.
        """
        return finance.reviews.find(
            principal, status=status, shop=shop, order_id=order_id, limit=limit, after=after
        )

    @get("/{refund_id:int}", sync_to_thread=True)
    def get_review(self, refund_id: FromPath[int], principal: Caller, finance: Finance) -> ReviewView:
        """One refund under finance review, with its approvals and why the caller may or may not approve
        it. Outside the caller's shop: 404.
        """
        return finance.reviews.get(principal, refund_id)

    @post("/{refund_id:int}/approve", status_code=200, sync_to_thread=True)
    def approve(
        self,
        refund_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        idempotent: Idempotent,
        data: JSONBody[ApproveIn | None] = None,
    ) -> Response[ReviewView]:
        """Approve a refund: pays it out, or records the first of two approvals above the threshold."""
        body = data or ApproveIn()
        return idempotent(body, lambda reply: finance.reviews.approve(principal, refund_id, body.note, reply))

    @post("/{refund_id:int}/reject", status_code=200, sync_to_thread=True)
    def reject(
        self,
        refund_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        idempotent: Idempotent,
        data: JSONBody[RejectIn],
    ) -> Response[ReviewView]:
        """Reject a refund; the reason goes on the order's (and the case's) timeline."""
        return idempotent(
            data, lambda reply: finance.reviews.reject(principal, refund_id, data.reason, reply)
        )


# -- journal ---------------------------------------------------------------------------


def entry_views(conn: sa.Connection, rows: Sequence[Any]) -> list[EntryView]:
    if not rows:
        return []
    by_entry: dict[int, list[PostingView]] = {}
    p = t.postings.c
    for r in conn.execute(
        sa.select(t.postings).where(p.entry_id.in_([row.id for row in rows])).order_by(p.id)
    ):
        by_entry.setdefault(r.entry_id, []).append(
            PostingView(
                account=r.account,
                currency=r.currency,
                amount=r.amount,
                role=r.role,
                provider_ref=r.provider_ref,
            )
        )
    fields = [f for f in EntryView.__struct_fields__ if f != "postings"]
    return [EntryView(**{f: getattr(r, f) for f in fields}, postings=by_entry.get(r.id, [])) for r in rows]


def entry_reply(conn: sa.Connection, entry_id: int, reply: Reply) -> None:
    rows = conn.execute(sa.select(t.entries).where(t.entries.c.id == entry_id)).all()
    reply(conn, entry_views(conn, rows)[0], 201)


class EntryController(Controller):
    path = "/entries"
    guards = FINANCE
    tags = TAGS

    @get("/", sync_to_thread=True, summary="Journal entries, newest first")
    def list_entries(
        self,
        principal: Caller,
        finance: Finance,
        order_id: FromQuery[int | None] = None,
        refund_id: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        shop: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 100,
    ) -> list[EntryView]:
        """Journal entries with their postings, newest first, of the caller's shop (platform finance: every
        shop), filtered by order, refund, kind or shop.
        """
        e = t.entries.c
        stmt = sa.select(t.entries).where(visible_to(principal, e.shop)).order_by(e.id.desc()).limit(limit)
        for column, value in (
            (e.order_id, order_id),
            (e.refund_id, refund_id),
            (e.kind, kind),
            (e.shop, shop),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        if before is not None:
            stmt = stmt.where(e.id < before)
        with finance.kernel.db.transaction(write=False) as conn:
            return entry_views(conn, conn.execute(stmt).all())

    @get("/{entry_id:int}", sync_to_thread=True)
    def get_entry(self, entry_id: FromPath[int], principal: Caller, finance: Finance) -> EntryView:
        """One journal entry with its postings. Outside the caller's shop: 404 `entry_not_found`."""
        e = t.entries.c
        with finance.kernel.db.transaction(write=False) as conn:
            rows = conn.execute(
                sa.select(t.entries).where(e.id == entry_id, visible_to(principal, e.shop))
            ).all()
            if not rows:
                raise NotFound(f"entry {entry_id} not found", code="entry_not_found")
            return entry_views(conn, rows)[0]

    @post("/", status_code=201, sync_to_thread=True, guards=PLATFORM, summary="Post a manual correction")
    def post_entry(
        self, principal: Caller, finance: Finance, idempotent: Idempotent, data: JSONBody[EntryIn]
    ) -> Response[EntryView]:
        """Post a manual correction (platform finance or admin): balanced postings in one currency, booked
        as one entry. Honours `Idempotency-Key`.
        """
        kernel = finance.kernel
        lines = [
            Line(account=p.account, amount=p.amount, role="adjustment", currency=p.currency)
            for p in data.postings
        ]
        shops = {code for line in lines if (code := acc.shop_of(line.account)) is not None}
        if data.shop is not None:
            shops.add(data.shop)
        for code in shops:
            kernel.shops.get(code)  # 422 shop_unknown: no payable of a shop that does not exist

        def work(reply: Reply) -> None:
            with kernel.db.transaction() as conn:
                concerned = set(shops)
                if data.order_id is not None:
                    order = kernel.orders.load(conn, data.order_id)
                    if order is None:
                        raise InvalidInput(f"there is no order {data.order_id}", code="order_unknown")
                    # an order's correction concerns the order's shop (whose finance users see it)
                    concerned.add(order.shop)
                if len(concerned) > 1:
                    raise InvalidInput("an entry concerns at most one shop", code="entry_shops")
                entry_id = finance.journal.post(
                    conn,
                    kind="adjustment",
                    currency=data.currency,
                    amount=sum(line.amount for line in lines if line.amount > 0),
                    shop=next(iter(concerned), None),
                    order_id=data.order_id,
                    posted_by=principal.subject,
                    memo=data.memo,
                    lines=lines,
                )
                entry_reply(conn, entry_id, reply)

        return idempotent(data, work)

    @post("/{entry_id:int}/reverse", status_code=201, sync_to_thread=True, guards=PLATFORM)
    def reverse_entry(
        self,
        entry_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        idempotent: Idempotent,
        data: JSONBody[ReverseIn],
    ) -> Response[EntryView]:
        """Undo an entry by posting its negation; the original stays as it was."""

        def work(reply: Reply) -> None:
            with finance.kernel.db.transaction() as conn:
                new_id = finance.journal.reverse(conn, entry_id, posted_by=principal.subject, memo=data.memo)
                entry_reply(conn, new_id, reply)

        return idempotent(data, work)


class AccountController(Controller):
    path = "/accounts"
    guards = FINANCE
    tags = TAGS

    @get("/", sync_to_thread=True, summary="Account balances, computed from postings")
    def list_accounts(
        self, principal: Caller, finance: Finance, shop: FromQuery[str | None] = None
    ) -> list[AccountView]:
        """Account balances (debits, credits, balance per currency) summed from the postings the caller may
        see.
        """
        p = t.postings.c
        stmt = (
            sa.select(
                p.account,
                p.currency,
                sa.func.sum(p.amount).label("balance"),
                sa.func.sum(sa.case((p.amount > 0, p.amount), else_=0)).label("debits"),
                sa.func.sum(sa.case((p.amount < 0, -p.amount), else_=0)).label("credits"),
            )
            .group_by(p.account, p.currency)
            .order_by(p.account, p.currency)
        )
        # Postings name no shop, their accounts do: a shop's finance user sees its payable only.
        payable_of = shop if principal.is_platform else principal.shop
        if payable_of is not None:
            stmt = stmt.where(p.account == acc.shop_payable(payable_of))
        with finance.kernel.db.transaction(write=False) as conn:
            return [
                AccountView(
                    account=r.account,
                    kind=acc.kind_of(r.account) or "unknown",
                    shop=acc.shop_of(r.account),
                    currency=r.currency,
                    balance=int(r.balance),
                    debits=int(r.debits),
                    credits=int(r.credits),
                )
                for r in conn.execute(stmt)
            ]


# -- reconciliation ----------------------------------------------------------------------


def mismatch_view(r: Any) -> MismatchView:
    return MismatchView(**{f: getattr(r, f) for f in MismatchView.__struct_fields__})


def run_view(
    conn: sa.Connection, row: Any, principal: Principal, *, after: int | None = None, limit: int | None = None
) -> RunView:
    """A run as the caller may see it: platform finance the whole of it; a shop's finance user
    only its shop's lines (rows, matched, mismatches), without the platform's file name.
    ``after`` / ``limit`` page its mismatches by id (the console; the API gives them all)."""
    m = t.mismatches.c
    view = RunView(**{f: getattr(row, f) for f in RunView.__struct_fields__ if f != "items"})
    seen = sa.and_(m.run_id == row.id, visible_to(principal, m.shop))
    stmt = sa.select(t.mismatches).where(seen).order_by(m.id)
    if after is not None:
        stmt = stmt.where(m.id > after)
    if limit is not None:
        stmt = stmt.limit(limit)
    view.items = [mismatch_view(r) for r in conn.execute(stmt)]
    if not principal.is_platform:
        mine = (row.by_shop or {}).get(principal.shop, {})
        view.filename = None
        view.rows = int(mine.get("rows", 0))
        view.matched = int(mine.get("matched", 0))
        paged = after is not None or limit is not None
        view.mismatches = (
            conn.execute(sa.select(sa.func.count()).where(seen)).scalar_one() if paged else len(view.items)
        )
    return view


def run_or_404(conn: sa.Connection, run_id: int, principal: Principal) -> Any:
    row = conn.execute(sa.select(t.recon_runs).where(t.recon_runs.c.id == run_id)).first()
    # Runs recorded before per-shop figures were kept have only platform-wide ones.
    if row is None or (not principal.is_platform and row.by_shop is None):
        raise NotFound(f"reconciliation run {run_id} not found", code="run_not_found")
    return row


class ReconciliationController(Controller):
    path = "/reconciliations"
    guards = FINANCE
    tags = TAGS

    @post("/", status_code=201, guards=PLATFORM, summary="Import a provider statement (CSV)")
    async def import_statement(
        self,
        request: Request[Any, Any, Any],
        principal: Caller,
        finance: Finance,
        provider: Annotated[str, QueryParameter(min_length=1, max_length=32)] = "sandbox",
        day: Annotated[date | None, QueryParameter(name="date", required=False)] = None,
    ) -> RunView:
        """The body is the statement CSV (``text/csv``), or a multipart form with a ``file`` field."""
        filename = None
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput("send the statement as the form field 'file'", code="statement_missing")
            filename = upload.filename
            raw = await upload.read()
        else:
            raw = await request.body()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput("the statement is not UTF-8 text", code="statement_invalid") from None

        def work() -> RunView:
            lines = list(parse(text.splitlines()))
            run_id = finance.reconciler.run(
                provider=provider, lines=lines, created_by=principal.subject, day=day, filename=filename
            )
            with finance.kernel.db.transaction(write=False) as conn:
                return run_view(conn, run_or_404(conn, run_id, principal), principal)

        return await anyio.to_thread.run_sync(work)

    @get("/", sync_to_thread=True, guards=PLATFORM)
    def list_runs(
        self, finance: Finance, provider: FromQuery[str | None] = None, limit: Limit = 50
    ) -> list[RunView]:
        """Reconciliation runs against the providers' statements, newest first (platform finance or admin)."""
        r = t.recon_runs.c
        stmt = sa.select(t.recon_runs).order_by(r.id.desc()).limit(limit)
        if provider:
            stmt = stmt.where(r.provider == provider)
        with finance.kernel.db.transaction(write=False) as conn:
            return [
                RunView(**{f: getattr(row, f) for f in RunView.__struct_fields__ if f != "items"})
                for row in conn.execute(stmt)
            ]

    @get("/{run_id:int}", sync_to_thread=True)
    def get_run(self, run_id: FromPath[int], principal: Caller, finance: Finance) -> RunView:
        """A run with its mismatches (a shop's finance user sees only their shop's)."""
        with finance.kernel.db.transaction(write=False) as conn:
            return run_view(conn, run_or_404(conn, run_id, principal), principal)


class MismatchController(Controller):
    path = "/mismatches"
    guards = FINANCE
    tags = TAGS

    @get("/", sync_to_thread=True, summary="The mismatch queue")
    def list_mismatches(
        self,
        principal: Caller,
        finance: Finance,
        status: Annotated[str, QueryParameter(description="open (default), resolved or all")] = "open",
        run_id: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        limit: Limit = 200,
    ) -> list[MismatchView]:
        """Mismatches found by reconciliation, in the caller's shop (platform finance: every shop)."""
        m = t.mismatches.c
        stmt = sa.select(t.mismatches).where(visible_to(principal, m.shop)).order_by(m.id).limit(limit)
        if status != "all":
            stmt = stmt.where(m.status == status)
        if run_id is not None:
            stmt = stmt.where(m.run_id == run_id)
        if kind:
            stmt = stmt.where(m.kind == kind)
        with finance.kernel.db.transaction(write=False) as conn:
            return [mismatch_view(r) for r in conn.execute(stmt)]

    @post("/{mismatch_id:int}/resolve", status_code=200, sync_to_thread=True)
    def resolve_mismatch(
        self, mismatch_id: FromPath[int], principal: Caller, finance: Finance, data: JSONBody[ResolveIn]
    ) -> MismatchView:
        """Mark a mismatch resolved, with a note. Outside the caller's shop: 404; already resolved: 409."""
        return resolve_mismatch(finance, principal, mismatch_id, data.note)


def resolve_mismatch(
    finance: FinanceCenter, principal: Principal, mismatch_id: int, note: str
) -> MismatchView:
    """Close a mismatch with a note (``POST /finance/mismatches/{id}/resolve`` and the console):
    404 outside the caller's shop, 409 ``mismatch_resolved`` when it is already closed."""
    m = t.mismatches.c
    with finance.kernel.db.transaction() as conn:
        seen = conn.execute(sa.select(m.id).where(m.id == mismatch_id, visible_to(principal, m.shop))).first()
        if seen is None:
            raise NotFound(f"mismatch {mismatch_id} not found", code="mismatch_not_found")
        done = conn.execute(
            t.mismatches.update()
            .where(m.id == mismatch_id, m.status == "open")
            .values(status="resolved", resolved_by=principal.subject, resolved_at=finance.now(), note=note)
        ).rowcount
        if not done:
            raise Conflict(f"mismatch {mismatch_id} is already resolved", code="mismatch_resolved")
        return mismatch_view(conn.execute(sa.select(t.mismatches).where(m.id == mismatch_id)).one())


# -- settlement and reports ------------------------------------------------------------------


class StatementController(Controller):
    path = "/statements"
    guards = FINANCE
    tags = TAGS

    @get("/", sync_to_thread=True, summary="A shop's statement for any period")
    def statement(
        self, principal: Caller, finance: Finance, shop: FromQuery[str], start: From, end: To
    ) -> Statement:
        """A shop's statement for a period: sales, refunds, fees and net, without settling it. Another
        shop: 404.
        """
        return finance.settlements.preview(principal, shop, start, end)


class SettlementController(Controller):
    path = "/settlements"
    guards = FINANCE
    tags = TAGS

    @post("/", status_code=201, sync_to_thread=True, guards=PLATFORM)
    def create_settlement(
        self, principal: Caller, finance: Finance, idempotent: Idempotent, data: JSONBody[SettlementIn]
    ) -> Response[SettlementView]:
        """Settle a shop for a period (platform finance or admin): the period's statement is frozen as a
        settlement to pay. Honours `Idempotency-Key`.
        """
        return idempotent(
            data,
            lambda reply: finance.settlements.create(principal, data.shop, data.start, data.end, reply),
        )

    @get("/", sync_to_thread=True)
    def list_settlements(
        self,
        principal: Caller,
        finance: Finance,
        shop: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 100,
    ) -> list[SettlementView]:
        """Settlements, newest first, of the caller's shop (platform finance: every shop)."""
        return finance.settlements.find(principal, shop=shop, status=status, limit=limit, before=before)

    @get("/{settlement_id:int}", sync_to_thread=True)
    def get_settlement(
        self, settlement_id: FromPath[int], principal: Caller, finance: Finance
    ) -> SettlementView:
        """One settlement with its lines. Outside the caller's shop: 404."""
        return finance.settlements.get(principal, settlement_id)

    @get("/{settlement_id:int}/csv", sync_to_thread=True, media_type="text/csv")
    def settlement_csv(
        self, settlement_id: FromPath[int], principal: Caller, finance: Finance
    ) -> Response[str]:
        """One settlement as a CSV file (one line per order or refund). Outside the caller's shop: 404."""
        return Response(
            finance.settlements.csv(principal, settlement_id),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="settlement-{settlement_id}.csv"'},
        )

    @post("/{settlement_id:int}/pay", status_code=200, sync_to_thread=True, guards=PLATFORM)
    def pay_settlement(
        self,
        settlement_id: FromPath[int],
        principal: Caller,
        finance: Finance,
        idempotent: Idempotent,
        data: JSONBody[PayIn | None] = None,
    ) -> Response[SettlementView]:
        """Mark a settlement paid: posts the payout (Dr shop payable, Cr bank)."""
        body = data or PayIn()
        return idempotent(
            body, lambda reply: finance.settlements.pay(principal, settlement_id, body.reference, reply)
        )


class ReportController(Controller):
    path = "/reports"
    guards = FINANCE
    tags = TAGS

    @get("/daily", sync_to_thread=True, summary="Daily sales, refunds, net per shop")
    def daily(
        self, principal: Caller, finance: Finance, start: From, end: To, shop: FromQuery[str | None] = None
    ) -> list[DailyRow]:
        """Sales, refunds and net per day and shop over a period, for the shops the caller may see."""
        return finance.settlements.daily(principal, start, end, shop)
