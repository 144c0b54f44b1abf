from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from mallcore.kernel import fast
from mallcore.kernel import tables as t

MOMENTS = [
    datetime(2026, 12, 3, 7, 31, 55, 32305, tzinfo=UTC),
    datetime(2026, 1, 1, 0, 0, tzinfo=UTC),  # no microseconds: still written with them
    datetime(2026, 6, 1, 8, 0, 0, 5, tzinfo=timezone(timedelta(hours=8))),  # stored as UTC
]


def test_a_precompiled_statement_stores_datetimes_exactly_as_sqlalchemy_does(mallcore):
    """Rows written on the driver and through SQLAlchemy compare, sort and read back alike."""
    kernel = mallcore.kernel()
    insert = fast.insert(
        t.order_timeline, ("order_id", "at", "kind", "actor", "message", "public"), kernel.db
    )
    row = {"kind": "test", "actor": "test", "message": "m", "public": True}
    with kernel.db.transaction() as conn:
        for i, at in enumerate(MOMENTS):
            insert.execute(conn, {**row, "order_id": 1000 + i, "at": at})
            conn.execute(t.order_timeline.insert().values(**row, order_id=2000 + i, at=at))
    c = t.order_timeline.c
    with kernel.db.transaction(write=False) as conn:
        # The text as stored (SQLite) or the value (PostgreSQL): the same either way.
        stored = dict(conn.execute(sa.select(c.order_id, sa.cast(c.at, sa.String))).all())
        read = dict(conn.execute(sa.select(c.order_id, c.at)).all())
    for i, at in enumerate(MOMENTS):
        assert stored[2000 + i] == stored[1000 + i]
        assert at == read[1000 + i] == read[2000 + i]


def test_a_naive_datetime_is_refused_by_a_precompiled_statement_too(mallcore):
    kernel = mallcore.kernel()
    insert = fast.insert(
        t.order_timeline, ("order_id", "at", "kind", "actor", "message", "public"), kernel.db
    )
    row = {"order_id": 1, "kind": "test", "actor": "test", "message": "m", "public": True}
    with pytest.raises(Exception, match="naive datetime"), kernel.db.transaction() as conn:
        insert.execute(conn, {**row, "at": datetime(2026, 1, 1)})
