"""Promotion tables: campaigns, coupon templates and coupons, and what orders used.

Every counter here is backed by rows and only ever moves through a
conditional UPDATE (or a conditional upsert) in the transaction that writes
those rows, so a counter always equals what its rows say:

- ``promotion_campaigns.sold`` = the ``units`` of the campaign's ``held`` and
  ``used`` rows in ``promotion_usages`` (flash-sale promotional units);
- ``promotion_buyers.units`` = the same, for one customer;
- ``promotion_templates.issued`` = the template's rows in ``promotion_coupons``;
- ``promotion_claims.claimed`` = the customer's claimed and redeemed coupons of
  the template (grants are not counted: a grant is the platform's decision).
"""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Amount, Id, Time

metadata = sa.MetaData()

# A campaign (营销活动). ``shop`` NULL: a platform campaign (admins only),
# applying to the orders of every shop in its currency. ``rules`` is the
# type's rules as validated (see rules.py), read whole into the per-process cache.
campaigns = sa.Table(
    "promotion_campaigns",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("name", sa.String(100), nullable=False),
    # threshold_off | percent_off | flash_sale | buy_x_get_y | free_shipping
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),  # active | paused | ended
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("starts_at", Time(), nullable=False),
    sa.Column("ends_at", Time(), nullable=False),
    sa.Column("skus", JSON, nullable=False),  # [] = the whole shop (or platform)
    sa.Column("categories", JSON, nullable=False),  # catalog category ids (and their children)
    sa.Column("stacking_group", sa.String(64), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rules", JSON, nullable=False),
    # flash sales: promotional units the campaign holds, and how many are taken
    sa.Column("quantity", sa.Integer, nullable=True),
    sa.Column("sold", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Column("ended_by", sa.String(128), nullable=True),
    sa.Index("ix_promotion_campaigns_shop", "shop", "status", "id"),
    sa.CheckConstraint(
        "sold >= 0 AND (quantity IS NULL OR sold <= quantity)", name="ck_promotion_campaigns_sold"
    ),
)

# Flash-sale units each customer holds of a campaign (per-customer limit).
buyers = sa.Table(
    "promotion_buyers",
    metadata,
    sa.Column("campaign_id", Id, sa.ForeignKey("promotion_campaigns.id"), primary_key=True),
    sa.Column("customer", sa.String(128), primary_key=True),
    sa.Column("units", sa.Integer, nullable=False),
    sa.CheckConstraint("units >= 0", name="ck_promotion_buyers_units"),
)

# A coupon template (优惠券模板). ``shop`` NULL: a platform coupon.
templates = sa.Table(
    "promotion_templates",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),  # amount | percent
    sa.Column("value", Amount, nullable=False),  # minor units, or percent off (1..99)
    sa.Column("cap", Amount, nullable=True),  # percent coupons: the most it takes off
    sa.Column("min_spend", Amount, nullable=False, server_default="0"),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("skus", JSON, nullable=False),
    sa.Column("categories", JSON, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("issued", sa.Integer, nullable=False, server_default="0"),
    sa.Column("per_customer", sa.Integer, nullable=False),
    # validity: fixed dates, or valid_days from the claim (claims close at valid_to)
    sa.Column("valid_from", Time(), nullable=True),
    sa.Column("valid_to", Time(), nullable=True),
    sa.Column("valid_days", sa.Integer, nullable=True),
    sa.Column("claimable", sa.Boolean, nullable=False),  # customers may claim it themselves
    sa.Column("status", sa.String(8), nullable=False),  # active | paused | ended (no more issued)
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Column("ended_by", sa.String(128), nullable=True),
    sa.Index("ix_promotion_templates_shop", "shop", "status", "id"),
    sa.CheckConstraint("issued >= 0 AND issued <= total", name="ck_promotion_templates_issued"),
)

# Coupons claimed (or redeemed) by each customer of a template, for its per-customer limit.
claims = sa.Table(
    "promotion_claims",
    metadata,
    sa.Column("template_id", Id, sa.ForeignKey("promotion_templates.id"), primary_key=True),
    sa.Column("customer", sa.String(128), primary_key=True),
    sa.Column("claimed", sa.Integer, nullable=False),
)

# A coupon (优惠券). ``customer`` NULL: a batch code not redeemed yet.
# status: available | locked (by ``order_id``) | used (by ``order_id``) | expired.
coupons = sa.Table(
    "promotion_coupons",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("code", sa.String(32), nullable=False, unique=True),
    sa.Column("template_id", Id, sa.ForeignKey("promotion_templates.id"), nullable=False),
    sa.Column("shop", sa.String(64), nullable=True),
    sa.Column("customer", sa.String(128), nullable=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # claim | batch | grant
    sa.Column("reason", sa.String(200), nullable=False, server_default=""),
    sa.Column("valid_from", Time(), nullable=True),
    sa.Column("valid_to", Time(), nullable=True),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("issued_at", Time(), nullable=False),
    sa.Column("claimed_at", Time(), nullable=True),
    sa.Column("used_at", Time(), nullable=True),
    sa.Column("updated_at", Time(), nullable=False),
    # Not on status or order_id: locking and using a coupon then writes its row only.
    # A wallet is a customer's few coupons; an order finds its own by their codes.
    sa.Index("ix_promotion_coupons_wallet", "customer", "id"),
    sa.Index("ix_promotion_coupons_template", "template_id", "id"),
)

# What an order took: one row per campaign or coupon that gave it a discount
# (and the flash-sale units it holds). status: held (placed) | used (paid) |
# released (cancelled or closed unpaid) | refunded (fully refunded).
usages = sa.Table(
    "promotion_usages",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    sa.Column("campaign_id", Id, nullable=True),
    sa.Column("template_id", Id, nullable=True),
    sa.Column("coupon_id", Id, nullable=True),
    sa.Column("code", sa.String(64), nullable=False),  # the adjustment code
    sa.Column("discount", Amount, nullable=False),  # given, positive minor units
    sa.Column("units", sa.Integer, nullable=False, server_default="0"),  # flash-sale units
    sa.Column("gmv", Amount, nullable=False),  # the order's total
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_promotion_usages_order", "order_id"),
    sa.Index("ix_promotion_usages_campaign", "campaign_id", "status"),
    sa.Index("ix_promotion_usages_template", "template_id", "status"),
)

# Bumped in the transaction of every campaign change, per shop ('*' = the
# platform), so each process's campaign cache can tell it is stale with one read.
versions = sa.Table(
    "promotion_versions",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

PLATFORM = "*"
