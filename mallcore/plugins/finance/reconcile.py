"""对账 reconciliation: a provider's statement against our journal.

The statement is the CSV the payment center serves for a provider and day
(``GET /payment/statements/{provider}?date=YYYY-MM-DD``), columns
``occurred_at,type,reference,original_reference,amount,currency``; ``type``
is ``charge`` or ``refund`` and amounts are positive minor units.

"Our side" comes from the journal alone: the postings on
``provider_clearing:<provider>`` carry the provider's reference of each
charge (debit) and refund (credit). Every statement line is matched by
reference and signed amount; what does not match becomes a mismatch:

- ``duplicate``: the reference is on the statement more than once (or
  posted more than once in our journal); the first line is still matched;
- ``missing_ours``: on the statement, nowhere in our journal;
- ``amount_differs``: both sides have it, with another amount, currency or
  type;
- ``missing_theirs``: in our journal within the statement's days, not on the
  statement.

Mismatches wait in a queue until a finance user resolves each with a note.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from mallcore.kernel import InvalidInput

from . import accounts as acc
from . import tables as t
from .schemas import MAX_AMOUNT

if TYPE_CHECKING:
    from . import FinanceCenter

FIELDS = ("occurred_at", "type", "reference", "original_reference", "amount", "currency")
CHUNK = 500
_AMOUNT = re.compile(r"[0-9]{1,19}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")

Progress = Callable[[int], None]


class StatementLine(msgspec.Struct, kw_only=True):
    line_no: int
    occurred_at: datetime
    type: str
    reference: str
    original_reference: str | None
    amount: int
    currency: str

    @property
    def signed(self) -> int:
        """As our journal sees it: charges debit provider clearing, refunds credit it."""
        return self.amount if self.type == "charge" else -self.amount


def _bad(line_no: int, detail: str) -> InvalidInput:
    return InvalidInput(
        f"statement line {line_no}: {detail}", code="statement_invalid", extra={"line": line_no}
    )


def parse(lines: Iterable[str], progress: Progress | None = None) -> Iterator[StatementLine]:
    """Statement lines from CSV text lines; a malformed line refuses the whole file."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise InvalidInput("the statement is empty", code="statement_invalid")
    header = [h.strip().lstrip("\ufeff") for h in header]
    missing = [f for f in FIELDS if f not in header]
    if missing:
        raise InvalidInput(
            f"the statement has no column {', '.join(missing)} (expected {','.join(FIELDS)})",
            code="statement_invalid",
        )
    at = {name: header.index(name) for name in FIELDS}
    for n, row in enumerate(reader, start=2):
        if progress is not None:
            progress(1)
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise _bad(n, f"{len(row)} columns, expected {len(header)}")
        if any("\x00" in value for value in row):
            raise _bad(n, "contains a NUL character")
        cell = {name: row[i].strip() for name, i in at.items()}
        try:
            occurred = datetime.fromisoformat(cell["occurred_at"])
            if occurred.tzinfo is None:
                occurred = occurred.replace(tzinfo=UTC)
            occurred = occurred.astimezone(UTC)
        except (ValueError, OverflowError):
            raise _bad(n, f"occurred_at '{cell['occurred_at']}' is not an ISO date-time") from None
        if occurred.date() == date.max:
            raise _bad(n, f"occurred_at '{cell['occurred_at']}' is out of range")
        if cell["type"] not in ("charge", "refund"):
            raise _bad(n, f"type '{cell['type']}' is neither charge nor refund")
        if not cell["reference"] or len(cell["reference"]) > 128:
            raise _bad(n, "reference must be 1 to 128 characters")
        if cell["amount"].startswith("-"):
            raise _bad(n, "amount must not be negative")
        # Plain ASCII digits only (int() would take "1_000" or other scripts' digits).
        if not _AMOUNT.fullmatch(cell["amount"]):
            raise _bad(n, f"amount '{cell['amount']}' is not an integer in minor units")
        amount = int(cell["amount"])
        if amount > MAX_AMOUNT:
            raise _bad(n, f"amount {amount} is out of range")
        if not _CURRENCY.fullmatch(cell["currency"]):
            raise _bad(n, f"currency '{cell['currency']}' is not an ISO code")
        yield StatementLine(
            line_no=n,
            occurred_at=occurred,
            type=cell["type"],
            reference=cell["reference"],
            original_reference=cell["original_reference"] or None,
            amount=amount,
            currency=cell["currency"].upper(),
        )


class Ours(msgspec.Struct, kw_only=True):
    amount: int = 0
    currency: str = ""
    postings: int = 0
    entry_id: int | None = None
    order_id: int | None = None
    shop: str | None = None


