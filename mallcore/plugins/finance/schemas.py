"""Request and response bodies of the finance routes. Amounts are minor units."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from mallcore.kernel.schemas import ShopCode

Note = Annotated[str, Meta(max_length=1000)]
Reason = Annotated[str, Meta(min_length=1, max_length=500)]
# Far beyond any real amount, far inside a BIGINT even summed over an entry.
MAX_AMOUNT = 10**15


class _In(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


# -- refund review -----------------------------------------------------------------


class ApproveIn(_In):
    note: Annotated[str, Meta(max_length=500)] | None = None


class RejectIn(_In):
    # The request body example of the OpenAPI document (kernel/http/examples.py): what the merchant reads
    EXAMPLE: ClassVar[dict[str, Any]] = {"reason": "the refund is larger than the goods returned"}

    reason: Reason


class ApprovalView(msgspec.Struct, kw_only=True):
    subject: str
    at: datetime | None
    note: str | None = None


class ReviewView(msgspec.Struct, kw_only=True):
    refund_id: int
    order_id: int
    shop: str
    currency: str
    amount: int
    reason: str
    source: str
    ref: str | None
    # pending | awaiting_second_approval | approved | rejected
    status: str
    required_approvals: int
    approvals: list[ApprovalView]
    requested_by: str
    case_approved_by: str | None
    received_by: str | None
    why: str
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    created_at: datetime
    # Whether the caller may approve or reject it now (maker-checker, second approver).
    you_may_decide: bool


# -- journal -------------------------------------------------------------------------


class PostingView(msgspec.Struct, kw_only=True):
    account: str
    currency: str
    amount: int
    role: str
    provider_ref: str | None = None


class EntryView(msgspec.Struct, kw_only=True):
    id: int
    kind: str
    shop: str | None
    currency: str
    amount: int
    order_id: int | None
    payment_id: int | None
    refund_id: int | None
    settlement_id: int | None
    provider: str | None
    provider_ref: str | None
    reverses: int | None
    memo: str
    data: dict[str, Any] | None
    posted_by: str
    posted_at: datetime
    postings: list[PostingView]


class PostingIn(_In):
    account: Annotated[str, Meta(min_length=1, max_length=100)]
    amount: Annotated[int, Meta(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")] | None = None


class EntryIn(_In):
    """A manual correction: balanced postings (debit +, credit -)."""

    # The request body example of the OpenAPI document (kernel/http/examples.py).
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "memo": "bank fee booked twice",
        "currency": "CNY",
        "postings": [{"account": "bank", "amount": 500}, {"account": "suspense", "amount": -500}],
    }

    memo: Reason
    currency: Annotated[str, Meta(pattern=r"^[A-Z]{3}$")]
    postings: Annotated[list[PostingIn], Meta(min_length=2, max_length=50)]
    shop: ShopCode | None = None
    order_id: Annotated[int, Meta(ge=1, le=2**63 - 1)] | None = None


class ReverseIn(_In):
    memo: Reason


class AccountView(msgspec.Struct, kw_only=True):
    account: str
    kind: str
    shop: str | None
    currency: str
    # Debit-positive; a liability or revenue account shows a negative balance.
    balance: int
    debits: int
    credits: int


# -- reconciliation --------------------------------------------------------------------


class MismatchView(msgspec.Struct, kw_only=True):
    id: int
    run_id: int
    kind: str
    provider: str
    reference: str
    type: str | None
    currency: str | None
    their_amount: int | None
    our_amount: int | None
    occurrences: int
    line_no: int | None
    entry_id: int | None
    order_id: int | None
    shop: str | None
    detail: str
    status: str
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None


class RunView(msgspec.Struct, kw_only=True):
    id: int
    provider: str
    day_from: date
    day_to: date
    filename: str | None
    rows: int
    matched: int
    mismatches: int
    created_by: str
    created_at: datetime
    items: list[MismatchView] = msgspec.field(default_factory=list)


class ResolveIn(_In):
    note: Annotated[str, Meta(min_length=1, max_length=1000)]


# -- settlement and reports ----------------------------------------------------------------


class SettlementIn(_In):
    shop: Annotated[str, Meta(min_length=1, max_length=64)]
    # UTC days, both included
    start: date
    end: date


class PayIn(_In):
    reference: Annotated[str, Meta(max_length=128)] | None = None


class Statement(msgspec.Struct, kw_only=True):
    shop: str
    currency: str
    period_start: datetime
    period_end: datetime
    # What the shop sold (goods and freight credited to it), recognised at delivery.
    gross_sales: int
    # Refunds taken back from the shop after the sale.
    refunds: int
    # Commission charged, net of commission returned on refunds.
    commission: int
    # Manual corrections to the shop's payable (positive: owed to the shop).
    adjustments: int
    net_payable: int
    entries: int


class SettlementView(Statement, kw_only=True):
    id: int
    status: str
    created_by: str
    created_at: datetime
    paid_by: str | None
    paid_at: datetime | None
    payout_reference: str | None
    payout_entry_id: int | None


class DailyRow(msgspec.Struct, kw_only=True):
    day: date
    shop: str
    currency: str
    sales: int
    refunds: int
    net: int
    payments: int
    refund_count: int
