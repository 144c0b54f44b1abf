"""Payment providers. The sandbox is built in; real ones live in ``mallcore.contrib``.

A provider charges and refunds, and can export its statement of a day for
reconciliation. Provider calls happen inside the stage's transaction, so a
real provider should be called with an idempotency reference (we pass our
payment / refund ids) and kept short; long flows use ``pending`` plus a
webhook.

The sandbox captures at once. To exercise other outcomes, pay with
``{"method": "sandbox", "data": {"simulate": "decline"}}`` (fails with
``card_declined``) or ``{"simulate": "pending"}`` (completed later by a
signed webhook ``payment.captured``, or by an admin through
``POST /payment/sandbox/{reference}/capture``).
"""

from __future__ import annotations

import csv
import io
import secrets
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa

from mallcore.kernel import utcnow

from . import tables as t


class ChargeResult(msgspec.Struct, kw_only=True):
    status: str  # captured | pending | failed
    reference: str
    failure: str | None = None


class StatementRow(msgspec.Struct, kw_only=True):
    occurred_at: datetime
    type: str  # charge | refund
    reference: str
    original_reference: str | None
    amount: int
    currency: str


STATEMENT_FIELDS = ["occurred_at", "type", "reference", "original_reference", "amount", "currency"]


class Provider(Protocol):
    name: str

    def charge(
        self, conn: sa.Connection, *, payment_id: int, amount: int, currency: str, data: dict[str, Any]
    ) -> ChargeResult: ...

    def refund(
        self, conn: sa.Connection, *, reference: str, amount: int, currency: str, refund_id: int | None
    ) -> str: ...

    def statement(self, conn: sa.Connection, day: date) -> list[StatementRow]: ...


class SandboxProvider:
    name = "sandbox"

    def _record(self, conn: sa.Connection, **values: Any) -> None:
        conn.execute(t.sandbox_ledger.insert().values(occurred_at=utcnow(), **values))

    def charge(
        self, conn: sa.Connection, *, payment_id: int, amount: int, currency: str, data: dict[str, Any]
    ) -> ChargeResult:
        reference = f"sbx_pay_{secrets.token_hex(8)}"
        simulate = data.get("simulate")
        if simulate == "decline":
            self._record(
                conn, kind="charge", reference=reference, amount=amount, currency=currency, status="failed"
            )
            return ChargeResult(status="failed", reference=reference, failure="card_declined")
        status = "pending" if simulate == "pending" else "captured"
        self._record(
            conn,
            kind="charge",
            reference=reference,
            amount=amount,
            currency=currency,
            status="pending" if status == "pending" else "succeeded",
        )
        return ChargeResult(status=status, reference=reference)

    def capture_pending(self, conn: sa.Connection, reference: str) -> bool:
        return bool(
            conn.execute(
                t.sandbox_ledger.update()
                .where(t.sandbox_ledger.c.reference == reference, t.sandbox_ledger.c.status == "pending")
                .values(status="succeeded", occurred_at=utcnow())
            ).rowcount
        )

    def refund(
        self, conn: sa.Connection, *, reference: str, amount: int, currency: str, refund_id: int | None
    ) -> str:
        ref = f"sbx_rfd_{secrets.token_hex(8)}"
        self._record(
            conn,
            kind="refund",
            reference=ref,
            original_reference=reference,
            amount=amount,
            currency=currency,
            status="succeeded",
        )
        return ref

    def statement(self, conn: sa.Connection, day: date) -> list[StatementRow]:
        start = datetime.combine(day, time.min).replace(tzinfo=utcnow().tzinfo)
        led = t.sandbox_ledger.c
        rows = conn.execute(
            sa.select(t.sandbox_ledger)
            .where(
                led.status == "succeeded",
                led.occurred_at >= start,
                led.occurred_at < start + timedelta(days=1),
            )
            .order_by(led.id)
        )
        return [
            StatementRow(
                occurred_at=r.occurred_at,
                type=r.kind,
                reference=r.reference,
                original_reference=r.original_reference,
                amount=r.amount,
                currency=r.currency,
            )
            for r in rows
        ]


def statement_csv(rows: list[StatementRow]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=STATEMENT_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = msgspec.to_builtins(row)
        record["original_reference"] = record["original_reference"] or ""
        writer.writerow(record)
    return out.getvalue()
