"""Migrations and table definitions agree, per center, on SQLite and PostgreSQL."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mallcore.kernel.migrate import current
from mallcore.kernel.plugins import default_enabled, installed_centers

ALL = default_enabled(installed_centers())


def diff(kernel):
    combined = sa.MetaData()
    for metadata in kernel.metadatas.values():
        for table in metadata.tables.values():
            table.to_metadata(combined)
    with kernel.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return [
            change
            for change in compare_metadata(context, combined)
            if not (
                isinstance(change, tuple)
                and change[0] == "remove_table"
                and change[1].name == "alembic_version"
            )
        ]


def test_upgrading_a_fresh_database_builds_exactly_the_declared_tables(mallcore):
    kernel = mallcore.kernel(centers=ALL, migrate=True)
    assert diff(kernel) == []
    declared = {name for md in kernel.metadatas.values() for name in md.tables}
    with kernel.db.engine.connect() as conn:
        present = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    assert present == declared


def test_a_disabled_centers_branch_is_not_applied_and_upgrading_twice_is_harmless(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment"], migrate=True)
    with kernel.db.engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert "catalog_skus" in tables and "orders" in tables
    assert not {t for t in tables if t.startswith(("wms_", "tms_", "refund_", "finance_", "fee_"))}
    heads = current(kernel)
    kernel.upgrade()
    assert current(kernel) == heads


@pytest.mark.parametrize("center", [c for c in ALL if c not in ("catalog", "payment")])
def test_each_center_can_be_added_to_a_running_shop_later(mallcore, center):
    kernel = mallcore.kernel(centers=["catalog", "payment"], migrate=True)
    url = kernel.config.database
    grown = mallcore.kernel(
        centers=list(dict.fromkeys(["catalog", "payment", *kernel_requires(center), center])),
        config={"database": {"url": url.url, "schema": url.schema}},
        migrate=True,
    )
    assert diff(grown) == []


def kernel_requires(center):
    obj = installed_centers()[center].load()
    return list(getattr(obj, "requires", ()))
