"""The membership center's tables.

- ``membership_members``: one row per customer, made on first use: level,
  growth of the current evaluation period, the spendable points balance and
  the points held by unpaid orders (both kept equal to the ledger by the
  writes that add its rows), this month's free-shipping vouchers.
- ``membership_points``: the points ledger. Every movement is a row with
  its ``delta`` on the spendable balance, the ``balance`` after it and what
  it was for (order, case, refund, reason). The member's ``points`` is the
  sum of the member's deltas; ``held`` is the sum of holds not released.
- ``membership_history``: level changes, growth, coupons granted (or not),
  with their reasons.
- ``membership_programs``: each shop's part in the program (points
  accepted, member price, SKUs left out of it), with a version row so every
  worker's cache notices a change (see :mod:`.programs`).
"""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel import columns

metadata = sa.MetaData()

members = sa.Table(
    "membership_members",
    metadata,
    sa.Column("customer", sa.String(128), primary_key=True),
    sa.Column("level", sa.String(32), nullable=False),
    # growth (成长值) of the current evaluation period, which started at period_start
    sa.Column("growth", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("lifetime_growth", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("period_start", columns.Time(), nullable=False),
    # spendable points (held ones excluded) and points held by unpaid orders
    sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("held", sa.BigInteger, nullable=False, server_default="0"),
    # free-shipping vouchers of voucher_month ("2025-06"): held by unpaid orders, used by paid ones
    sa.Column("voucher_month", sa.String(7), nullable=True),
    sa.Column("vouchers_held", sa.Integer, nullable=False, server_default="0"),
    sa.Column("vouchers_used", sa.Integer, nullable=False, server_default="0"),
    # the placement that took a voucher last (tells a placement whether its UPDATE took one)
    sa.Column("voucher_claim", sa.String(32), nullable=True),
    sa.Column("birthday", sa.Date, nullable=True),
    sa.Column("birthday_year", sa.Integer, nullable=True),  # last year a birthday coupon went out
    sa.Column("created_at", columns.Time(), nullable=False),
    sa.Column("updated_at", columns.Time(), nullable=False),
    sa.Index("ix_membership_members_level", "level", "customer"),
    sa.Index("ix_membership_members_period", "period_start"),
)

points = sa.Table(
    "membership_points",
    metadata,
    sa.Column("id", columns.Id, primary_key=True, autoincrement=True),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("at", columns.Time(), nullable=False),
    # earn | spend | hold | release | expire | clawback | return | adjust
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("delta", sa.BigInteger, nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),
    # how far below zero the balance is after this row (only a claw-back takes it there)
    sa.Column("debt", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("order_id", columns.Id, nullable=True),
    sa.Column("case_id", columns.Id, nullable=True),
    sa.Column("refund_id", columns.Id, nullable=True),
    sa.Column("reason", sa.String(300), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("data", columns.JSON, nullable=True),
    sa.Index("ix_membership_points_customer", "customer", "id"),
    sa.Index("ix_membership_points_order", "order_id", "kind"),
)

history = sa.Table(
    "membership_history",
    metadata,
    sa.Column("id", columns.Id, primary_key=True, autoincrement=True),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("at", columns.Time(), nullable=False),
    # level_up | level_down | level_set | growth | coupon_granted | coupon_not_granted | birthday_set
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("level_from", sa.String(32), nullable=True),
    sa.Column("level_to", sa.String(32), nullable=True),
    sa.Column("growth", sa.BigInteger, nullable=True),  # the change of growth, for kind growth
    sa.Column("order_id", columns.Id, nullable=True),
    sa.Column("reason", sa.String(300), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("data", columns.JSON, nullable=True),
    sa.Index("ix_membership_history_customer", "customer", "id"),
)

programs = sa.Table(
    "membership_programs",
    metadata,
    sa.Column("shop", sa.String(64), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("points", sa.Boolean, nullable=False),
    sa.Column("member_price", sa.Boolean, nullable=False),
    sa.Column("excluded_skus", columns.JSON, nullable=True),
    sa.Column("updated_by", sa.String(128), nullable=False),
    sa.Column("updated_at", columns.Time(), nullable=False),
)

versions = sa.Table(
    "membership_versions",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
)
