"""After-sale tables: cases and the order lines (and units) each one claims."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Amount, Id, Time

metadata = sa.MetaData()

cases = sa.Table(
    "refund_cases",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    # refund_only | return_refund | exchange | repair
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Column("reason_text", sa.String(500), nullable=False, server_default=""),
    # had the order left the warehouse when the case was opened?
    sa.Column("shipped", sa.Boolean, nullable=False),
    sa.Column("refund_id", Id, nullable=True),
    sa.Column("refund_status", sa.String(32), nullable=True),
    sa.Column("refund_amount", Amount, nullable=False, server_default="0"),
    sa.Column("replacement_order_id", Id, nullable=True),
    sa.Column("approved_by", sa.String(128), nullable=True),
    sa.Column("received_by", sa.String(128), nullable=True),
    sa.Column("return_parcel", JSON, nullable=True),
    sa.Column("pickup", JSON, nullable=True),
    sa.Column("inspections", JSON, nullable=True),
    sa.Column("replacement_skus", JSON, nullable=True),
    sa.Column("data", JSON, nullable=True),
    # Why a reacting center (risk) holds the case from every automatic decision
    # (``AfterSaleCase.hold``); NULL when not held. Staff see it, customers never.
    sa.Column("hold", sa.String(200), nullable=True),
    # the SLA timer: what happens (``timer``) when ``due_at`` passes
    sa.Column("due_at", Time(), nullable=True),
    sa.Column("timer", sa.String(32), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_refund_cases_order", "order_id"),
    sa.Index("ix_refund_cases_customer", "customer", "id"),
    sa.Index("ix_refund_cases_shop_status", "shop", "status"),
    sa.Index("ix_refund_cases_due", "due_at"),
    sa.Index("ix_refund_cases_replacement", "replacement_order_id"),
)

case_lines = sa.Table(
    "refund_case_lines",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("case_id", Id, sa.ForeignKey("refund_cases.id"), nullable=False),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("line_id", Id, nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    # units the warehouse has received back
    sa.Column("received", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_refund_case_lines_case", "case_id"),
    sa.Index("ix_refund_case_lines_order", "order_id"),
)
