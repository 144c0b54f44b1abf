"""Finance routes under ``/finance``: finance users (a shop's, or the platform's) and admins."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
import msgspec
import sqlalchemy as sa
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mallcore.kernel import Caller, Claim, Conflict, InvalidInput, Kernel, NotFound, Principal, require
from mallcore.kernel.http import IdempotencyKey, idempotent

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
from .settlement import require_platform

if TYPE_CHECKING:
    from . import FinanceCenter

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
TAGS = ["finance"]


def _shop_scope(principal: Principal) -> str | None:
    """The only shop a finance user may see, or ``None`` for platform users and admins."""
    return None if principal.is_admin else principal.shop


def routes(kernel: Kernel, center: FinanceCenter) -> list[Any]:
    db = kernel.db

    # -- refund review ---------------------------------------------------------------

    @get("/finance/refunds", sync_to_thread=True, tags=TAGS, summary="Refunds under finance review")
    def list_reviews(
        principal: Caller,
        status: Annotated[
            str,
            QueryParameter(
                description="open (pending or awaiting a second approval, the default), pending, "
                "awaiting_second_approval, approved, rejected, or all"
            ),
        ] = "open",
        shop: FromQuery[str | None] = None,
        order_id: FromQuery[int | None] = None,
        limit: Limit = 100,
    ) -> list[ReviewView]:
        return center.reviews.find(principal, status=status, shop=shop, order_id=order_id, limit=limit)

    @get("/finance/refunds/{refund_id:int}", sync_to_thread=True, tags=TAGS)
    def get_review(refund_id: FromPath[int], principal: Caller) -> ReviewView:
        return center.reviews.get(principal, refund_id)

    @post("/finance/refunds/{refund_id:int}/approve", status_code=200, sync_to_thread=True, tags=TAGS)
    def approve(
        refund_id: FromPath[int],
        principal: Caller,
        data: JSONBody[ApproveIn | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReviewView]:
        """Approve a refund: pays it out, or records the first of two approvals above the threshold."""

        def run(claim: Claim | None) -> tuple[int, bytes]:
            return 200, center.reviews.approve(principal, refund_id, data.note if data else None, claim)

        scope = f"POST /finance/refunds/{refund_id}/approve"
        return idempotent(kernel, principal, idempotency_key, scope, data or ApproveIn(), run)

    @post("/finance/refunds/{refund_id:int}/reject", status_code=200, sync_to_thread=True, tags=TAGS)
    def reject(
        refund_id: FromPath[int],
        principal: Caller,
        data: JSONBody[RejectIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReviewView]:
        """Reject a refund; the reason goes on the order's (and the case's) timeline."""

        def run(claim: Claim | None) -> tuple[int, bytes]:
            return 200, center.reviews.reject(principal, refund_id, data.reason, claim)

        scope = f"POST /finance/refunds/{refund_id}/reject"
        return idempotent(kernel, principal, idempotency_key, scope, data, run)

    # -- journal -------------------------------------------------------------------------

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
        return [
            EntryView(
                id=r.id,
                kind=r.kind,
                shop=r.shop,
                currency=r.currency,
                amount=r.amount,
                order_id=r.order_id,
                payment_id=r.payment_id,
                refund_id=r.refund_id,
                settlement_id=r.settlement_id,
                provider=r.provider,
                provider_ref=r.provider_ref,
                reverses=r.reverses,
                memo=r.memo,
                data=r.data,
                posted_by=r.posted_by,
                posted_at=r.posted_at,
                postings=by_entry.get(r.id, []),
            )
            for r in rows
        ]

    @get("/finance/entries", sync_to_thread=True, tags=TAGS, summary="Journal entries, newest first")
    def list_entries(
        principal: Caller,
        order_id: FromQuery[int | None] = None,
        refund_id: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        shop: FromQuery[str | None] = None,
        before: FromQuery[int | None] = None,
        limit: Limit = 100,
    ) -> list[EntryView]:
        require(principal, "finance")
        e = t.entries.c
        stmt = sa.select(t.entries).order_by(e.id.desc()).limit(limit)
        scope = _shop_scope(principal)
        if scope is not None:
            stmt = stmt.where(e.shop == scope)
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
        with db.transaction(write=False) as conn:
            return entry_views(conn, conn.execute(stmt).all())

    @get("/finance/entries/{entry_id:int}", sync_to_thread=True, tags=TAGS)
    def get_entry(entry_id: FromPath[int], principal: Caller) -> EntryView:
        require(principal, "finance")
        with db.transaction(write=False) as conn:
            row = conn.execute(sa.select(t.entries).where(t.entries.c.id == entry_id)).first()
            scope = _shop_scope(principal)
            if row is None or (scope is not None and row.shop != scope):
                raise NotFound(f"entry {entry_id} not found", code="entry_not_found")
            return entry_views(conn, [row])[0]

    def entry_reply(conn: sa.Connection, entry_id: int, claim: Claim | None) -> tuple[int, bytes]:
        rows = conn.execute(sa.select(t.entries).where(t.entries.c.id == entry_id)).all()
        body = msgspec.json.encode(entry_views(conn, rows)[0])
        if claim is not None:
            kernel.idempotency.record(conn, claim, 201, body)
        return 201, body

    @post(
        "/finance/entries",
        status_code=201,
        sync_to_thread=True,
        tags=TAGS,
        summary="Post a manual correction",
    )
    def post_entry(
        principal: Caller, data: JSONBody[EntryIn], idempotency_key: IdempotencyKey = None
    ) -> Response[EntryView]:
        require_platform(principal)
        lines = [
            Line(account=p.account, amount=p.amount, role="adjustment", currency=p.currency)
            for p in data.postings
        ]
        shops = {code for line in lines if (code := acc.shop_of(line.account)) is not None}
        if data.shop is not None:
            shops.add(data.shop)
        for code in shops:
            kernel.shops.get(code)  # 422 shop_unknown: no payable of a shop that does not exist

        def run(claim: Claim | None) -> tuple[int, bytes]:
            with db.transaction() as conn:
                concerned = set(shops)
                if data.order_id is not None:
                    order = kernel.orders.load(conn, data.order_id)
                    if order is None:
                        raise InvalidInput(f"there is no order {data.order_id}", code="order_unknown")
                    # an order's correction concerns the order's shop (whose finance users see it)
                    concerned.add(order.shop)
                if len(concerned) > 1:
                    raise InvalidInput("an entry concerns at most one shop", code="entry_shops")
                entry_id = center.journal.post(
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
                return entry_reply(conn, entry_id, claim)

        return idempotent(kernel, principal, idempotency_key, "POST /finance/entries", data, run)

    @post("/finance/entries/{entry_id:int}/reverse", status_code=201, sync_to_thread=True, tags=TAGS)
    def reverse_entry(
        entry_id: FromPath[int],
        principal: Caller,
        data: JSONBody[ReverseIn],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[EntryView]:
        """Undo an entry by posting its negation; the original stays as it was."""
        require_platform(principal)

        def run(claim: Claim | None) -> tuple[int, bytes]:
            with db.transaction() as conn:
                new_id = center.journal.reverse(conn, entry_id, posted_by=principal.subject, memo=data.memo)
                return entry_reply(conn, new_id, claim)

        scope = f"POST /finance/entries/{entry_id}/reverse"
        return idempotent(kernel, principal, idempotency_key, scope, data, run)

    @get(
        "/finance/accounts",
        sync_to_thread=True,
        tags=TAGS,
        summary="Account balances, computed from postings",
    )
    def list_accounts(principal: Caller, shop: FromQuery[str | None] = None) -> list[AccountView]:
        require(principal, "finance")
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
        scope = _shop_scope(principal) or shop
        if scope is not None:
            stmt = stmt.where(p.account == acc.shop_payable(scope))
        with db.transaction(write=False) as conn:
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

    def run_view(conn: sa.Connection, row: Any, principal: Principal) -> RunView:
        """A run as the caller may see it: platform finance the whole of it; a shop's finance user
        only its shop's lines (rows, matched, mismatches), without the platform's file name."""
        m = t.mismatches.c
        stmt = sa.select(t.mismatches).where(m.run_id == row.id).order_by(m.id)
        scope = _shop_scope(principal)
        if scope is not None:
            stmt = stmt.where(m.shop == scope)
        view = RunView(**{f: getattr(row, f) for f in RunView.__struct_fields__ if f != "items"})
        view.items = [mismatch_view(r) for r in conn.execute(stmt)]
        if scope is not None:
            mine = (row.by_shop or {}).get(scope, {})
            view.filename = None
            view.rows = int(mine.get("rows", 0))
            view.matched = int(mine.get("matched", 0))
            view.mismatches = len(view.items)
        return view

    def run_or_404(conn: sa.Connection, run_id: int, principal: Principal) -> Any:
        row = conn.execute(sa.select(t.recon_runs).where(t.recon_runs.c.id == run_id)).first()
        # Runs recorded before per-shop figures were kept have only platform-wide ones.
        if row is None or (_shop_scope(principal) is not None and row.by_shop is None):
            raise NotFound(f"reconciliation run {run_id} not found", code="run_not_found")
        return row

    @post("/finance/reconciliations", status_code=201, tags=TAGS, summary="Import a provider statement (CSV)")
    async def import_statement(
        request: Request[Any, Any, Any],
        principal: Caller,
        provider: Annotated[str, QueryParameter(min_length=1, max_length=32)] = "sandbox",
        day: Annotated[date | None, QueryParameter(name="date", required=False)] = None,
    ) -> RunView:
        """The body is the statement CSV (``text/csv``), or a multipart form with a ``file`` field."""
        require_platform(principal)
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
            run_id = center.reconciler.run(
                provider=provider, lines=lines, created_by=principal.subject, day=day, filename=filename
            )
            with db.transaction(write=False) as conn:
                return run_view(conn, run_or_404(conn, run_id, principal), principal)

        return await anyio.to_thread.run_sync(work)

    @get("/finance/reconciliations", sync_to_thread=True, tags=TAGS)
    def list_runs(
        principal: Caller, provider: FromQuery[str | None] = None, limit: Limit = 50
    ) -> list[RunView]:
        require_platform(principal)
        r = t.recon_runs.c
        stmt = sa.select(t.recon_runs).order_by(r.id.desc()).limit(limit)
        if provider:
            stmt = stmt.where(r.provider == provider)
        with db.transaction(write=False) as conn:
            return [
                RunView(**{f: getattr(row, f) for f in RunView.__struct_fields__ if f != "items"})
                for row in conn.execute(stmt)
            ]

    @get("/finance/reconciliations/{run_id:int}", sync_to_thread=True, tags=TAGS)
    def get_run(run_id: FromPath[int], principal: Caller) -> RunView:
        """A run with its mismatches (a shop's finance user sees only their shop's)."""
        require(principal, "finance")
        with db.transaction(write=False) as conn:
            return run_view(conn, run_or_404(conn, run_id, principal), principal)

    @get("/finance/mismatches", sync_to_thread=True, tags=TAGS, summary="The mismatch queue")
    def list_mismatches(
        principal: Caller,
        status: Annotated[str, QueryParameter(description="open (default), resolved or all")] = "open",
        run_id: FromQuery[int | None] = None,
        kind: FromQuery[str | None] = None,
        limit: Limit = 200,
    ) -> list[MismatchView]:
        require(principal, "finance")
        m = t.mismatches.c
        stmt = sa.select(t.mismatches).order_by(m.id).limit(limit)
        if status != "all":
            stmt = stmt.where(m.status == status)
        scope = _shop_scope(principal)
        if scope is not None:
            stmt = stmt.where(m.shop == scope)
        if run_id is not None:
            stmt = stmt.where(m.run_id == run_id)
        if kind:
            stmt = stmt.where(m.kind == kind)
        with db.transaction(write=False) as conn:
            return [mismatch_view(r) for r in conn.execute(stmt)]

    @post("/finance/mismatches/{mismatch_id:int}/resolve", status_code=200, sync_to_thread=True, tags=TAGS)
    def resolve_mismatch(
        mismatch_id: FromPath[int], principal: Caller, data: JSONBody[ResolveIn]
    ) -> MismatchView:
        require(principal, "finance")
        m = t.mismatches.c
        with db.transaction() as conn:
            row = conn.execute(sa.select(t.mismatches).where(m.id == mismatch_id)).first()
            scope = _shop_scope(principal)
            if row is None or (scope is not None and row.shop != scope):
                raise NotFound(f"mismatch {mismatch_id} not found", code="mismatch_not_found")
            done = conn.execute(
                t.mismatches.update()
                .where(m.id == mismatch_id, m.status == "open")
                .values(
                    status="resolved", resolved_by=principal.subject, resolved_at=center.now(), note=data.note
                )
            ).rowcount
            if not done:
                raise Conflict(f"mismatch {mismatch_id} is already resolved", code="mismatch_resolved")
            row = conn.execute(sa.select(t.mismatches).where(m.id == mismatch_id)).one()
            return mismatch_view(row)

    # -- settlement and reports ------------------------------------------------------------------

    @get("/finance/statements", sync_to_thread=True, tags=TAGS, summary="A shop's statement for any period")
    def statement(
        principal: Caller,
        shop: FromQuery[str],
        start: Annotated[date, QueryParameter(name="from")],
        end: Annotated[date, QueryParameter(name="to")],
    ) -> Statement:
        return center.settlements.preview(principal, shop, start, end)

    @post("/finance/settlements", status_code=201, sync_to_thread=True, tags=TAGS)
    def create_settlement(
        principal: Caller, data: JSONBody[SettlementIn], idempotency_key: IdempotencyKey = None
    ) -> Response[SettlementView]:
        def run(claim: Claim | None) -> tuple[int, bytes]:
            return 201, center.settlements.create(principal, data.shop, data.start, data.end, claim)

        return idempotent(kernel, principal, idempotency_key, "POST /finance/settlements", data, run)

    @get("/finance/settlements", sync_to_thread=True, tags=TAGS)
    def list_settlements(
        principal: Caller,
        shop: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        limit: Limit = 100,
    ) -> list[SettlementView]:
        return center.settlements.find(principal, shop=shop, status=status, limit=limit)

    @get("/finance/settlements/{settlement_id:int}", sync_to_thread=True, tags=TAGS)
    def get_settlement(settlement_id: FromPath[int], principal: Caller) -> SettlementView:
        return center.settlements.get(principal, settlement_id)

    @get(
        "/finance/settlements/{settlement_id:int}/csv", sync_to_thread=True, tags=TAGS, media_type="text/csv"
    )
    def settlement_csv(settlement_id: FromPath[int], principal: Caller) -> Response[str]:
        body = center.settlements.csv(principal, settlement_id)
        return Response(
            body,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="settlement-{settlement_id}.csv"'},
        )

    @post("/finance/settlements/{settlement_id:int}/pay", status_code=200, sync_to_thread=True, tags=TAGS)
    def pay_settlement(
        settlement_id: FromPath[int],
        principal: Caller,
        data: JSONBody[PayIn | None] = None,
        idempotency_key: IdempotencyKey = None,
    ) -> Response[SettlementView]:
        """Mark a settlement paid: posts the payout (Dr shop payable, Cr bank)."""

        def run(claim: Claim | None) -> tuple[int, bytes]:
            reference = data.reference if data else None
            return 200, center.settlements.pay(principal, settlement_id, reference, claim)

        scope = f"POST /finance/settlements/{settlement_id}/pay"
        return idempotent(kernel, principal, idempotency_key, scope, data or PayIn(), run)

    @get(
        "/finance/reports/daily", sync_to_thread=True, tags=TAGS, summary="Daily sales, refunds, net per shop"
    )
    def daily(
        principal: Caller,
        start: Annotated[date, QueryParameter(name="from")],
        end: Annotated[date, QueryParameter(name="to")],
        shop: FromQuery[str | None] = None,
    ) -> list[DailyRow]:
        return center.settlements.daily(principal, start, end, shop)

    return [
        list_reviews,
        get_review,
        approve,
        reject,
        list_entries,
        get_entry,
        post_entry,
        reverse_entry,
        list_accounts,
        import_statement,
        list_runs,
        get_run,
        list_mismatches,
        resolve_mismatch,
        statement,
        create_settlement,
        list_settlements,
        get_settlement,
        settlement_csv,
        pay_settlement,
        daily,
    ]
