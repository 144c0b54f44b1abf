"""The membership migration builds exactly the declared tables (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext


def test_migration_matches_the_tables(mallcore):
    kernel = mallcore.kernel(centers=["membership"], migrate=True)
    combined = sa.MetaData()
    for metadata in kernel.metadatas.values():
        for table in metadata.tables.values():
            table.to_metadata(combined)
    with kernel.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        changes = [
            c
            for c in compare_metadata(context, combined)
            if not (isinstance(c, tuple) and c[0] == "remove_table" and c[1].name == "alembic_version")
        ]
        tables = set(sa.inspect(conn).get_table_names())
    assert changes == []
    assert {name for name in tables if name.startswith("membership_")} == set(
        kernel.metadatas["membership"].tables
    )
