"""结算 settlement: what a shop is owed for a period, drawn from the journal; daily reports.

A statement sums the postings on ``shop_payable:<shop>`` of the entries
posted in the period, by what each posting is for (its ``role``), from the
shop's side (positive: owed to the shop):

- gross sales: goods and freight credited at delivery (roles ``sale``, ``freight``);
- refunds: taken back after the sale (role ``refund``);
- commission: charged at the sale, less what refunds gave back (role ``commission``);
- adjustments: manual corrections and anything else;
- net payable = gross sales - refunds - commission + adjustments.

Payouts (role ``payout``) are not part of a statement: marking a
settlement paid posts one (Dr shop_payable, Cr bank). Periods are whole
UTC days, may not overlap for a shop, and must be over (plus a grace
period for transactions still committing) before they can be settled, so
no entry can land in a settled period afterwards.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from mallcore.kernel import Conflict, InvalidInput, NotFound, Principal, visible_to
from mallcore.kernel import tables as kt
from mallcore.kernel.http import Reply

from . import accounts as acc
from . import tables as t
from .journal import Line
from .schemas import DailyRow, SettlementView, Statement

if TYPE_CHECKING:
    from . import FinanceCenter


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


class Settlements:
    def __init__(self, center: FinanceCenter) -> None:
        self.center = center

    def _period(self, start: date, end: date) -> tuple[datetime, datetime]:
        if end < start:
            raise InvalidInput("the period ends before it starts", code="period_invalid")
        if (end - start).days > 366:
            raise InvalidInput("a period is at most a year", code="period_invalid")
        return day_start(start), day_start(end) + timedelta(days=1)

    def _lines(self, conn: sa.Connection, shop: str, currency: str, start: datetime, end: datetime) -> Any:
        p, e = t.postings.c, t.entries.c
        return (
            sa.select(p.role, p.amount, e.id, e.kind, e.order_id, e.refund_id, e.posted_at, e.memo)
            .join(t.entries, e.id == p.entry_id)
            .where(
                p.account == acc.shop_payable(shop),
                p.currency == currency,
                p.role != "payout",
                e.posted_at >= start,
                e.posted_at < end,
            )
            .order_by(e.id, p.id)
        )

    def statement(self, conn: sa.Connection, shop: str, start: datetime, end: datetime) -> Statement:
        currency = self.center.kernel.shops.get(shop).currency
        gross = refunds = commission = adjustments = 0
        entry_ids = set()
        for r in conn.execute(self._lines(conn, shop, currency, start, end)):
            entry_ids.add(r.id)
            if r.role in ("sale", "freight"):
                gross -= r.amount
            elif r.role == "refund":
                refunds += r.amount
            elif r.role == "commission":
                commission += r.amount
            else:
                adjustments -= r.amount
        return Statement(
            shop=shop,
            currency=currency,
            period_start=start,
            period_end=end,
            gross_sales=gross,
            refunds=refunds,
            commission=commission,
            adjustments=adjustments,
            net_payable=gross - refunds - commission + adjustments,
            entries=len(entry_ids),
        )

    def preview(self, principal: Principal, shop: str, start: date, end: date) -> Statement:
        if not principal.can_act_for_shop(shop, "finance"):
            raise NotFound(f"shop {shop} not found", code="shop_not_found")
        begin, stop = self._period(start, end)
        with self.center.kernel.db.transaction(write=False) as conn:
            return self.statement(conn, shop, begin, stop)

    def create(
        self, principal: Principal, shop: str, start: date, end: date, reply: Reply | None = None
    ) -> SettlementView:
        """Fix a closed period's statement (the route admits platform finance only)."""
        self.center.kernel.shops.get(shop)
        begin, stop = self._period(start, end)
        now = self.center.now()
        if stop > now - timedelta(seconds=self.center.settings.settlement_grace_seconds):
            raise InvalidInput(
                f"the period ends {stop.isoformat()}; only periods that are over can be settled",
                code="period_not_closed",
            )
        s = t.settlements.c
        try:
            with self.center.kernel.db.transaction() as conn:
                # Serialise settlements of one shop (PostgreSQL; SQLite has one writer anyway),
                # so two overlapping periods cannot both pass the check below.
                conn.execute(
                    self.center.kernel.db.lock_clause(
                        sa.select(kt.shops.c.code).where(kt.shops.c.code == shop)
                    )
                )
                clash = conn.execute(
                    sa.select(s.id).where(s.shop == shop, s.period_start < stop, s.period_end > begin)
                ).first()
                if clash is not None:
                    raise Conflict(
                        f"settlement {clash.id} already covers part of this period",
                        code="settlement_overlaps",
                        extra={"settlement_id": clash.id},
                    )
                st = self.statement(conn, shop, begin, stop)
                settlement_id = conn.execute(
                    t.settlements.insert()
                    .values(
                        shop=shop,
                        currency=st.currency,
                        period_start=begin,
                        period_end=stop,
                        gross_sales=st.gross_sales,
                        refunds=st.refunds,
                        commission=st.commission,
                        adjustments=st.adjustments,
                        net_payable=st.net_payable,
                        entries=st.entries,
                        status="open",
                        created_by=principal.subject,
                        created_at=now,
                    )
                    .returning(s.id)
                ).scalar_one()
                view = self._reply(conn, settlement_id, 201, reply)
        except IntegrityError:
            raise Conflict("a settlement for this period exists", code="settlement_overlaps") from None
        return view

    def _row(self, conn: sa.Connection, principal: Principal, settlement_id: int) -> Any:
        row = conn.execute(sa.select(t.settlements).where(t.settlements.c.id == settlement_id)).first()
        if row is None or not principal.can_act_for_shop(row.shop, "finance"):
            raise NotFound(f"settlement {settlement_id} not found", code="settlement_not_found")
        return row

    def get(self, principal: Principal, settlement_id: int) -> SettlementView:
        with self.center.kernel.db.transaction(write=False) as conn:
            return _view(self._row(conn, principal, settlement_id))

    def find(
        self,
        principal: Principal,
        *,
        shop: str | None,
        status: str | None,
        limit: int,
        before: int | None = None,
    ) -> list[SettlementView]:
        """Settlements the principal may see, newest first (``before``: an id, for the next page)."""
        s = t.settlements.c
        stmt = (
            sa.select(t.settlements).where(visible_to(principal, s.shop)).order_by(s.id.desc()).limit(limit)
        )
        if shop:
            stmt = stmt.where(s.shop == shop)
        if status:
            stmt = stmt.where(s.status == status)
        if before is not None:
            stmt = stmt.where(s.id < before)
        with self.center.kernel.db.transaction(write=False) as conn:
            return [_view(r) for r in conn.execute(stmt)]

    def _reply(
        self, conn: sa.Connection, settlement_id: int, status: int, reply: Reply | None
    ) -> SettlementView:
        view = _view(conn.execute(sa.select(t.settlements).where(t.settlements.c.id == settlement_id)).one())
        if reply is not None:
            reply(conn, view, status)
        return view

    def pay(
        self, principal: Principal, settlement_id: int, reference: str | None, reply: Reply | None = None
    ) -> SettlementView:
        """Post the payout and mark the settlement paid (the route admits platform finance only)."""
        s = t.settlements.c
        now = self.center.now()
        with self.center.kernel.db.transaction() as conn:
            row = self._row(conn, principal, settlement_id)
            taken = conn.execute(
                t.settlements.update()
                .where(s.id == settlement_id, s.status == "open")
                .values(status="paid", paid_by=principal.subject, paid_at=now, payout_reference=reference)
            ).rowcount
            if not taken:
                raise Conflict(f"settlement {settlement_id} is already paid", code="settlement_paid")
            entry_id = None
            if row.net_payable:
                entry_id = self.center.journal.post(
                    conn,
                    kind="payout",
                    currency=row.currency,
                    amount=row.net_payable,
                    shop=row.shop,
                    settlement_id=settlement_id,
                    provider_ref=reference,
                    posted_by=principal.subject,
                    memo=f"payout of settlement {settlement_id}",
                    lines=[
                        Line(account=acc.shop_payable(row.shop), amount=row.net_payable, role="payout"),
                        Line(
                            account=self.center.settings.payout_account,
                            amount=-row.net_payable,
                            role="payout",
                        ),
                    ],
                )
                conn.execute(
                    t.settlements.update().where(s.id == settlement_id).values(payout_entry_id=entry_id)
                )
            view = self._reply(conn, settlement_id, 200, reply)
        return view

    def csv(self, principal: Principal, settlement_id: int) -> str:
        """The statement as CSV: one line per posting on the shop's payable, then the totals."""
        with self.center.kernel.db.transaction(write=False) as conn:
            row = self._row(conn, principal, settlement_id)
            out = io.StringIO()
            w = csv.writer(out, lineterminator="\n")
            w.writerow(
                [
                    "posted_at",
                    "entry_id",
                    "kind",
                    "order_id",
                    "refund_id",
                    "role",
                    "amount",
                    "currency",
                    "memo",
                ]
            )
            for r in conn.execute(
                self._lines(conn, row.shop, row.currency, row.period_start, row.period_end)
            ):
                w.writerow(
                    [
                        r.posted_at.isoformat(),
                        r.id,
                        r.kind,
                        r.order_id or "",
                        r.refund_id or "",
                        r.role,
                        -r.amount,
                        row.currency,
                        r.memo,
                    ]
                )
            for label, value in (
                ("gross_sales", row.gross_sales),
                ("refunds", -row.refunds),
                ("commission", -row.commission),
                ("adjustments", row.adjustments),
                ("net_payable", row.net_payable),
            ):
                w.writerow(["", "", "total", "", "", label, value, row.currency, ""])
        return out.getvalue()

    # -- reports ------------------------------------------------------------------------------

    def daily(self, principal: Principal, start: date, end: date, shop: str | None) -> list[DailyRow]:
        begin, stop = self._period(start, end)
        e = t.entries.c
        stmt = sa.select(e.kind, e.shop, e.currency, e.amount, e.posted_at).where(
            e.kind.in_(("payment", "refund")),
            e.posted_at >= begin,
            e.posted_at < stop,
            visible_to(principal, e.shop),
        )
        if shop:
            stmt = stmt.where(e.shop == shop)
        totals: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        with self.center.kernel.db.transaction(write=False) as conn:
            for r in conn.execute(stmt):
                cell = totals[(r.posted_at.date(), r.shop or "", r.currency)]
                if r.kind == "payment":
                    cell[0] += r.amount
                    cell[2] += 1
                else:
                    cell[1] += r.amount
                    cell[3] += 1
        return [
            DailyRow(
                day=day,
                shop=shop_code,
                currency=currency,
                sales=v[0],
                refunds=v[1],
                net=v[0] - v[1],
                payments=v[2],
                refund_count=v[3],
            )
            for (day, shop_code, currency), v in sorted(totals.items())
        ]


def _view(r: Any) -> SettlementView:
    return SettlementView(
        id=r.id,
        shop=r.shop,
        currency=r.currency,
        period_start=r.period_start,
        period_end=r.period_end,
        gross_sales=r.gross_sales,
        refunds=r.refunds,
        commission=r.commission,
        adjustments=r.adjustments,
        net_payable=r.net_payable,
        entries=r.entries,
        status=r.status,
        created_by=r.created_by,
        created_at=r.created_at,
        paid_by=r.paid_by,
        paid_at=r.paid_at,
        payout_reference=r.payout_reference,
        payout_entry_id=r.payout_entry_id,
    )
