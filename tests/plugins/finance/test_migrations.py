"""The finance Alembic branch builds exactly the declared tables."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from .kit import Shop


def test_the_migration_matches_the_declared_tables(mallcore):
    # catalog is left out: finance needs only payment (and catalog's own branch is not ours to test)
    kernel = mallcore.kernel(centers=["payment", "finance"], migrate=True)
    combined = sa.MetaData()
    for md in kernel.metadatas.values():
        for table in md.tables.values():
            table.to_metadata(combined)
    with kernel.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        changes = [
            change
            for change in compare_metadata(context, combined)
            if not (isinstance(change, tuple) and change[0] == "remove_table")
        ]
        present = set(sa.inspect(conn).get_table_names())
    metadata = kernel.metadatas["finance"]
    assert changes == []
    assert set(metadata.tables) <= present


def test_finance_starts_with_its_settings_checked(mallcore):
    import pytest

    from mallcore.kernel import StartupError

    with pytest.raises(StartupError, match="payout_account"):
        mallcore.kernel(
            centers=["catalog", "payment", "finance"], settings={"finance": {"payout_account": "commission"}}
        )
    with pytest.raises(StartupError, match="commission_bp"):
        mallcore.kernel(
            centers=["catalog", "payment", "finance"], settings={"finance": {"commission_bp": 20000}}
        )
    # Review from 2000 but two approvals above 1000: refunds of 1000-2000 would skip review.
    with pytest.raises(StartupError, match="review_from_amount") as refused:
        mallcore.kernel(
            centers=["catalog", "payment", "finance"],
            settings={"finance": {"review_from_amount": 2000, "second_approval_above": 1000}},
        )
    assert "centers.finance" in str(refused.value) and "second_approval_above" in str(refused.value)
    # equal is fine: below it no review, above it two approvals
    mallcore.kernel(
        centers=["catalog", "payment", "finance"],
        settings={"finance": {"review_from_amount": 1000, "second_approval_above": 1000}},
    )
    shop = Shop(mallcore, settings={"commission_bp": 0})
    order = shop.paid_order([("TEE", 1)])
    shop.deliver(order["id"])
    assert shop.balance("commission") == 0
