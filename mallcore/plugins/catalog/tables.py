"""Catalog tables: products (SPU), SKUs (variants), categories."""

from __future__ import annotations

import sqlalchemy as sa

from mallcore.kernel.columns import JSON, Id, Time

metadata = sa.MetaData()

categories = sa.Table(
    "catalog_categories",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("parent_id", Id, sa.ForeignKey("catalog_categories.id"), nullable=True),
    sa.Column("name", sa.String(200), nullable=False),
    # back: how the platform files goods; front: how shoppers browse them.
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("created_at", Time(), nullable=False),
)

# A front category shows goods of one or more back categories.
category_links = sa.Table(
    "catalog_category_links",
    metadata,
    sa.Column("front_id", Id, sa.ForeignKey("catalog_categories.id"), primary_key=True),
    sa.Column("back_id", Id, sa.ForeignKey("catalog_categories.id"), primary_key=True),
)

products = sa.Table(
    "catalog_products",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("category_id", Id, sa.ForeignKey("catalog_categories.id"), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("attrs", JSON, nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_catalog_products_shop", "shop", "id"),
)

skus = sa.Table(
    "catalog_skus",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("product_id", Id, sa.ForeignKey("catalog_products.id"), nullable=False),
    sa.Column("shop", sa.String(64), nullable=False),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("price", sa.BigInteger, nullable=False),
    sa.Column("weight_grams", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("attrs", JSON, nullable=True),
    sa.Column("created_at", Time(), nullable=False),
    sa.Column("updated_at", Time(), nullable=False),
    sa.Index("ix_catalog_skus_product", "product_id"),
)
