"""What the member pages show: the member, their points and history, the wallet, searches.

Who sees a member: the customer themself; admins and platform staff
(platform merchant, finance or risk staff) everyone; a shop's staff
the customers who have ordered from their shop (the people their customer
service talks to). Anyone else gets 404, as for any object they may not see.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import NotFound, Principal, format_amount, utcnow
from mallcore.kernel import tables as kt

from . import tables as t
from .ledger import row_view
from .schemas import (
    Benefit,
    Expiring,
    HistoryRow,
    LevelCount,
    LevelView,
    MemberPage,
    MemberSummary,
    MemberView,
    PointsRow,
    Stats,
    Vouchers,
    WalletView,
)

if TYPE_CHECKING:
    from . import MembershipCenter
    from .settings import Level

STAFF = frozenset({"merchant", "finance", "risk"})
EXPIRING_WITHIN = timedelta(days=30)


def _text(lang: str, en: str, zh: str) -> str:
    return zh if lang == "zh" else en


class Members:
    def __init__(self, center: MembershipCenter) -> None:
        self.center = center

    # -- who sees whom -----------------------------------------------------------------

    def visible_to(self, principal: Principal) -> sa.ColumnElement[bool]:
        """The members ``principal`` may see, as a ``WHERE`` condition on ``membership_members``."""
        m = t.members.c
        if principal.is_admin or (principal.platform and not principal.roles.isdisjoint(STAFF)):
            return sa.true()
        seen: list[sa.ColumnElement[bool]] = []
        if not principal.roles.isdisjoint(STAFF):
            o = kt.orders.c
            seen.append(sa.exists().where(o.customer == m.customer, o.shop == principal.shop))
        if "customer" in principal.roles:
            seen.append(m.customer == principal.subject)
        if not seen:
            return sa.false()
        return seen[0] if len(seen) == 1 else sa.or_(*seen)

    def check_visible(self, conn: sa.Connection, principal: Principal, customer: str) -> None:
        """404 unless ``principal`` may see ``customer``'s member data (member row or not)."""
        if principal.is_admin or (principal.platform and not principal.roles.isdisjoint(STAFF)):
            return
        if "customer" in principal.roles and principal.subject == customer:
            return
        if not principal.roles.isdisjoint(STAFF):
            o = kt.orders.c
            ordered = conn.execute(
                sa.select(o.id).where(o.customer == customer, o.shop == principal.shop).limit(1)
            ).first()
            if ordered is not None:
                return
        raise NotFound(f"member {customer} not found", code="member_not_found")

    # -- levels and benefits --------------------------------------------------------------

    def benefits(self, level: Level, lang: str, currency: str) -> list[Benefit]:
        out = []
        if level.member_discount_bp:
            pct = f"{level.member_discount_bp / 100:g}%"
            out.append(
                Benefit(
                    code="member_price",
                    text=_text(lang, f"Member price: {pct} off", f"会员价:立减 {pct}"),
                    value=level.member_discount_bp,
                )
            )
        if level.free_shipping_per_month:
            n = level.free_shipping_per_month
            out.append(
                Benefit(
                    code="free_shipping",
                    text=_text(lang, f"{n} free-shipping vouchers a month", f"每月 {n} 张包邮券"),
                    value=n,
                )
            )
        if level.points_multiplier_percent != 100:
            x = f"{level.points_multiplier_percent / 100:g}"
            out.append(
                Benefit(
                    code="points_multiplier",
                    text=_text(lang, f"Points x{x}", f"积分 {x} 倍"),
                    value=level.points_multiplier_percent,
                )
            )
        if level.upgrade_coupon is not None:
            out.append(
                Benefit(
                    code="upgrade_coupon",
                    text=_text(lang, "A coupon on reaching this level", "升级礼券"),
                    value=level.upgrade_coupon,
                )
            )
        if level.birthday_coupon is not None:
            out.append(
                Benefit(
                    code="birthday_coupon",
                    text=_text(lang, "A birthday coupon", "生日礼券"),
                    value=level.birthday_coupon,
                )
            )
        if level.fast_refund_below:
            amount = format_amount(level.fast_refund_below, currency)
            out.append(
                Benefit(
                    code="fast_refund",
                    text=_text(
                        lang,
                        f"Refund-only requests below {amount} approved at once",
                        f"极速退款:仅退款 {amount} 以下立即通过",
                    ),
                    value=level.fast_refund_below,
                )
            )
        return out

    def levels(self, lang: str) -> list[LevelView]:
        return [
            LevelView(
                code=code,
                name=level.label(lang),
                growth=level.growth,
                benefits=self.benefits(level, lang, self.center.currency),
            )
            for code, level in self.center.ladder
        ]

    # -- one member -----------------------------------------------------------------------

    def view(self, conn: sa.Connection, customer: str, lang: str = "en") -> MemberView:
        """The member page; a customer with no member row yet sees where they would start."""
        center = self.center
        ladder = center.ladder
        m = t.members.c
        row = conn.execute(sa.select(t.members).where(m.customer == customer)).first()
        code = row.level if row is not None else ladder.base
        level = ladder.get(code)
        growth = int(row.growth) if row is not None else 0
        upper = ladder.above(code)
        period = timedelta(days=center.settings.reevaluate_every_days)
        points = int(row.points) if row is not None else 0
        now = utcnow()
        expiring = center.expiry.due(conn, customer, now, EXPIRING_WITHIN) if row is not None else 0
        return MemberView(
            customer=customer,
            level=code,
            level_name=level.label(lang),
            growth=growth,
            next_level=upper,
            next_level_name=ladder.get(upper).label(lang) if upper else None,
            growth_to_next=max(0, ladder.get(upper).growth - growth) if upper else None,
            points=points,
            held=int(row.held) if row is not None else 0,
            debt=max(0, -points),
            benefits=self.benefits(level, lang, center.currency),
            vouchers=self.vouchers(row, level),
            expiring=Expiring(points=expiring, by=now + EXPIRING_WITHIN) if expiring else None,
            lifetime_growth=int(row.lifetime_growth) if row is not None else 0,
            period_start=row.period_start if row is not None else None,
            period_end=row.period_start + period if row is not None else None,
            birthday=row.birthday if row is not None else None,
            member_since=row.created_at if row is not None else None,
        )

    def vouchers(self, row: Any, level: Level) -> Vouchers:
        month = self.center.month()
        held = used = 0
        if row is not None and row.voucher_month == month:
            held, used = int(row.vouchers_held), int(row.vouchers_used)
        quota = level.free_shipping_per_month
        return Vouchers(month=month, per_month=quota, held=held, used=used, left=max(0, quota - held - used))

    def points(
        self, conn: sa.Connection, customer: str, *, before: int | None = None, limit: int = 50
    ) -> list[PointsRow]:
        """The ledger, newest first; ``before`` (a row id) pages back."""
        p = t.points.c
        stmt = sa.select(t.points).where(p.customer == customer)
        if before is not None:
            stmt = stmt.where(p.id < before)
        return [row_view(r) for r in conn.execute(stmt.order_by(p.id.desc()).limit(limit))]

    def history(
        self, conn: sa.Connection, customer: str, *, before: int | None = None, limit: int = 50
    ) -> list[HistoryRow]:
        """Level changes, growth and coupons, newest first; ``before`` (a row id) pages back."""
        h = t.history.c
        stmt = sa.select(t.history).where(h.customer == customer)
        if before is not None:
            stmt = stmt.where(h.id < before)
        return [
            HistoryRow(
                id=r.id,
                at=r.at,
                kind=r.kind,
                level_from=r.level_from,
                level_to=r.level_to,
                growth=r.growth,
                order_id=r.order_id,
                reason=r.reason,
                actor=r.actor,
                data=r.data,
            )
            for r in conn.execute(stmt.order_by(h.id.desc()).limit(limit))
        ]

    def wallet(self, conn: sa.Connection, customer: str, lang: str = "en") -> WalletView:
        view = self.view(conn, customer, lang)
        kernel = self.center.kernel
        answers = kernel.call_each("customer_coupons", kernel=kernel, conn=conn, customer=customer)
        coupons = [{**coupon, "source": center} for center, found in answers for coupon in found or ()]
        return WalletView(
            customer=customer,
            points=view.points,
            held=view.held,
            expiring=view.expiring,
            vouchers=view.vouchers,
            coupons=coupons,
            coupon_sources=sorted({center for center, _ in answers}),
        )

    # -- many -------------------------------------------------------------------------------

    def search(
        self,
        conn: sa.Connection,
        principal: Principal,
        *,
        level: str | None = None,
        q: str | None = None,
        after: str | None = None,
        limit: int = 50,
        lang: str = "en",
    ) -> MemberPage:
        """Members the principal may see, by customer id; ``q`` is a prefix of it."""
        m = t.members.c
        stmt = sa.select(m.customer, m.level, m.growth, m.points, m.held, m.updated_at).where(
            self.visible_to(principal)
        )
        if level:
            stmt = stmt.where(m.level == self.center.ladder.known(level))
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            stmt = stmt.where(m.customer.like(f"{escaped}%", escape="\\"))
        if after:
            stmt = stmt.where(m.customer > after)
        rows = conn.execute(stmt.order_by(m.customer).limit(limit + 1)).all()
        ladder = self.center.ladder
        items = [
            MemberSummary(
                customer=r.customer,
                level=r.level,
                level_name=ladder.get(r.level).label(lang),
                growth=int(r.growth),
                points=int(r.points),
                held=int(r.held),
                updated_at=r.updated_at,
            )
            for r in rows[:limit]
        ]
        return MemberPage(items=items, next=items[-1].customer if len(rows) > limit else None)

    def stats(self, conn: sa.Connection, lang: str = "en") -> Stats:
        m = t.members.c
        by_level = {
            r.level: r
            for r in conn.execute(
                sa.select(
                    m.level, sa.func.count().label("n"), sa.func.coalesce(sa.func.sum(m.points), 0).label("p")
                ).group_by(m.level)
            )
        }
        totals = conn.execute(
            sa.select(
                sa.func.count(),
                sa.func.coalesce(sa.func.sum(m.points), 0),
                sa.func.coalesce(sa.func.sum(m.held), 0),
                sa.func.coalesce(sa.func.sum(sa.case((m.points < 0, -m.points), else_=0)), 0),
            )
        ).one()
        ladder = self.center.ladder
        return Stats(
            members=int(totals[0]),
            points=int(totals[1]),
            held=int(totals[2]),
            debt=int(totals[3]),
            outstanding=int(totals[1]) + int(totals[2]),
            levels=[
                LevelCount(
                    level=code,
                    level_name=level.label(lang),
                    members=int(by_level[code].n) if code in by_level else 0,
                    points=int(by_level[code].p) if code in by_level else 0,
                )
                for code, level in ladder
            ],
        )
