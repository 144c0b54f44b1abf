"""Growth (成长值) and levels (等级): upgrades at once, downgrades at re-evaluation.

The rule, in one place:

- Growth comes from completed orders: one per ``growth_unit`` minor units
  paid for goods (after discounts and refunds, never freight). A refund
  after completion takes the refunded share back (growth never goes below
  zero, and a refund never lowers the level by itself).
- Crossing a threshold upgrades the member at once, with a history row
  saying which growth crossed which threshold, and the upgrade coupon of
  each level reached is granted through the ``coupon_grant`` hook.
- Every ``reevaluate_every_days`` after a member's period started, the
  re-evaluation job gives them the level the period's growth reaches
  (lower or higher than now), and growth starts again from zero for the new
  period. A member with no growth for a whole period falls to the first
  level.
- Staff may set a level by hand (with a reason); the next re-evaluation
  applies the rule again.
- Every change of level is on the member's history with its reason; so are
  coupons granted, and coupons that could not be (no promotion center
  answered, or the template is used up): the change itself never fails for
  a coupon.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Conflict, InvalidInput, MallcoreError, utcnow

from . import tables as t

if TYPE_CHECKING:
    from . import MembershipCenter


class Levels:
    def __init__(self, center: MembershipCenter) -> None:
        self.center = center

    @property
    def ladder(self) -> Any:
        return self.center.ladder

    # -- history -------------------------------------------------------------------

    def note(
        self,
        conn: sa.Connection,
        customer: str,
        kind: str,
        reason: str,
        *,
        actor: str,
        at: datetime | None = None,
        level_from: str | None = None,
        level_to: str | None = None,
        growth: int | None = None,
        order_id: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        conn.execute(
            t.history.insert().values(
                customer=customer,
                at=at or utcnow(),
                kind=kind,
                level_from=level_from,
                level_to=level_to,
                growth=growth,
                order_id=order_id,
                reason=reason[:300],
                actor=actor,
                data=data,
            )
        )

    # -- growth ----------------------------------------------------------------------

    def add_growth(
        self,
        conn: sa.Connection,
        customer: str,
        delta: int,
        reason: str,
        *,
        actor: str,
        order_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Add (or, for a refund, take back) growth; upgrade at once when a threshold is crossed."""
        if not delta:
            return
        at = at or utcnow()
        self.center.ledger.ensure(conn, customer, at)
        m = t.members.c
        grown = m.growth + delta
        row = conn.execute(
            t.members.update()
            .where(m.customer == customer)
            .values(
                growth=sa.case((grown < 0, 0), else_=grown),
                lifetime_growth=sa.case((m.lifetime_growth + delta < 0, 0), else_=m.lifetime_growth + delta),
                updated_at=at,
            )
            .returning(m.growth, m.level)
        ).one()
        self.note(conn, customer, "growth", reason, actor=actor, at=at, growth=delta, order_id=order_id)
        if delta < 0:
            return
        reached = self.ladder.for_growth(int(row.growth))
        if self.ladder.higher(reached, row.level):
            level = self.ladder.get(reached)
            self.change(
                conn,
                customer,
                row.level,
                reached,
                "level_up",
                f"growth {row.growth} reached {level.name} ({level.growth})",
                actor=actor,
                at=at,
                order_id=order_id,
            )
            for code in self.ladder.codes[
                self.ladder.rank.get(row.level, 0) + 1 : self.ladder.rank[reached] + 1
            ]:
                template = self.ladder.get(code).upgrade_coupon
                if template is not None:
                    name = self.ladder.get(code)
                    self.grant(
                        conn,
                        customer,
                        template,
                        f"{name.zh or name.name}升级礼 ({name.name} upgrade gift)",
                        actor=actor,
                        at=at,
                    )

    def change(
        self,
        conn: sa.Connection,
        customer: str,
        old: str,
        new: str,
        kind: str,
        reason: str,
        *,
        actor: str,
        at: datetime | None = None,
        order_id: int | None = None,
        values: dict[str, Any] | None = None,
    ) -> None:
        """Move the member from ``old`` to ``new`` (409 if the level moved meanwhile)."""
        at = at or utcnow()
        m = t.members.c
        done = conn.execute(
            t.members.update()
            .where(m.customer == customer, m.level == old)
            .values(level=new, updated_at=at, **(values or {}))
        ).rowcount
        if done != 1:
            raise Conflict(f"the level of {customer} changed meanwhile; try again", code="level_changed")
        self.note(
            conn, customer, kind, reason, actor=actor, at=at, level_from=old, level_to=new, order_id=order_id
        )

    # -- coupons -----------------------------------------------------------------------

    def grant(
        self, conn: sa.Connection, customer: str, template: int, reason: str, *, actor: str, at: datetime
    ) -> str | None:
        """Ask a promotion center for a coupon; note on the history what came of it."""
        kernel = self.center.kernel
        code: str | None = None
        why = ""
        try:
            with conn.begin_nested():
                code = kernel.hook.coupon_grant(
                    kernel=kernel,
                    conn=conn,
                    customer=customer,
                    template=template,
                    reason=reason,
                    source=self.center.name,
                )
        except MallcoreError as exc:
            why = f"{exc.code}: {exc.detail}"
        if code is not None:
            self.note(
                conn,
                customer,
                "coupon_granted",
                f"{reason}: coupon {code}",
                actor=actor,
                at=at,
                data={"template": template, "coupon": code},
            )
        else:
            self.note(
                conn,
                customer,
                "coupon_not_granted",
                f"{reason}: not granted ({why or 'no promotion center answered coupon_grant'})",
                actor=actor,
                at=at,
                data={"template": template},
            )
        return code

    # -- by hand ------------------------------------------------------------------------

    def set_level(self, conn: sa.Connection, customer: str, level: str, reason: str, actor: str) -> None:
        self.ladder.known(level)
        now = utcnow()
        self.center.ledger.ensure(conn, customer, now)
        m = t.members.c
        current = conn.execute(sa.select(m.level).where(m.customer == customer)).scalar_one()
        if current == level:
            raise Conflict(f"{customer} is {level} already", code="level_unchanged")
        self.change(conn, customer, current, level, "level_set", reason, actor=actor, at=now)

    def set_birthday(self, conn: sa.Connection, customer: str, birthday: date, actor: str) -> None:
        """The customer's birthday, for the birthday coupon: set once (staff correct it)."""
        today = self.center.local(utcnow()).date()
        if not valid_birthday(birthday, today):
            raise InvalidInput(f"{birthday} is not a birthday", code="birthday_invalid")
        self.center.ledger.ensure(conn, customer)
        m = t.members.c
        current = conn.execute(sa.select(m.birthday).where(m.customer == customer)).scalar()
        if current == birthday:
            return
        if current is not None:
            raise Conflict(
                "the birthday is set already; ask customer service to correct it", code="birthday_already_set"
            )
        conn.execute(t.members.update().where(m.customer == customer).values(birthday=birthday))
        self.note(conn, customer, "birthday_set", f"birthday set to {birthday:%m-%d}", actor=actor)

    # -- jobs ------------------------------------------------------------------------------

    def reevaluate(self, now: datetime | None = None) -> int:
        """Give every member whose period ended the level its growth reached; start a new period."""
        now = now or utcnow()
        period = timedelta(days=self.center.settings.reevaluate_every_days)
        m = t.members.c
        done = 0
        after = ""
        db = self.center.kernel.db
        while True:
            with db.transaction(write=False) as conn:
                due = (
                    conn.execute(
                        sa.select(m.customer)
                        .where(m.period_start <= now - period, m.customer > after)
                        .order_by(m.customer)
                        .limit(self.center.settings.job_batch)
                    )
                    .scalars()
                    .all()
                )
            if not due:
                return done
            for customer in due:
                with db.transaction() as conn:
                    done += self._reevaluate_one(conn, customer, now, period)
            after = due[-1]

    def _reevaluate_one(self, conn: sa.Connection, customer: str, now: datetime, period: timedelta) -> int:
        m = t.members.c
        row = conn.execute(sa.select(m.level, m.growth, m.period_start).where(m.customer == customer)).first()
        if row is None or row.period_start > now - period:
            return 0  # another runner did it
        periods = (now - row.period_start) // period
        # The growth belongs to the first of the elapsed periods; any later one had none.
        growth = int(row.growth) if periods == 1 else 0
        new = self.ladder.for_growth(growth)
        ended = row.period_start + period * periods
        values = {"growth": 0, "period_start": ended}
        updated = conn.execute(
            t.members.update()
            .where(m.customer == customer, m.period_start == row.period_start)
            .values(level=new, updated_at=now, **values)
        ).rowcount
        if not updated or new == row.level:
            return int(updated)
        level = self.ladder.get(new)
        kind = "level_up" if self.ladder.higher(new, row.level) else "level_down"
        self.note(
            conn,
            customer,
            kind,
            f"re-evaluation: growth {growth} in the period ending {ended:%Y-%m-%d} "
            f"reaches {level.name} ({level.growth})",
            actor="system",
            at=now,
            level_from=row.level,
            level_to=new,
            data={
                "growth": growth,
                "period_start": row.period_start.isoformat(),
                "period_end": ended.isoformat(),
            },
        )
        return 1

    def birthdays(self, now: datetime | None = None) -> int:
        """Grant the birthday coupon of their level to members whose birthday is today."""
        center = self.center
        today = center.local(now or utcnow()).date()
        days = [(today.month, today.day)]
        if (today.month, today.day) == (2, 28) and not _leap(today.year):
            days.append((2, 29))
        m = t.members.c
        same_day = sa.or_(
            *(
                sa.and_(sa.extract("month", m.birthday) == month, sa.extract("day", m.birthday) == day)
                for month, day in days
            )
        )
        granted = 0
        db = center.kernel.db
        with db.transaction(write=False) as conn:
            due = (
                conn.execute(
                    sa.select(m.customer).where(
                        m.birthday.is_not(None),
                        same_day,
                        sa.or_(m.birthday_year.is_(None), m.birthday_year < today.year),
                    )
                )
                .scalars()
                .all()
            )
        for customer in due:
            with db.transaction() as conn:
                row = conn.execute(
                    t.members.update()
                    .where(
                        m.customer == customer,
                        sa.or_(m.birthday_year.is_(None), m.birthday_year < today.year),
                    )
                    .values(birthday_year=today.year)
                    .returning(m.level)
                ).first()
                if row is None:
                    continue  # another runner did it
                level = self.ladder.get(row.level)
                if level.birthday_coupon is not None:
                    self.grant(
                        conn,
                        customer,
                        level.birthday_coupon,
                        f"{level.zh or level.name}生日礼 ({level.name} birthday gift)",
                        actor="system",
                        at=now or utcnow(),
                    )
                    granted += 1
        return granted


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def valid_birthday(value: date, today: date) -> bool:
    return date(1900, 1, 1) <= value <= today
