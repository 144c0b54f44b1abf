"""WMS tables: warehouses, stock per SKU and warehouse, the movement ledger, reservations.

Two invariants hold for every (sku, warehouse), and the tests check them:

- each stock column (``on_hand``, ``reserved``, ``b_grade``, ``quarantine``)
  equals the sum of the same column over that pair's movements: every change
  of stock is a movement row (who, when, why, which order line);
- ``reserved`` equals the sum of ``quantity`` over the pair's ``live``
  reservations.

``on_hand - reserved`` is what can be sold; the database itself refuses a
row where it would go negative (``ck_wms_stock_levels``), as a last guard
behind the conditional updates that keep it so.
"""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import Id, Time

metadata = sa.MetaData()

# Platform objects: every shop's goods may sit in any warehouse.
warehouses = sa.Table(
    "wms_warehouses",
    metadata,
    sa.Column("code", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    # Delivery-region code (GB/T 2260 style, e.g. "310000"); nearness is by shared prefix.
    sa.Column("region", sa.String(16), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Breaks ties between equally near warehouses: lower first.
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    # Where customers send returns (the after-sale case tells them): who receives, where.
    sa.Column("contact", sa.String(100), nullable=True),
    sa.Column("phone", sa.String(32), nullable=True),
    sa.Column("province", sa.String(64), nullable=True),
    sa.Column("city", sa.String(64), nullable=True),
    sa.Column("district", sa.String(64), nullable=True),
    sa.Column("street", sa.String(300), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
)

stock = sa.Table(
    "wms_stock",
    metadata,
    sa.Column("sku", sa.String(64), primary_key=True),
    sa.Column("warehouse", sa.String(32), sa.ForeignKey("wms_warehouses.code"), primary_key=True),
    # Sellable units physically in the warehouse, reserved ones included.
    sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
    # Units held for orders not yet dispatched.
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    # Returned units kept apart, never sold as new.
    sa.Column("b_grade", sa.Integer, nullable=False, server_default="0"),
    sa.Column("quarantine", sa.Integer, nullable=False, server_default="0"),
    sa.CheckConstraint(
        "reserved >= 0 AND on_hand >= reserved AND b_grade >= 0 AND quarantine >= 0",
        name="ck_wms_stock_levels",
    ),
    sa.Index("ix_wms_stock_warehouse", "warehouse"),
)

# The ledger: deltas per stock column. Never updated, never deleted.
movements = sa.Table(
    "wms_movements",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("warehouse", sa.String(32), nullable=False),
    # inbound | outbound | reserve | release | stocktake | return_restock |
    # transfer_out | transfer_in
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("on_hand", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reserved", sa.Integer, nullable=False, server_default="0"),
    sa.Column("b_grade", sa.Integer, nullable=False, server_default="0"),
    sa.Column("quarantine", sa.Integer, nullable=False, server_default="0"),
    sa.Column("order_id", Id, nullable=True),
    sa.Column("line_id", Id, nullable=True),
    # What the movement belongs to: "after_sale:3", "transfer:<id>", "stocktake:<id>".
    sa.Column("ref", sa.String(64), nullable=True),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("reason", sa.String(300), nullable=False, server_default=""),
    sa.Column("at", Time(), nullable=False),
    sa.Index("ix_wms_movements_sku", "sku", "warehouse", "id"),
    sa.Index("ix_wms_movements_order", "order_id"),
)

reservations = sa.Table(
    "wms_reservations",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("order_id", Id, nullable=False),
    sa.Column("line_id", Id, nullable=False),
    sa.Column("sku", sa.String(64), nullable=False),
    sa.Column("warehouse", sa.String(32), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    # live | released | consumed
    sa.Column("status", sa.String(12), nullable=False),
    # When an unpaid order's hold runs out (None once paid or reserved at payment).
    sa.Column("expires_at", Time(), nullable=True),
    # Set on the record of units cut from the order before shipment ("after_sale:3").
    sa.Column("ref", sa.String(64), nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_wms_reservations_order", "order_id"),
)

# Catalog SKUs, read for their shop (whose staff may move their stock). Not a
# WMS table: only these two columns of the catalog's table are relied on.
catalog_skus = sa.table("catalog_skus", sa.column("code", sa.String), sa.column("shop", sa.String))
