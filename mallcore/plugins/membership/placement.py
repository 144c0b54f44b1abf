"""Member benefits at placement: the member price, a free-shipping voucher, points spent.

Placement runs on every order, so this is kept to at most two statements,
and none when nothing of the program applies:

- ``order_pre_validate`` refuses bad points figures from memory (above
  :data:`~.settings.MAX_POINTS`, not a multiple of ``spend_multiple``, a
  shop whose program takes no points, an order in another currency).
- ``order_price`` (after promotions, coupons and freight are known) reads
  the member once. An order spending points or able to use a voucher does
  it with one conditional ``UPDATE ... RETURNING``: the points move from
  the balance to ``held`` only while ``points >= N``, a voucher of this
  month is taken only while the level's quota allows (the quota is a
  ``CASE`` on the level, from config), and the row returned says which
  level the member is and whether this placement took the voucher. Other
  orders that a member price may apply to read the member with one
  ``SELECT``. Member price, voucher and points then become adjustments.
- ``order_reserve`` writes the hold's ledger row (one ``INSERT``): the
  order id exists by then.

A preview reads the member with a ``SELECT`` and writes nothing.

Amounts: the member price is the level's basis points of each eligible
line as it stands after promotions (rounded half up per line); points are
capped at ``spend_cap_bp`` of the goods after every discount before the
POINTS phase (rounded down to whole points).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import OrderContext, Phase, Rejected, allocate, format_amount

from . import tables as t
from .ledger import Move
from .settings import MAX_POINTS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mallcore.kernel import Adjustment, Line

    from . import MembershipCenter
    from .settings import Level

STASH = "membership.hold"


def running_totals(lines: Sequence[Line], adjustments: Sequence[Adjustment], below: int) -> list[int]:
    """Each line's value after the adjustments of phases before ``below``, applied the way the
    kernel applies them (by phase, then center, then order added; order-level ones shared by
    the largest remainder; discounts never below zero)."""
    running = [(line.unit_price or 0) * line.quantity for line in lines]
    index = {line.line_no: i for i, line in enumerate(lines)}
    ordered = sorted(
        (p for p in enumerate(adjustments) if p[1].phase < below),
        key=lambda p: (p[1].phase, p[1].source, p[0]),
    )
    for _, adj in ordered:
        if adj.line_no is not None:
            i = index[adj.line_no]
            running[i] += max(adj.amount, -running[i])
        else:
            for i, part in enumerate(allocate(max(adj.amount, -sum(running)), running)):
                running[i] += part
    return running


class Placement:
    def __init__(self, center: MembershipCenter) -> None:
        self.center = center
        ladder = center.ladder
        m = t.members.c
        month: sa.BindParameter[str] = sa.bindparam("month", type_=sa.String())
        this_month = m.voucher_month == month
        held = sa.case((this_month, m.vouchers_held), else_=0)
        used = sa.case((this_month, m.vouchers_used), else_=0)
        quotas = {code: level.free_shipping_per_month for code, level in ladder}
        quota = sa.case(quotas, value=m.level, else_=quotas[ladder.base])
        take = sa.and_(sa.bindparam("want", type_=sa.Integer) == 1, held + used < quota)
        values = {
            "points": m.points - sa.bindparam("n"),
            "held": m.held + sa.bindparam("n"),
            "voucher_month": sa.case((take, month), else_=m.voucher_month),
            "vouchers_held": sa.case((take, held + 1), else_=m.vouchers_held),
            "vouchers_used": sa.case((take, used), else_=m.vouchers_used),
            "voucher_claim": sa.case((take, sa.bindparam("claim")), else_=m.voucher_claim),
            "updated_at": sa.bindparam("now"),
        }
        returning = (m.level, m.points, m.voucher_claim)
        base = t.members.update().where(m.customer == sa.bindparam("c")).values(**values)
        # With points: only while the balance covers them. Without: even a member in debt
        # may use a voucher.
        self._take = base.where(m.points >= sa.bindparam("n")).returning(*returning)
        self._take_voucher = base.returning(*returning)
        self._read = sa.select(
            m.level, m.points, m.held, m.voucher_month, m.vouchers_held, m.vouchers_used
        ).where(m.customer == sa.bindparam("c"))

    # -- order_pre_validate ---------------------------------------------------------

    def check(self, ctx: OrderContext) -> None:
        n = ctx.order.points
        if not n:
            return
        center = self.center
        if n > MAX_POINTS:
            raise Rejected(
                f"at most {MAX_POINTS} points per order",
                code="points_too_large",
                extra={"max_points": MAX_POINTS},
            )
        multiple = center.settings.spend_multiple
        if n % multiple:
            raise Rejected(
                f"points are spent in multiples of {multiple}",
                code="points_not_multiple",
                extra={"multiple": multiple},
            )
        if ctx.order.currency != center.currency:
            raise Rejected(
                f"points pay for orders in {center.currency} only, not {ctx.order.currency}",
                code="points_not_accepted",
            )
        if not center.programs.get(ctx.conn, ctx.order.shop).accepts_points():
            raise Rejected(f"shop {ctx.order.shop} does not take points", code="points_not_accepted")

    # -- order_price ------------------------------------------------------------------

    def price(self, ctx: OrderContext) -> None:
        order, center = ctx.order, self.center
        if order.parent_id is not None or any(line.unit_price is None for line in ctx.lines):
            return  # a replacement is priced by its exchange; an unpriced SKU is refused anyway
        program = center.programs.get(ctx.conn, order.shop)
        if not program.enabled:
            return
        ladder = center.ladder
        n = order.points
        eligible = []
        if ladder.any_member_price and program.prices_for_members():
            eligible = [line for line in ctx.lines if line.sku not in program.excluded_skus]
        freight_left = 0
        if ladder.any_vouchers and order.currency == center.currency:
            freight_left = _freight_left(ctx.adjustments)
        if not (n or eligible or freight_left):
            return
        if n:
            # The member price only lowers the goods: a figure above this cap is refused unread.
            self._cap(ctx, n, running_totals(ctx.lines, ctx.adjustments, Phase.POINTS))
        preview = ctx.stage != "place"
        claim = uuid.uuid4().hex if freight_left and not preview else None
        member = self._member(ctx, n, claim, preview)
        level_code = member["level"] if member else ladder.base
        level = ladder.get(level_code)
        if eligible and level.member_discount_bp:
            self._member_price(ctx, level, eligible)
        voucher = None
        if freight_left and level.free_shipping_per_month:
            if preview:
                taken = (member or {}).get("vouchers_taken", 0)
                has = taken < level.free_shipping_per_month
            else:
                has = member is not None and member["claim"] == claim
            if has:
                voucher = center.month()
                ctx.adjust(
                    center.name,
                    f"{level.name} free-shipping voucher ({level.zh or level.name}包邮券, "
                    f"{level.free_shipping_per_month} a month)",
                    -freight_left,
                    phase=Phase.SHIPPING_DISCOUNT,
                    code="free_shipping_voucher",
                    funded_by="platform",
                )
        if n:
            self._cap(ctx, n, running_totals(ctx.lines, ctx.adjustments, Phase.POINTS))
            value = n * center.settings.point_value
            ctx.adjust(
                center.name,
                f"{n} points (积分抵扣 {format_amount(value, order.currency)})",
                -value,
                phase=Phase.POINTS,
                code="points",
                funded_by="platform",
            )
        elif preview and member and member["points"] > 0:
            self._hint(ctx, member["points"])
        info: dict[str, Any] = {"level": level_code}
        if n:
            info["points"] = n
        if voucher:
            info["voucher"] = voucher
        order.extra["membership"] = info
        if n and not preview:
            ctx.stash[STASH] = (n, member["points"] if member else 0)

    def _member(self, ctx: OrderContext, n: int, claim: str | None, preview: bool) -> dict[str, Any] | None:
        """The member's level and balance; while placing, the points held and a voucher taken."""
        center = self.center
        customer = ctx.order.customer
        missing = False
        if preview or not n:
            row = ctx.conn.execute(self._read, {"c": customer}).first()
            if row is None:
                if n:
                    raise center.ledger.insufficient(ctx.conn, customer, n)
                if not (claim and center.ladder.base_has_vouchers):
                    return None
                missing = True
            else:
                same_month = row.voucher_month == center.month()
                member = {
                    "level": row.level,
                    "points": int(row.points),
                    "vouchers_taken": (row.vouchers_held + row.vouchers_used) if same_month else 0,
                    "claim": None,
                }
                if n > member["points"]:
                    raise center.ledger.insufficient(ctx.conn, customer, n)
                quota = center.ladder.get(row.level).free_shipping_per_month
                if not claim or member["vouchers_taken"] >= quota:
                    return member
        # Placing with points, or a voucher looks free: take them (the UPDATE decides).
        params = {
            "c": customer,
            "n": n,
            "want": 1 if claim else 0,
            "claim": claim,
            "month": center.month(),
            "now": ctx.order.placed_at,
        }
        stmt = self._take if n else self._take_voucher
        if missing:
            center.ledger.ensure(ctx.conn, customer, ctx.order.placed_at)  # first use
        found = ctx.conn.execute(stmt, params).first()
        if found is None:
            if n:
                raise center.ledger.insufficient(ctx.conn, customer, n)
            return None
        return {"level": found.level, "points": int(found.points), "claim": found.voucher_claim}

    def _member_price(self, ctx: OrderContext, level: Level, eligible: list[Line]) -> None:
        running = running_totals(ctx.lines, ctx.adjustments, Phase.MEMBERSHIP)
        position = {line.line_no: i for i, line in enumerate(ctx.lines)}
        bp = level.member_discount_bp
        percent = f"{bp / 100:g}%"
        funded_by = self.center.settings.member_price_funded_by
        for line in eligible:
            off = (running[position[line.line_no]] * bp + 5_000) // 10_000
            if off:
                ctx.adjust(
                    self.center.name,
                    f"{level.name} member price: {percent} off {line.sku} ({level.zh or level.name}会员价)",
                    -off,
                    phase=Phase.MEMBERSHIP,
                    line=line,
                    code="member_price",
                    funded_by=funded_by,
                )

    def _cap(self, ctx: OrderContext, n: int, running: list[int]) -> None:
        settings = self.center.settings
        goods = max(0, sum(running))
        most = goods * settings.spend_cap_bp // 10_000 // settings.point_value
        most -= most % settings.spend_multiple
        if n > most:
            raise Rejected(
                f"{n} points asked; at most {most} may pay for this order "
                f"({settings.spend_cap_bp / 100:g}% of {format_amount(goods, ctx.order.currency)})",
                code="points_over_cap",
                extra={"max_points": most},
            )

    def _hint(self, ctx: OrderContext, balance: int) -> None:
        settings = self.center.settings
        if not self.center.programs.get(ctx.conn, ctx.order.shop).accepts_points():
            return
        goods = max(0, sum(running_totals(ctx.lines, ctx.adjustments, Phase.POINTS)))
        most = min(balance, goods * settings.spend_cap_bp // 10_000 // settings.point_value)
        most -= most % settings.spend_multiple
        if most <= 0:
            return
        saved = format_amount(most * settings.point_value, ctx.order.currency)
        ctx.hint(
            self.center.name,
            f"Pay {saved} of this order with {most} of your {balance} points",
            zh=f"可用 {most} 积分抵扣 {saved}(共 {balance} 积分)",
            code="points_available",
            data={"points": most, "balance": balance},
        )

    # -- order_reserve -------------------------------------------------------------------

    def hold(self, ctx: OrderContext) -> None:
        held = ctx.stash.get(STASH)
        if held is None:
            return
        n, balance = held
        order = ctx.order
        self.center.ledger.record(
            ctx.conn,
            order.customer,
            [Move(kind="hold", delta=-n, reason=f"held for order {order.id}", order_id=order.id)],
            balance,
            actor=ctx.principal.subject,
            at=order.placed_at or ctx.order.updated_at,  # type: ignore[arg-type]
        )


def _freight_left(adjustments: Sequence[Adjustment]) -> int:
    """Freight priced so far less what other free-shipping offers already waive."""
    freight = sum(a.amount for a in adjustments if a.phase == Phase.FREIGHT and a.amount > 0)
    waived = sum(-a.amount for a in adjustments if a.phase == Phase.SHIPPING_DISCOUNT)
    return max(0, freight - waived)
