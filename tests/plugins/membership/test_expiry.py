"""Points expire in lots, oldest first, at the configured age, by a job."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from mallcore.kernel import utcnow
from mallcore.plugins.membership import tables as t

from .kit import Shop


def lot(shop, customer, points, days_ago):
    """Give points as if ``days_ago`` days ago."""
    row = shop.give(customer, points, reason=f"lot of {days_ago} days")
    with shop.kernel.db.transaction() as conn:
        conn.execute(
            t.points.update().where(t.points.c.id == row["id"]).values(at=utcnow() - timedelta(days=days_ago))
        )


def test_spending_takes_the_oldest_lots_first_and_the_job_expires_what_is_left_of_old_ones(mallcore):
    shop = Shop(mallcore)
    lot(shop, "alice", 100, 400)  # past the year
    lot(shop, "alice", 50, 100)
    order = shop.placed(lines=[("CAP", 1)], points=30)
    shop.pay(order)  # 30 of the oldest lot are gone: 70 of it are left
    assert shop.center.expiry.run() == 70
    assert shop.center.expiry.run() == 0  # a second run expires nothing more
    last = shop.ledger()[-1]
    assert (last["kind"], last["delta"], last["balance"]) == ("expire", -70, 50)
    assert "expired (365 days)" in last["reason"]
    # the 50 of the younger lot go when they are a year old, and the page says so a month ahead
    assert shop.center.expiry.run(utcnow() + timedelta(days=264)) == 0
    with shop.kernel.db.transaction() as conn:
        conn.execute(
            t.points.update().where(t.points.c.delta == 50).values(at=utcnow() - timedelta(days=350))
        )
    assert shop.member()["expiring"]["points"] == 50
    shop.invariant()


def test_points_held_by_an_unpaid_order_do_not_expire_until_it_is_cancelled(mallcore):
    shop = Shop(mallcore)
    lot(shop, "alice", 500, 400)
    order = shop.placed(points=500)
    assert shop.center.expiry.run() == 0
    shop.cancel(order)
    assert shop.center.expiry.run() == 500
    assert (shop.member()["points"], shop.member()["held"]) == (0, 0)
    with shop.kernel.db.transaction(write=False) as conn:
        kinds = conn.execute(sa.select(t.points.c.kind).order_by(t.points.c.id)).scalars().all()
    assert kinds == ["adjust", "hold", "release", "expire"]
    shop.invariant()


def test_expiry_can_be_turned_off(mallcore):
    shop = Shop(mallcore, membership={"expire_after_days": 0})
    lot(shop, "alice", 500, 4000)
    assert shop.center.expiry.run() == 0
    assert shop.member()["expiring"] is None
