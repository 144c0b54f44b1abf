"""Column types every center should use, so both databases behave alike.

- ``Id``: BIGINT on PostgreSQL, INTEGER on SQLite (the rowid alias, so
  autoincrement works).
- ``Time``: timezone-aware UTC datetimes on both (SQLite keeps no zone; we
  store UTC and give it back aware).
- ``JSON``: JSONB on PostgreSQL, JSON text on SQLite.
- ``Amount``: BIGINT minor units.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


class UTCDateTime(sa.TypeDecorator[datetime]):
    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; mallcore stores UTC-aware datetimes only")
        if dialect.name == "sqlite":
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Amount = sa.BigInteger
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
Time = UTCDateTime
