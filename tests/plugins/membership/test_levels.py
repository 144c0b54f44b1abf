"""Levels: an upgrade as soon as growth crosses a threshold, downgrades by the re-evaluation job,
coupons through the promotion center's hook, every change on the member's history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from mallcore.kernel import Center, Conflict, hookimpl, utcnow
from mallcore.plugins.membership import tables as t

from .kit import Shop

LEVELS = {
    "levels": ["normal", "silver", "gold"],
    "level": {
        "normal": {"name": "Member", "zh": "普通会员"},
        "silver": {
            "name": "Silver",
            "zh": "白银会员",
            "growth": 100,
            "upgrade_coupon": 7,
            "birthday_coupon": 9,
        },
        "gold": {
            "name": "Gold",
            "zh": "黄金会员",
            "growth": 200,
            "upgrade_coupon": 8,
            "member_discount_bp": 1000,
        },
    },
}


class Coupons(Center):
    """A stand-in for the promotion center's side of ``coupon_grant``; template 8 is used up."""

    name = "coupons"

    def __init__(self) -> None:
        super().__init__()
        self.granted: list[tuple[str, int, str]] = []

    @hookimpl
    def coupon_grant(self, kernel, conn, customer, template, reason, source):
        if template == 8:
            raise Conflict("template 8 is used up", code="coupon_template_exhausted")
        self.granted.append((customer, template, source))
        return f"C{len(self.granted)}"


def history(shop, customer="alice"):
    rows = shop.customer(customer).get("/membership/me/history?limit=200").json()
    return [(h["kind"], h["level_from"], h["level_to"], h["reason"]) for h in reversed(rows)]


def test_crossing_a_threshold_upgrades_at_once_with_the_coupons_of_every_level_reached(mallcore):
    shop = Shop(mallcore, extra=(Coupons,), membership=LEVELS)
    order = shop.placed(lines=[("TEE", 2)])  # 200.00: growth 200, past silver and gold
    shop.pay(order)
    assert shop.member()["level"] == "normal"  # paid is not enough: the goods must be the customer's
    shop.complete(order)
    me = shop.member()
    assert (me["level"], me["growth"], me["next_level"], me["growth_to_next"]) == ("gold", 200, None, None)
    kinds = history(shop)
    assert kinds[0][0] == "growth"
    assert kinds[1][:3] == ("level_up", "normal", "gold")
    assert "growth 200 reached Gold (200)" in kinds[1][3]
    assert kinds[2][0] == "coupon_granted" and "coupon C1" in kinds[2][3]
    assert kinds[3][0] == "coupon_not_granted" and "coupon_template_exhausted" in kinds[3][3]
    assert shop.kernel.centers["coupons"].granted == [("alice", 7, "membership")]
    # the member price follows the new level on the next order
    assert shop.placed(lines=[("MUG", 1)])["total"] == 4_500


def test_without_a_promotion_center_an_upgrade_says_so_on_the_history_and_still_happens(mallcore):
    shop = Shop(mallcore, membership=LEVELS)
    order = shop.placed()
    shop.pay(order)
    shop.complete(order)
    assert shop.member()["level"] == "silver"
    assert history(shop)[-1][0] == "coupon_not_granted"
    assert "no promotion center answered" in history(shop)[-1][3]


def backdate(shop, customer, days, growth=None):
    m = t.members.c
    values = {"period_start": utcnow() - timedelta(days=days)}
    if growth is not None:
        values["growth"] = growth
    with shop.kernel.db.transaction() as conn:
        conn.execute(t.members.update().where(m.customer == customer).values(**values))


def test_the_re_evaluation_job_gives_the_level_the_period_earned_and_can_downgrade(mallcore):
    shop = Shop(mallcore, membership=LEVELS)
    for customer, level in [("alice", "gold"), ("bob", "gold"), ("carol", "silver"), ("dave", "silver")]:
        shop.set_level(customer, level)
    backdate(shop, "alice", 366, growth=150)  # a year with 150: silver next
    backdate(shop, "bob", 800, growth=500)  # two years ago; nothing since: back to the start
    backdate(shop, "carol", 100, growth=0)  # the period is not over
    backdate(shop, "dave", 400, growth=250)  # more than the level held: up
    assert shop.center.levels.reevaluate() == 3
    assert shop.center.levels.reevaluate() == 0  # a second run finds nothing due
    got = {c: (shop.member(c)["level"], shop.member(c)["growth"]) for c in ("alice", "bob", "carol", "dave")}
    assert got == {"alice": ("silver", 0), "bob": ("normal", 0), "carol": ("silver", 0), "dave": ("gold", 0)}
    kind, old, new, reason = history(shop, "alice")[-1]
    assert (kind, old, new) == ("level_down", "gold", "silver")
    assert "re-evaluation: growth 150 in the period ending" in reason
    assert history(shop, "dave")[-1][:3] == ("level_up", "silver", "gold")
    assert shop.member("alice")["period_end"] > utcnow().isoformat()


def test_admins_set_a_level_by_hand_with_a_reason_and_bad_levels_are_refused(mallcore):
    shop = Shop(mallcore, membership=LEVELS)
    r = shop.admin.put("/membership/members/alice/level", json={"level": "gold", "reason": "VIP by contract"})
    assert r.status_code == 200 and r.json()["level"] == "gold"
    assert history(shop)[-1] == ("level_set", "normal", "gold", "VIP by contract")
    unknown = shop.admin.put("/membership/members/alice/level", json={"level": "diamond", "reason": "x"})
    assert (unknown.status_code, unknown.json()["code"]) == (422, "level_unknown")
    same = shop.admin.put("/membership/members/alice/level", json={"level": "gold", "reason": "x"})
    assert (same.status_code, same.json()["code"]) == (409, "level_unchanged")
    bare = shop.admin.put("/membership/members/alice/level", json={"level": "silver", "reason": ""})
    assert bare.status_code == 400
    merchant = shop.merchant.put("/membership/members/alice/level", json={"level": "silver", "reason": "x"})
    assert (merchant.status_code, merchant.json()["code"]) == (403, "role_required")


def test_a_birthday_is_set_once_and_brings_the_levels_coupon_once_a_year(mallcore):
    shop = Shop(mallcore, extra=(Coupons,), membership=LEVELS)
    shop.set_level("alice", "silver")
    today = shop.center.local(utcnow()).date()
    birthday = date(1990, today.month, min(today.day, 28))
    assert shop.customer().put("/membership/me", json={"birthday": birthday.isoformat()}).status_code == 200
    again = shop.customer().put("/membership/me", json={"birthday": "1991-01-01"})
    assert (again.status_code, again.json()["code"]) == (409, "birthday_already_set")
    future = shop.customer("bob").put("/membership/me", json={"birthday": "2999-01-01"})
    assert (future.status_code, future.json()["code"]) == (422, "birthday_invalid")
    on_the_day = datetime.combine(birthday.replace(year=today.year), datetime.min.time(), UTC) + timedelta(
        hours=6
    )
    assert shop.center.levels.birthdays(on_the_day) == 1
    assert shop.center.levels.birthdays(on_the_day) == 0
    assert shop.kernel.centers["coupons"].granted == [("alice", 9, "membership")]
    with shop.kernel.db.transaction(write=False) as conn:
        year = conn.execute(
            sa.select(t.members.c.birthday_year).where(t.members.c.customer == "alice")
        ).scalar()
    assert year == today.year
