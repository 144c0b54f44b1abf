"""Statistics per campaign and per coupon template, from the usage rows and the coupons.

- ``orders`` / ``discount`` / ``gmv``: paid orders that used it (usage
  ``used``), the discount it gave them and what those orders came to;
- ``refunded_orders``: paid, then fully refunded;
- templates add the coupons by state (``issued`` = every coupon made,
  ``claimed`` = in a customer's wallet, ``used``..., ``expired`` counting
  those whose validity ended unused);
- flash sales add ``units_sold`` (the sale's counter, equal to its rows).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mallcore.kernel import utcnow

from . import tables as t
from .schemas import CampaignStats, TemplateStats


def _usage(conn: sa.Connection, column: Any, key: int) -> dict[str, int]:
    u = t.usages.c
    rows = conn.execute(
        sa.select(
            u.status,
            sa.func.count(sa.distinct(u.order_id)),
            sa.func.coalesce(sa.func.sum(u.discount), 0),
            sa.func.coalesce(sa.func.sum(u.gmv), 0),
        )
        .where(column == key)
        .group_by(u.status)
    ).all()
    by = {status: (int(n), int(d), int(g)) for status, n, d, g in rows}
    used = by.get("used", (0, 0, 0))
    return {
        "orders": used[0],
        "discount": used[1],
        "gmv": used[2],
        "refunded_orders": by.get("refunded", (0, 0, 0))[0],
    }


def campaign_stats(conn: sa.Connection, row: Any) -> CampaignStats:
    return CampaignStats(
        campaign_id=row.id,
        currency=row.currency,
        units_sold=row.sold if row.type == "flash_sale" else None,
        **_usage(conn, t.usages.c.campaign_id, row.id),
    )


def template_stats(conn: sa.Connection, row: Any) -> TemplateStats:
    c = t.coupons.c
    late = sa.and_(c.status == "available", c.valid_to.is_not(None), c.valid_to <= utcnow())
    state = sa.case((late, "expired"), else_=c.status)
    states: dict[str, int] = dict(
        conn.execute(
            sa.select(state, sa.func.count())
            .where(c.template_id == row.id, c.customer.is_not(None))
            .group_by(state)
        ).all()
    )
    return TemplateStats(
        template_id=row.id,
        currency=row.currency,
        issued=row.issued,
        claimed=int(sum(states.values())),
        available=int(states.get("available", 0)),
        locked=int(states.get("locked", 0)),
        used=int(states.get("used", 0)),
        expired=int(states.get("expired", 0)),
        **_usage(conn, t.usages.c.template_id, row.id),
    )
