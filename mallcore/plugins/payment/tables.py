"""Payment tables: our payments and refunds, webhook receipts, the sandbox's own ledger."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Id, Time

metadata = sa.MetaData()

payments = sa.Table(
    "payment_payments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    # pending | captured | failed | refunded | partially_refunded
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(128), nullable=True),
    sa.Column("failure", sa.String(200), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_payment_payments_order", "order_id"),
    sa.UniqueConstraint("provider", "reference", name="uq_payment_payments_reference"),
)

refunds = sa.Table(
    "payment_refunds",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("payment_id", Id, sa.ForeignKey("payment_payments.id"), nullable=False),
    sa.Column("order_id", Id, nullable=False),
    # the kernel's refund this pays out; none for a capture refunded because it came too late
    sa.Column("refund_id", Id, nullable=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("reference", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Index("ix_payment_refunds_order", "order_id"),
)

webhook_events = sa.Table(
    "payment_webhook_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("type", sa.String(64), nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("received_at", Time(), nullable=False),
    sa.UniqueConstraint("provider", "event_id", name="uq_payment_webhook_events"),
)

# What the sandbox provider itself recorded: its side of reconciliation.
sandbox_ledger = sa.Table(
    "payment_sandbox_ledger",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # charge | refund
    sa.Column("reference", sa.String(128), nullable=False, unique=True),
    sa.Column("original_reference", sa.String(128), nullable=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # succeeded | pending | failed
    sa.Column("occurred_at", Time(), nullable=False),
    sa.Index("ix_payment_sandbox_ledger_time", "occurred_at"),
)
