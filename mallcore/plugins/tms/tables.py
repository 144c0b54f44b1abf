"""TMS tables: freight templates and their bindings, shipments, tracking events."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Id, Time

metadata = sa.MetaData()

# A freight template (运费模板). The pricing rules live in ``spec`` (JSON: the
# default rule, regional rules, free-shipping rules, regions not delivered),
# read whole into the per-process cache; nothing queries inside them.
templates = sa.Table(
    "tms_templates",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),  # piece | weight
    # warehouse code the template ships from; '' = any warehouse
    sa.Column("origin", sa.String(64), nullable=False, server_default=""),
    sa.Column("split", sa.String(16), nullable=False, server_default="once"),  # once | per_parcel
    sa.Column("spec", JSON, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("created_by", sa.String(128), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.UniqueConstraint("shop", "name", name="uq_tms_templates_name"),
)

# Which template prices a SKU (sku '' = the shop's default), per origin
# warehouse ('' = any). The primary key makes a binding unambiguous.
bindings = sa.Table(
    "tms_bindings",
    metadata,
    sa.Column("shop", sa.String(64), primary_key=True),
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("origin", sa.String(64), primary_key=True),
    sa.Column("template_id", Id, sa.ForeignKey("tms_templates.id"), nullable=False),
    sa.Index("ix_tms_bindings_template", "template_id"),
)

# Bumped in the transaction of every template change, so each process's
# template cache can tell it is stale with one cheap read.
versions = sa.Table(
    "tms_versions",
    metadata,
    sa.Column("shop", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

shipments = sa.Table(
    "tms_shipments",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("customer", sa.String(128), nullable=False),
    # outbound (order to customer) | return (customer's own waybill) | pickup (上门取件)
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("case_id", Id, nullable=True),
    sa.Column("carrier", sa.String(32), nullable=False),
    sa.Column("tracking_no", sa.String(64), nullable=False),
    # created | booked | picked_up | in_transit | out_for_delivery | delivered |
    # exception | pickup_failed | cancelled | superseded
    sa.Column("status", sa.String(24), nullable=False),
    # outbound: the warehouse it leaves; return/pickup: where it should arrive
    sa.Column("warehouse", sa.String(64), nullable=True),
    sa.Column("region", sa.String(16), nullable=True),  # destination region (outbound)
    sa.Column("lines", JSON, nullable=False),  # [[line_id, quantity], ...]
    sa.Column("weight_grams", sa.Integer, nullable=False, server_default="0"),
    # what the template says this parcel costs (the shop's view; the customer
    # paid the order's freight adjustment at placement)
    sa.Column("freight", sa.BigInteger, nullable=True),
    sa.Column("pickup", JSON, nullable=True),  # window, address, courier, code, attempt
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Column("picked_up_at", Time(), nullable=True),
    sa.Column("delivered_at", Time(), nullable=True),
    # occurred_at of the latest event that set the status (out-of-order check)
    sa.Column("last_event_at", Time(), nullable=True),
    # return/pickup: the stale clock runs from here; NULL = not watched
    sa.Column("watch_from", Time(), nullable=True),
    sa.Column("stale_at", Time(), nullable=True),
    sa.UniqueConstraint("carrier", "tracking_no", name="uq_tms_shipments_waybill"),
    sa.Index("ix_tms_shipments_order", "order_id"),
    sa.Index("ix_tms_shipments_case", "case_id"),
    sa.Index("ix_tms_shipments_shop", "shop", "id"),
    sa.Index("ix_tms_shipments_watch", "watch_from"),
)

events = sa.Table(
    "tms_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shipment_id", Id, sa.ForeignKey("tms_shipments.id"), nullable=False),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("carrier", sa.String(32), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("occurred_at", Time(), nullable=False),
    sa.Column("location", sa.String(200), nullable=False, server_default=""),
    sa.Column("description", sa.String(500), nullable=False, server_default=""),
    sa.Column("warehouse", sa.String(64), nullable=True),
    sa.Column("source", sa.String(16), nullable=False),  # carrier | staff | sandbox | review
    sa.Column("actor", sa.String(128), nullable=False),
    # the carrier's event id, or a hash of the content: replays are ignored
    sa.Column("event_key", sa.String(140), nullable=False),
    # False: recorded but did not change the status (late or out of order)
    sa.Column("applied", sa.Boolean, nullable=False),
    sa.Column("received_at", Time(), nullable=False),
    sa.UniqueConstraint("carrier", "event_key", name="uq_tms_events_key"),
    sa.Index("ix_tms_events_shipment", "shipment_id", "occurred_at"),
    sa.Index("ix_tms_events_order", "order_id"),
)

# Carrier events for waybills we do not know, kept for review (never dropped).
unknown_events = sa.Table(
    "tms_unknown_events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("carrier", sa.String(32), nullable=False),
    sa.Column("tracking_no", sa.String(64), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("occurred_at", Time(), nullable=False),
    sa.Column("location", sa.String(200), nullable=False, server_default=""),
    sa.Column("description", sa.String(500), nullable=False, server_default=""),
    sa.Column("warehouse", sa.String(64), nullable=True),
    sa.Column("event_key", sa.String(140), nullable=False),
    sa.Column("payload", JSON, nullable=False),
    sa.Column("received_at", Time(), nullable=False),
    sa.Column("resolved_at", Time(), nullable=True),
    sa.Column("resolution", sa.String(16), nullable=True),  # applied | duplicate | dismissed
    sa.Column("resolved_by", sa.String(128), nullable=True),
    sa.Column("note", sa.String(500), nullable=True),
    sa.UniqueConstraint("carrier", "event_key", name="uq_tms_unknown_events_key"),
    sa.Index("ix_tms_unknown_events_waybill", "carrier", "tracking_no"),
)

# The auto-complete clock of delivered orders (started in order_deliver).
completions = sa.Table(
    "tms_completions",
    metadata,
    sa.Column("order_id", Id, primary_key=True),
    sa.Column("delivered_at", Time(), nullable=False),
    sa.Column("due_at", Time(), nullable=False),
    sa.Column("completed_at", Time(), nullable=True),
    sa.Index("ix_tms_completions_due", "completed_at", "due_at"),
)
