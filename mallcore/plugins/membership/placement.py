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

import itertools
import os
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import OrderContext, Phase, Rejected, allocate, fast, format_amount

from . import tables as t
from .settings import MAX_POINTS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from mallcore.kernel import Adjustment, Line

    from . import MembershipCenter
    from .settings import Level

STASH = "membership.hold"
HOLD_KEYS = ("customer", "at", "kind", "delta", "balance", "debt", "order_id", "reason", "actor")


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
        # Constants are written into the SQL (the statement is compiled once, every value named).
        zero: sa.ColumnClause[int] = sa.literal_column("0", sa.Integer)
        one: sa.ColumnClause[int] = sa.literal_column("1", sa.Integer)
        this_month = m.voucher_month == month
        held = sa.case((this_month, m.vouchers_held), else_=zero)
        used = sa.case((this_month, m.vouchers_used), else_=zero)
        # Level codes are checked at start-up (lower-case letters, digits, '_'): safe as literals.
        quota = sa.case(
            *((m.level == sa.literal_column(f"'{code}'"), sa.literal_column(str(level.free_shipping_per_month)))
              for code, level in ladder),
            else_=sa.literal_column(str(ladder.get(ladder.base).free_shipping_per_month)),
        )  # fmt: skip
        take = sa.and_(sa.bindparam("want", type_=sa.Integer) == one, held + used < quota)
        values = {
            "points": m.points - sa.bindparam("n"),
            "held": m.held + sa.bindparam("n"),
            "voucher_month": sa.case((take, month), else_=m.voucher_month),
            "vouchers_held": sa.case((take, held + one), else_=m.vouchers_held),
            "vouchers_used": sa.case((take, used), else_=m.vouchers_used),
            "voucher_claim": sa.case((take, sa.bindparam("claim")), else_=m.voucher_claim),
            "updated_at": sa.bindparam("now"),
        }
        returning = (m.level, m.points, m.voucher_claim)
        base = t.members.update().where(m.customer == sa.bindparam("c")).values(**values)
        # With points: only while the balance covers them. Without: even a member in debt
        # may use a voucher.
        # On the placement path: compiled once, run on the driver (see mallcore.kernel.fast).
        db = center.kernel.db
        types = {"now": m.updated_at.type}
        self._take = fast.statement(
            base.where(m.points >= sa.bindparam("n")).returning(*returning), db, types, returns_rows=True
        )
        self._take_voucher = fast.statement(base.returning(*returning), db, types, returns_rows=True)
        self._read = fast.statement(
            sa.select(m.level, m.points, m.voucher_month, m.vouchers_held, m.vouchers_used).where(
                m.customer == sa.bindparam("c")
            ),
            db,
            returns_rows=True,
        )
        self._insert_hold = fast.insert(t.points, HOLD_KEYS, db)
        # Voucher claims: unique per placement, cheaper than a uuid on every order with freight.
        self._prefix = os.urandom(6).hex()
        self._claims = itertools.count()

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
        # Lines as they stand after promotions; with no other center's adjustment between the
        # member price and points (a coupon), the goods points pay for follow from them too.
        running = running_totals(ctx.lines, ctx.adjustments, Phase.MEMBERSHIP)
        between = any(Phase.MEMBERSHIP <= a.phase < Phase.POINTS for a in ctx.adjustments)
        if n:
            # The member price only lowers the goods: a figure above this cap is refused unread.
            self._cap(ctx, n, self._goods(ctx, running, between, 0))
        preview = ctx.stage != "place"
        claim = f"{self._prefix}{next(self._claims):x}" if freight_left and not preview else None
        month = center.month()
        member = self._member(ctx, n, claim, preview, month)
        level_code = member["level"] if member else ladder.base
        level = ladder.get(level_code)
        member_off = 0
        if eligible and level.member_discount_bp:
            member_off = self._member_price(ctx, level, eligible, running)
        voucher = None
        if freight_left and level.free_shipping_per_month:
            if preview:
                taken = (member or {}).get("vouchers_taken", 0)
                has = taken < level.free_shipping_per_month
            else:
                has = member is not None and member["claim"] == claim
            if has:
                voucher = month
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
            self._cap(ctx, n, self._goods(ctx, running, between, member_off))
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

    def _member(
        self, ctx: OrderContext, n: int, claim: str | None, preview: bool, month: str
    ) -> dict[str, Any] | None:
        """The member's level and balance; while placing, the points held and a voucher taken."""
        center = self.center
        customer = ctx.order.customer
        missing = False
        if preview or not n:
            rows = self._read.execute(ctx.conn, {"c": customer}).rows
            if not rows:
                if n:
                    raise center.ledger.insufficient(ctx.conn, customer, n)
                if not (claim and center.ladder.base_has_vouchers):
                    return None
                missing = True
            else:
                level, points, voucher_month, vouchers_held, vouchers_used = rows[0]
                member = {
                    "level": level,
                    "points": int(points),
                    "vouchers_taken": (vouchers_held + vouchers_used) if voucher_month == month else 0,
                    "claim": None,
                }
                if n > member["points"]:
                    raise center.ledger.insufficient(ctx.conn, customer, n)
                quota = center.ladder.get(level).free_shipping_per_month
                if not claim or member["vouchers_taken"] >= quota:
                    return member
        # Placing with points, or a voucher looks free: take them (the UPDATE decides).
        params = {
            "c": customer,
            "n": n,
            "want": 1 if claim else 0,
            "claim": claim,
            "month": month,
            "now": ctx.order.placed_at,
        }
        stmt = self._take if n else self._take_voucher
        if missing:
            center.ledger.ensure(ctx.conn, customer, ctx.order.placed_at)  # first use
        found = stmt.execute(ctx.conn, params).rows
        if not found:
            if n:
                raise center.ledger.insufficient(ctx.conn, customer, n)
            return None
        level, points, claimed = found[0]
        return {"level": level, "points": int(points), "claim": claimed}

    def _member_price(self, ctx: OrderContext, level: Level, eligible: list[Line], running: list[int]) -> int:
        """The level's basis points off each eligible line as it stands after promotions (half up);
        returns the total taken off.

        When every line is eligible (the usual case) it is one adjustment on the order, which the
        kernel shares over the lines in proportion to the same figures; otherwise one per line.
        """
        bp = level.member_discount_bp
        label = f"{level.name} member price: {bp / 100:g}% off"
        name = f"{level.zh or level.name}专享价"
        funded_by = self.center.settings.member_price_funded_by
        if len(eligible) == len(ctx.lines):
            off = (sum(running) * bp + 5_000) // 10_000
            if off:
                ctx.adjust(
                    self.center.name, f"{label} ({name})", -off,
                    phase=Phase.MEMBERSHIP, code="member_price", funded_by=funded_by,
                )  # fmt: skip
            return off
        position = {line.line_no: i for i, line in enumerate(ctx.lines)}
        total = 0
        for line in eligible:
            off = (running[position[line.line_no]] * bp + 5_000) // 10_000
            if off:
                total += off
                ctx.adjust(
                    self.center.name, f"{label} {line.sku} ({name})", -off,
                    phase=Phase.MEMBERSHIP, line=line, code="member_price", funded_by=funded_by,
                )  # fmt: skip
        return total

    @staticmethod
    def _goods(ctx: OrderContext, running: list[int], between: bool, member_off: int) -> int:
        """The goods points may pay for: after every adjustment of a phase before POINTS."""
        if between:
            return max(0, sum(running_totals(ctx.lines, ctx.adjustments, Phase.POINTS)))
        return max(0, sum(running) - member_off)

    def _cap(self, ctx: OrderContext, n: int, goods: int) -> None:
        settings = self.center.settings
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
        value = n * self.center.settings.point_value
        for adj in ctx.adjustments:
            # A center pricing after us may have left less to pay than the points are worth:
            # the kernel then clamped them, and the customer would lose the difference.
            if adj.code == "points" and adj.source == self.center.name and adj.amount != -value:
                raise Rejected(
                    f"{n} points are worth more than is left to pay for this order",
                    code="points_over_cap",
                    extra={"max_points": -adj.amount // self.center.settings.point_value},
                )
        self._insert_hold.execute(
            ctx.conn,
            {
                "customer": order.customer,
                "at": order.placed_at,
                "kind": "hold",
                "delta": -n,
                "balance": balance,
                "debt": 0,
                "order_id": order.id,
                "reason": f"held for order {order.id}",
                "actor": ctx.principal.subject,
            },
        )


def _freight_left(adjustments: Sequence[Adjustment]) -> int:
    """Freight priced so far less what other free-shipping offers already waive."""
    freight = sum(a.amount for a in adjustments if a.phase == Phase.FREIGHT and a.amount > 0)
    waived = sum(-a.amount for a in adjustments if a.phase == Phase.SHIPPING_DISCOUNT)
    return max(0, freight - waived)
