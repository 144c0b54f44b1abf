"""``mallcore demo``: the demo's customers as members at two levels, with points to spend."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import format_amount

from . import tables as t
from .ledger import Move

if TYPE_CHECKING:
    from . import MembershipCenter

REASON = "demo: welcome points"
# (customer, level, points): the demo's two customers.
MEMBERS = (("alice", -1, 5_000), ("bob", 1, 1_000))


def seed(center: MembershipCenter, demo: Any) -> None:
    ladder = center.ladder
    kernel = center.kernel
    notes = []
    for customer, rank, points in MEMBERS:
        level = ladder.codes[rank] if len(ladder.codes) > 1 else ladder.base
        with kernel.db.transaction() as conn:
            p = t.points.c
            seeded = conn.execute(
                sa.select(p.id).where(p.customer == customer, p.reason == REASON).limit(1)
            ).first()
            if seeded is None:
                center.ledger.ensure(conn, customer)
                current = conn.execute(
                    sa.select(t.members.c.level).where(t.members.c.customer == customer)
                ).scalar_one()
                if current != level:
                    center.levels.change(
                        conn, customer, current, level, "level_set", "demo member", actor="demo"
                    )
                center.ledger.write(
                    conn, customer, [Move(kind="adjust", delta=points, reason=REASON)], actor="demo"
                )
        lv = ladder.get(level)
        worth = format_amount(points * center.settings.point_value, center.currency)
        notes.append(f"{customer} {lv.name} ({lv.zh}), {points} points (worth {worth})")
    demo.notes.append(
        "membership: " + "; ".join(notes) + '; spend points with "points": N on POST /orders, '
        "see GET /membership/me"
    )