class Reconciler:
    def __init__(self, center: FinanceCenter) -> None:
        self.center = center

    def _ours(self, conn: sa.Connection, provider: str, where: Any) -> dict[str, Ours]:
        p, e = t.postings.c, t.entries.c
        out: dict[str, Ours] = {}
        stmt = (
            sa.select(p.provider_ref, p.amount, p.currency, e.id, e.kind, e.order_id, e.shop)
            .join(t.entries, e.id == p.entry_id)
            .where(p.account == acc.provider_clearing(provider), p.provider_ref.is_not(None), where)
            .order_by(p.id)
        )
        for r in conn.execute(stmt):
            mine = out.setdefault(r.provider_ref, Ours(currency=r.currency))
            mine.amount += r.amount
            if r.kind == "reversal":
                mine.postings -= 1
            else:
                mine.postings += 1
                if mine.entry_id is None:
                    mine.entry_id, mine.order_id, mine.shop = r.id, r.order_id, r.shop
        return out

    def run(
        self,
        *,
        provider: str,
        lines: Iterable[StatementLine],
        created_by: str,
        day: date | None = None,
        filename: str | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Match a statement against the journal; store the run and its mismatches. Returns the run id."""
        first: dict[str, StatementLine] = {}
        seen: dict[str, int] = {}
        count = 0
        days: set[date] = set()
        for line in lines:
            count += 1
            days.add(line.occurred_at.date())
            seen[line.reference] = seen.get(line.reference, 0) + 1
            first.setdefault(line.reference, line)
        if day is not None:
            if day == date.max:
                raise InvalidInput(f"no statement is dated {day}", code="statement_date_invalid")
            day_from = day_to = day
        elif days:
            day_from, day_to = min(days), max(days)
        else:
            raise InvalidInput(
                "the statement has no lines; give its date to check our side", code="statement_date_required"
            )
        start = datetime.combine(day_from, time.min, tzinfo=UTC)
        end = datetime.combine(day_to, time.min, tzinfo=UTC) + timedelta(days=1)
        found: list[dict[str, Any]] = []
        matched = 0
        # What a shop's finance user sees of the run: the lines of its own payments and refunds.
        by_shop: dict[str, dict[str, int]] = {}
        refs = list(first)
        # Matching only reads: it runs in a read transaction, so a long file never holds
        # the write lock (SQLite has one for the whole database); the run is written after.
        with self.center.kernel.db.transaction(write=False) as conn:
            p, e = t.postings.c, t.entries.c
            for i in range(0, len(refs), CHUNK):
                chunk = refs[i : i + CHUNK]
                ours = self._ours(conn, provider, p.provider_ref.in_(chunk))
                for ref in chunk:
                    theirs, mine = first[ref], ours.get(ref)
                    base = {
                        "provider": provider,
                        "reference": ref,
                        "type": theirs.type,
                        "currency": theirs.currency,
                        "their_amount": theirs.signed,
                        "our_amount": None if mine is None else mine.amount,
                        "line_no": theirs.line_no,
                        "entry_id": None if mine is None else mine.entry_id,
                        "order_id": None if mine is None else mine.order_id,
                        "shop": None if mine is None else mine.shop,
                        "occurrences": 1,
                    }
                    clean = True
                    if seen[ref] > 1:
                        # Reported, but the first line still matches (or not) on its own.
                        found.append(
                            base
                            | {
                                "kind": "duplicate",
                                "occurrences": seen[ref],
                                "detail": f"{theirs.type} {ref} is on the statement {seen[ref]} times",
                            }
                        )
                    if mine is None:
                        found.append(
                            base
                            | {
                                "kind": "missing_ours",
                                "detail": f"{theirs.type} {ref} of {theirs.currency} {theirs.amount} "
                                "is not in our journal",
                            }
                        )
                        continue
                    mine_shop = (
                        by_shop.setdefault(mine.shop, {"rows": 0, "matched": 0}) if mine.shop else None
                    )
                    if mine_shop is not None:
                        mine_shop["rows"] += seen[ref]
                    if mine.postings > 1:
                        clean = False
                        found.append(
                            base
                            | {
                                "kind": "duplicate",
                                "occurrences": mine.postings,
                                "detail": f"{ref} is booked {mine.postings} times in our journal",
                            }
                        )
                    elif mine.amount != theirs.signed or mine.currency != theirs.currency:
                        clean = False
                        found.append(
                            base
                            | {
                                "kind": "amount_differs",
                                "detail": f"{theirs.type} {ref}: provider {theirs.currency} {theirs.signed}, "
                                f"journal {mine.currency} {mine.amount}",
                            }
                        )
                    if clean:
                        matched += 1
                        if mine_shop is not None:
                            mine_shop["matched"] += 1
                if progress is not None:
                    progress(len(chunk))
            listed = set(first)
            window = e.id.in_(
                sa.select(e.id).where(e.posted_at >= start, e.posted_at < end).scalar_subquery()
            )
            for ref, mine in self._ours(conn, provider, window).items():
                if ref in listed or mine.amount == 0:
                    continue
                # Booked in the window, but the whole history of the reference decides.
                total = self._ours(conn, provider, p.provider_ref == ref)[ref]
                if total.amount == 0:
                    continue
                found.append(
                    {
                        "provider": provider,
                        "reference": ref,
                        "type": "charge" if total.amount > 0 else "refund",
                        "currency": total.currency,
                        "their_amount": None,
                        "our_amount": total.amount,
                        "line_no": None,
                        "entry_id": total.entry_id,
                        "order_id": total.order_id,
                        "shop": total.shop,
                        "occurrences": 1,
                        "kind": "missing_theirs",
                        "detail": f"{ref} ({total.currency} {total.amount}) is in our journal "
                        f"but not on the provider's statement",
                    }
                )
        now = self.center.now()
        with self.center.kernel.db.transaction() as conn:
            run_id: int = conn.execute(
                t.recon_runs.insert()
                .values(
                    provider=provider,
                    day_from=day_from,
                    day_to=day_to,
                    filename=filename,
                    rows=count,
                    matched=matched,
                    mismatches=len(found),
                    by_shop=by_shop,
                    created_by=created_by,
                    created_at=now,
                )
                .returning(t.recon_runs.c.id)
            ).scalar_one()
            if found:
                conn.execute(
                    t.mismatches.insert(),
                    [
                        row | {"run_id": run_id, "status": "open", "detail": row["detail"][:500]}
                        for row in found
                    ],
                )
        return run_id
