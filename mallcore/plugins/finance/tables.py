"""Finance tables: the journal, refund reviews, reconciliation runs, settlements.

The journal (``finance_entries`` + ``finance_postings``) is append-only: no
code path updates or deletes a row of either table; a correction is a new
entry (``reverses`` points at the entry it undoes). Balances are sums of
postings; no cached balance is kept.
"""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Amount, Id, Time

metadata = sa.MetaData()

# One business event: a payment captured, a refund paid out, a sale
# recognised at delivery, a payout to a shop, a manual correction.
entries = sa.Table(
    "finance_entries",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    # payment | refund | sale | payout | adjustment | reversal
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("currency", sa.String(3), nullable=False),
    # The headline amount (what was paid, refunded, recognised, paid out).
    sa.Column("amount", Amount, nullable=False),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("payment_id", Id, nullable=True),
    sa.Column("refund_id", Id, nullable=True),
    sa.Column("settlement_id", Id, nullable=True),
    sa.Column("provider", sa.String(32), nullable=True),
    sa.Column("provider_ref", sa.String(300), nullable=True),
    sa.Column("reverses", Id, nullable=True),
    sa.Column("memo", sa.String(500), nullable=False, server_default=""),
    sa.Column("data", JSON, nullable=True),
    sa.Column("posted_by", sa.String(128), nullable=False),
    sa.Column("posted_at", Time(), nullable=False),
    sa.Index("ix_finance_entries_order", "order_id"),
    sa.Index("ix_finance_entries_shop_time", "shop", "posted_at"),
    sa.Index("ix_finance_entries_time", "posted_at"),
    sa.Index("ix_finance_entries_refund", "refund_id"),
)

# Signed amounts: debit positive, credit negative. Each entry's postings sum
# to zero per currency.
postings = sa.Table(
    "finance_postings",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("entry_id", Id, sa.ForeignKey("finance_entries.id"), nullable=False),
    sa.Column("account", sa.String(100), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    # What the line is for: sale, commission, freight, refund, payout, ...
    sa.Column("role", sa.String(24), nullable=False),
    sa.Column("order_id", Id, nullable=True),
    # On provider clearing lines: the provider's reference of the charge or refund.
    sa.Column("provider_ref", sa.String(128), nullable=True),
    sa.Index("ix_finance_postings_entry", "entry_id"),
    sa.Index("ix_finance_postings_account", "account", "currency"),
    sa.Index("ix_finance_postings_provider_ref", "provider_ref"),
    sa.Index("ix_finance_postings_order", "order_id", "account"),
)

# 财务审核: one row per refund finance holds for review.
reviews = sa.Table(
    "finance_refund_reviews",
    metadata,
    sa.Column("refund_id", Id, primary_key=True, autoincrement=False),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(64), nullable=True),
    # pending | awaiting_second_approval | approved | rejected | refunded
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("required_approvals", sa.Integer, nullable=False),
    # The people who may not approve (maker-checker).
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("case_approved_by", sa.String(128), nullable=True),
    sa.Column("received_by", sa.String(128), nullable=True),
    sa.Column("why", sa.String(300), nullable=False, server_default=""),
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("decided_at", Time(), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Index("ix_finance_refund_reviews_status", "status", "shop"),
)

review_approvals = sa.Table(
    "finance_review_approvals",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("refund_id", Id, sa.ForeignKey("finance_refund_reviews.refund_id"), nullable=False),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("at", Time(), nullable=False),
    # Two approvals by one person are never two approvals.
    sa.UniqueConstraint("refund_id", "subject", name="uq_finance_review_approvals"),
)

# 对账: one import of a provider statement, and what did not match.
recon_runs = sa.Table(
    "finance_recon_runs",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("day_from", sa.Date, nullable=False),
    sa.Column("day_to", sa.Date, nullable=False),
    sa.Column("filename", sa.String(300), nullable=True),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("matched", sa.Integer, nullable=False),
    sa.Column("mismatches", sa.Integer, nullable=False),
    # {shop: {"rows": n, "matched": m}}: what a shop's finance user sees of the run
    # (NULL on runs recorded before it was kept: those are shown to platform finance only)
    sa.Column("by_shop", JSON, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
)

mismatches = sa.Table(
    "finance_recon_mismatches",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("run_id", Id, sa.ForeignKey("finance_recon_runs.id"), nullable=False),
    # missing_ours | missing_theirs | amount_differs | duplicate
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("reference", sa.String(128), nullable=False),
    sa.Column("type", sa.String(16), nullable=True),  # charge | refund
    sa.Column("currency", sa.String(3), nullable=True),
    sa.Column("their_amount", Amount, nullable=True),
    sa.Column("our_amount", Amount, nullable=True),
    sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
    sa.Column("line_no", sa.Integer, nullable=True),
    sa.Column("entry_id", Id, nullable=True),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | resolved
    sa.Column("resolved_by", sa.String(128), nullable=True),
    sa.Column("resolved_at", Time(), nullable=True),
    sa.Column("note", sa.String(1000), nullable=True),
    sa.Index("ix_finance_recon_mismatches_run", "run_id"),
    sa.Index("ix_finance_recon_mismatches_status", "status", "shop"),
)

# 结算: what a shop is owed for a closed period, and whether it was paid.
settlements = sa.Table(
    "finance_settlements",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("period_start", Time(), nullable=False),
    sa.Column("period_end", Time(), nullable=False),
    sa.Column("gross_sales", Amount, nullable=False),
    sa.Column("refunds", Amount, nullable=False),
    sa.Column("commission", Amount, nullable=False),
    sa.Column("adjustments", Amount, nullable=False),
    sa.Column("net_payable", Amount, nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open | paid
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("paid_by", sa.String(128), nullable=True),
    sa.Column("paid_at", Time(), nullable=True),
    sa.Column("payout_reference", sa.String(128), nullable=True),
    sa.Column("payout_entry_id", Id, nullable=True),
    sa.Index("ix_finance_settlements_shop", "shop", "period_start"),
    # A double-submitted settlement cannot exist twice.
    sa.UniqueConstraint("shop", "period_start", name="uq_finance_settlements_period"),
)
