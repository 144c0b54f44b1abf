"""Migrations, demo data and settings of the WMS center."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mallcore.kernel import ConfigError, StartupError
from mallcore.kernel.demo import seed

from .helpers import check_invariants, stock_levels


def diff(kernel):
    """What Alembic would change to make the migrated database match the declared tables."""
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


def test_migrations_build_the_declared_tables(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "wms"], migrate=True)
    assert diff(kernel) == []


def test_demo_stocks_every_sku_in_three_regions_and_can_run_twice(mallcore):
    kernel = mallcore.kernel(centers=["catalog", "payment", "wms"])
    lines = seed(kernel)
    assert any(line.strip().startswith("wms: warehouses SH") for line in lines)
    levels = stock_levels(kernel)
    skus = {sku for sku, _ in levels}
    assert {"SH", "GZ", "BJ"} == {wh for _, wh in levels}
    assert len(skus) * 3 == len(levels) and len(skus) >= 3
    seed(kernel)
    assert levels == stock_levels(kernel)
    check_invariants(kernel)


@pytest.mark.parametrize(
    "bad",
    [{"reserve_on": "ship"}, {"unpaid_hold_minutes": -1}, {"max_split": 0}, {"colour": "red"}],
)
def test_bad_settings_stop_start_up(mallcore, bad):
    with pytest.raises((ConfigError, StartupError)) as err:
        mallcore.kernel(centers=["catalog", "payment", "wms"], settings={"wms": bad})
    assert "wms" in str(err.value)
