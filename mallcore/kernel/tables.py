"""The kernel's own tables (SQLAlchemy Core), in the ``kernel`` Alembic branch.

Centers keep their tables in their own ``MetaData`` with their name as the
table prefix; they refer to kernel rows by id (``order_id``, ``line_id``).
"""

from __future__ import annotations

import sqlalchemy as sa

from .columns import JSON, Amount, Id, Time

metadata = sa.MetaData()


shops = sa.Table(
    "shops",
    metadata,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("subtotal", Amount, nullable=False),
    sa.Column("discount", Amount, nullable=False),
    sa.Column("shipping", Amount, nullable=False),
    sa.Column("fees", Amount, nullable=False),
    sa.Column("total", Amount, nullable=False),
    sa.Column("paid", Amount, nullable=False, server_default="0"),
    sa.Column("refunded", Amount, nullable=False, server_default="0"),
    sa.Column("address", JSON, nullable=True),
    sa.Column("coupons", JSON, nullable=True),
    sa.Column("points", sa.Integer, nullable=False, server_default="0"),
    sa.Column("parent_id", Id, nullable=True),
    sa.Column("hold", sa.String(200), nullable=True),
    sa.Column("extra", JSON, nullable=True),
    sa.Column("placed_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    # The price adjustments, in the order they were applied: a list of {source, reason,
    # amount, phase, line_no, code, funded_by, allocation: {line_no: share}} (line
    # numbers, known when the row is written; OrderStore.load_adjustments gives line ids).
    # On the order row rather than rows of their own: placement writes no statement and
    # no table or index pages for them (see docs/benchmarks.md).
    sa.Column("adjustments", JSON, nullable=True),
    sa.Index("ix_orders_customer", "customer", "id"),
    sa.Index("ix_orders_shop_status", "shop", "status"),
    sa.Index("ix_orders_status_updated", "status", "updated_at"),
    # The staff console: figures and lists by placement time, per shop and platform-wide; held orders.
    sa.Index("ix_orders_shop_placed", "shop", "placed_at"),
    sa.Index("ix_orders_placed", "placed_at"),
    sa.Index("ix_orders_hold", "hold"),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("unit_price", Amount, nullable=False),
    sa.Column("subtotal", Amount, nullable=False),
    sa.Column("discount", Amount, nullable=False),
    sa.Column("shipping", Amount, nullable=False),
    sa.Column("fees", Amount, nullable=False),
    sa.Column("total", Amount, nullable=False),
    sa.Column("weight_grams", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attrs", JSON, nullable=True),
    sa.Index("ix_order_lines_order", "order_id"),
)

order_timeline = sa.Table(
    "order_timeline",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("at", Time(), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("messages", JSON, nullable=True),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Column("ref", sa.String(64), nullable=True),
    sa.Column("data", JSON, nullable=True),
    sa.Index("ix_order_timeline_order", "order_id", "id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(128), nullable=False),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("created_at", Time(), nullable=False),
)

# Where each relay (NATS, ...) has got to in the outbox.
outbox_cursors = sa.Table(
    "outbox_cursors",
    metadata,
    sa.Column("relay", sa.String(64), primary_key=True),
    sa.Column("position", Id, nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("subject", sa.String(128), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Time(), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(128), nullable=False),
    sa.Column("roles", JSON, nullable=False),
    sa.Column("shop", sa.String(64), nullable=True),
    # staff of the whole platform (staff tokens carry a shop or this flag)
    sa.Column("platform", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("label", sa.String(200), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("revoked_at", Time(), nullable=True),
)

# Customers' tracking links revoked one by one (kernel/signing.py: the link format).
tracking_revocations = sa.Table(
    "tracking_link_revocations",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("revoked_by", sa.String(128), nullable=False),
    sa.Column("revoked_at", Time(), nullable=False),
)

refunds = sa.Table(
    "order_refunds",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", Amount, nullable=False),
    sa.Column("shipping", Amount, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(64), nullable=True),
    sa.Column("requested_by", sa.String(128), nullable=False),
    sa.Column("reviewers", JSON, nullable=True),
    sa.Column("provider_ref", sa.String(128), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    # why each reviewing center holds it: {center: reason} (Refund.require_review)
    sa.Column("review_reasons", JSON, nullable=True),
    # context from the requesting center, e.g. who approved the case
    sa.Column("data", JSON, nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_order_refunds_order", "order_id"),
    sa.Index("ix_order_refunds_status", "status", "shop"),
)

refund_lines = sa.Table(
    "order_refund_lines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("refund_id", Id, sa.ForeignKey("order_refunds.id"), nullable=False),
    sa.Column("line_id", Id, nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("amount", Amount, nullable=False),
    # the part of ``amount`` that is freight
    sa.Column("shipping", Amount, nullable=False, server_default="0"),
    sa.Index("ix_order_refund_lines_refund", "refund_id"),
)

kernel_meta = sa.Table(
    "kernel_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# A job runs on one worker at a time: the one holding an unexpired lease.
job_leases = sa.Table(
    "job_leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("expires_at", Time(), nullable=False),
    sa.Column("last_run_at", Time(), nullable=True),
)
