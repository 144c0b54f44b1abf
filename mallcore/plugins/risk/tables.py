"""Risk tables: lists, rules, decisions, the review queue, customers' credit, reports."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Id, Time

metadata = sa.MetaData()

# Block / review / allow entries. ``shop`` NULL is the platform's list (every
# order); a shop's entries apply to that shop's orders only. ``value`` is stored
# normalised (see :mod:`.normalize`), so lookups are exact. Removing an entry
# keeps the row (``removed_at``) for the audit trail.
lists = sa.Table(
    "risk_lists",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(16), nullable=False),  # customer | phone | address | ip | cidr | device
    sa.Column("value", sa.String(200), nullable=False),
    # what staff entered, for people (an address as typed; the value is its fingerprint)
    sa.Column("label", sa.String(300), nullable=True),
    sa.Column("action", sa.String(8), nullable=False),  # block | review | allow
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # staff | report
    sa.Column("report_id", Id, nullable=True),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("expires_at", Time(), nullable=True),
    sa.Column("removed_by", sa.String(128), nullable=True),
    sa.Column("removed_at", Time(), nullable=True),
    sa.Index("ix_risk_lists_lookup", "kind", "value"),
    sa.Index("ix_risk_lists_shop", "shop", "id"),
)

# Rules written through the API (rules from config live in memory only).
rules = sa.Table(
    "risk_rules",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("condition", sa.Text, nullable=False),
    sa.Column("action", sa.String(8), nullable=False),  # allow | review | block
    sa.Column("score", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stages", JSON, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_by", sa.String(128), nullable=True),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Column("removed_at", Time(), nullable=True),
    sa.Index("ix_risk_rules_shop", "shop", "id"),
)

# Bumped in the transaction of every change to lists or rules, so each
# process's caches can tell they are stale with one cheap read.
versions = sa.Table(
    "risk_versions",
    metadata,
    sa.Column("name", sa.String(16), primary_key=True),  # lists | rules
    sa.Column("version", sa.Integer, nullable=False),
)

# One row per evaluation: what was known, what fired, what was decided.
decisions = sa.Table(
    "risk_decisions",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("stage", sa.String(16), nullable=False),  # place | pay | after_sale | refund
    sa.Column("order_id", Id, nullable=True),  # NULL for a refused placement
    sa.Column("case_id", Id, nullable=True),
    sa.Column("refund_id", Id, nullable=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    # after_sale: the case's type (counts refund-only requests per customer)
    sa.Column("case_type", sa.String(16), nullable=True),
    sa.Column("action", sa.String(8), nullable=False),  # allow | review | block
    sa.Column("score", sa.Integer, nullable=False),
    sa.Column("rules", JSON, nullable=True),  # every rule that fired
    sa.Column("lists", JSON, nullable=True),  # every list entry that matched
    sa.Column("facts", JSON, nullable=False),
    sa.Column("signals", JSON, nullable=False),
    sa.Column("errors", JSON, nullable=True),  # rules that failed to evaluate
    sa.Column("created_at", Time(), nullable=False),
    # Written on every placement: two indexes only (each costs the INSERT about as
    # much as the row itself, measured). Lists by shop or stage read the primary
    # key backwards, newest first.
    sa.Index("ix_risk_decisions_order", "order_id"),
    sa.Index("ix_risk_decisions_customer", "customer", "id"),
)

# The review queue: one row per held order, after-sale case or refund.
reviews = sa.Table(
    "risk_reviews",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("decision_id", Id, sa.ForeignKey("risk_decisions.id"), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # order | case | refund
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("case_id", Id, nullable=True),
    sa.Column("refund_id", Id, nullable=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # open | released | rejected
    sa.Column("score", sa.Integer, nullable=False),
    # other centers reviewing the same refund (finance): release leaves it to them
    sa.Column("co_reviewers", JSON, nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("decided_at", Time(), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Index("ix_risk_reviews_queue", "status", "id"),
    sa.Index("ix_risk_reviews_order", "order_id"),
    sa.Index("ix_risk_reviews_refund", "refund_id"),
)

# 信用分: one row per customer risk has seen, the score and what fed it.
profiles = sa.Table(
    "risk_profiles",
    metadata,
    sa.Column("customer", sa.String(128), primary_key=True),
    sa.Column("credit", sa.Integer, nullable=False),
    sa.Column("first_seen_at", Time(), nullable=False),
    sa.Column("completed_orders", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rejected_reviews", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chargebacks", sa.Integer, nullable=False, server_default="0"),
    sa.Column("abusive_refunds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", Time(), nullable=False),
)

credit_events = sa.Table(
    "risk_credit_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("customer", sa.String(128), nullable=False),
    # order_completed | review_rejected | chargeback | abusive_refund | report_confirmed
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("delta", sa.Integer, nullable=False),
    sa.Column("credit", sa.Integer, nullable=False),  # the score after it
    sa.Column("order_id", Id, nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("at", Time(), nullable=False),
    sa.Index("ix_risk_credit_events_customer", "customer", "id"),
    # each worker looks for recent changes to forget cached profiles
    sa.Index("ix_risk_credit_events_at", "at"),
)

# 恶意买家 reports by merchants, decided by risk staff.
reports = sa.Table(
    "risk_reports",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("reason", sa.String(500), nullable=False),
    sa.Column("reported_by", sa.String(128), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # open | confirmed | dismissed
    sa.Column("entries", JSON, nullable=True),  # list entry ids a confirmation added
    sa.Column("decided_by", sa.String(128), nullable=True),
    sa.Column("decided_at", Time(), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Index("ix_risk_reports_queue", "status", "id"),
    sa.Index("ix_risk_reports_shop", "shop", "id"),
)
