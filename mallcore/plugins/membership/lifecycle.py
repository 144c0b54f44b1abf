"""Points and growth through an order's life after placement.

- Paid: the held points are spent (a ``release`` and a ``spend`` row) and
  a held voucher becomes used.
- Cancelled (or expired unpaid): an open hold is released; points already
  spent come back; the voucher is given back.
- Completed: points are earned on what was paid for goods less what was
  refunded so far (never freight), at ``earn_points`` per ``earn_unit``
  times the level's multiplier, rounded down; growth likewise.
- Refunded (``order_refund`` at ``refunded``, full or partial): the share
  of each line refunded so far (its refunded goods over its goods) decides
  how many of the points spent on that line have come back, and the share
  of the goods paid at completion refunded since decides how many earned
  points (and growth) go. Both are cumulative (:func:`mallcore.kernel.share`
  of the whole, less what earlier refunds moved), so the partial refunds of
  an order add up to exactly the whole; the points spent are shared over
  the lines by the kernel's largest remainder (as the money was).

Every step reads what the ledger already says of the order and moves only
the difference, so a hook called twice moves nothing the second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import OrderContext, Payment, Refund, allocate, format_amount, share
from mallcore.kernel import tables as kt
from mallcore.kernel.aftersale import AfterSaleCase

from . import tables as t
from .ledger import Move

if TYPE_CHECKING:
    from . import MembershipCenter


def _info(ctx: OrderContext) -> dict[str, Any]:
    info = ctx.order.extra.get("membership")
    return info if isinstance(info, dict) else {}


class Lifecycle:
    def __init__(self, center: MembershipCenter) -> None:
        self.center = center

    # -- payment and cancellation ---------------------------------------------------

    def pay(self, ctx: OrderContext, payment: Payment) -> None:
        if payment.status != "captured":
            return
        info = _info(ctx)
        order = ctx.order
        if info.get("points"):
            held = self._open_hold(ctx)
            if held:
                self.center.ledger.write(
                    ctx.conn,
                    order.customer,
                    [
                        Move(kind="release", delta=held, reason=f"order {order.id} paid", order_id=order.id),
                        Move(
                            kind="spend",
                            delta=-held,
                            reason=f"spent on order {order.id}",
                            order_id=order.id,
                            shop=order.shop,
                        ),
                    ],
                    held=-held,
                    actor=ctx.principal.subject,
                )
        if info.get("voucher"):
            self._vouchers(ctx, info["voucher"], held=-1, used=1)

    def cancel(self, ctx: OrderContext, reason: str) -> None:
        info = _info(ctx)
        order = ctx.order
        if not info.get("points") and not info.get("voucher"):
            return
        paid = order.status != "awaiting_payment"
        if info.get("points"):
            done = self.center.ledger.of_order(ctx.conn, order.id or 0)
            held = -(done.get("hold", 0) + done.get("release", 0))
            back = -done.get("spend", 0) - done.get("return", 0)
            moves = []
            if held > 0:
                moves.append(
                    Move(kind="release", delta=held, reason=f"order {order.id} cancelled", order_id=order.id)
                )
            if back > 0:
                moves.append(
                    Move(
                        kind="return",
                        delta=back,
                        reason=f"order {order.id} cancelled: spent points returned",
                        order_id=order.id,
                        shop=order.shop,
                    )
                )
            if moves:
                self.center.ledger.write(
                    ctx.conn, order.customer, moves, held=-max(held, 0), actor=ctx.principal.subject
                )
        if info.get("voucher"):
            if paid:
                self._vouchers(ctx, info["voucher"], used=-1)
            else:
                self._vouchers(ctx, info["voucher"], held=-1)

    def _open_hold(self, ctx: OrderContext) -> int:
        done = self.center.ledger.of_order(ctx.conn, ctx.order.id or 0)
        return -(done.get("hold", 0) + done.get("release", 0))

    def _vouchers(self, ctx: OrderContext, month: str, *, held: int = 0, used: int = 0) -> None:
        """Move this order's voucher between held and used, or give it back (same month only)."""
        m = t.members.c
        where = [m.customer == ctx.order.customer, m.voucher_month == month]
        if held < 0:
            where.append(m.vouchers_held > 0)
        if used < 0:
            where.append(m.vouchers_used > 0)
        ctx.conn.execute(
            t.members.update()
            .where(*where)
            .values(vouchers_held=m.vouchers_held + held, vouchers_used=m.vouchers_used + used)
        )

    # -- completion -------------------------------------------------------------------

    def complete(self, ctx: OrderContext) -> None:
        center, order = self.center, ctx.order
        if order.currency != center.currency or order.id is None:
            return
        refunded = refunded_goods(ctx.conn, order.id)
        basis = sum(max(0, line.total - line.shipping - refunded.get(line.id or 0, 0)) for line in ctx.lines)
        if basis <= 0:
            return
        settings = center.settings
        m = t.members.c
        center.ledger.ensure(ctx.conn, order.customer)
        level_code = ctx.conn.execute(sa.select(m.level).where(m.customer == order.customer)).scalar_one()
        level = center.ladder.get(level_code)
        paid = format_amount(basis, order.currency)
        growth = basis // settings.growth_unit
        if center.programs.get(ctx.conn, order.shop).enabled:
            multiplier = level.points_multiplier_percent
            earned = basis * settings.earn_points * multiplier // (settings.earn_unit * 100)
            if earned:
                center.ledger.write(
                    ctx.conn,
                    order.customer,
                    [
                        Move(
                            kind="earn",
                            delta=earned,
                            reason=f"order {order.id} completed: {paid} paid for goods"
                            + (f", x{multiplier / 100:g} ({level.name})" if multiplier != 100 else ""),
                            order_id=order.id,
                            shop=order.shop,
                            data={
                                "basis": basis,
                                "refunded_before": sum(refunded.values()),
                                "multiplier": multiplier,
                                "level": level_code,
                                "growth": growth,
                            },
                        )
                    ],
                    actor=ctx.principal.subject,
                )
        center.levels.add_growth(
            ctx.conn,
            order.customer,
            growth,
            f"order {order.id} completed: {paid} paid for goods",
            actor=ctx.principal.subject,
            order_id=order.id,
        )
        if growth:
            ctx.set(extra={**order.extra, "membership": {**_info(ctx), "growth": growth, "basis": basis}})

    # -- refunds -------------------------------------------------------------------------

    def refund(self, ctx: OrderContext, refund: Refund) -> None:
        if refund.status != "refunded":
            return
        center, order = self.center, ctx.order
        assert order.id is not None
        done = center.ledger.of_order(ctx.conn, order.id)
        spent = -done.get("spend", 0)
        earned = done.get("earn", 0)
        info = _info(ctx)
        if not (spent or earned or info.get("growth")):
            return
        refunded = refunded_goods(ctx.conn, order.id)
        moves = []
        if spent:
            back = self._returned_target(ctx, spent, refunded) - done.get("return", 0)
            if back > 0:
                moves.append(
                    Move(
                        kind="return",
                        delta=back,
                        reason=f"refund {refund.id} of order {order.id}: points spent on the refunded goods",
                        order_id=order.id,
                        refund_id=refund.id,
                        shop=order.shop,
                        case_id=refund.data.get("case_id") if isinstance(refund.data, dict) else None,
                    )
                )
        basis = int(info.get("basis") or 0)
        earn_row = self._earn_data(ctx.conn, order.id) if (earned or info.get("growth")) else None
        if earn_row is not None:
            basis = int(earn_row.get("basis", basis))
        after = sum(refunded.values()) - int((earn_row or {}).get("refunded_before", 0))
        if earned and basis:
            gone = share(earned, basis, min(max(after, 0), basis)) + done.get("clawback", 0)
            if gone > 0:
                moves.append(
                    Move(
                        kind="clawback",
                        delta=-gone,
                        reason=f"refund {refund.id} of order {order.id}: points earned on the refunded goods",
                        order_id=order.id,
                        refund_id=refund.id,
                        shop=order.shop,
                    )
                )
        if moves:
            center.ledger.write(ctx.conn, order.customer, moves, actor=ctx.principal.subject)
        growth = int((earn_row or {}).get("growth", info.get("growth") or 0))
        if growth and basis:
            target = share(growth, basis, min(max(after, 0), basis))
            taken = self._growth_taken(ctx.conn, order.customer, order.id)
            if target > taken:
                center.levels.add_growth(
                    ctx.conn,
                    order.customer,
                    -(target - taken),
                    f"refund {refund.id} of order {order.id}: growth of the refunded goods",
                    actor=ctx.principal.subject,
                    order_id=order.id,
                )

    def _returned_target(self, ctx: OrderContext, spent: int, refunded: dict[int, int]) -> int:
        """Points spent on the goods refunded so far: per line, that line's refunded share."""
        order_id = ctx.order.id or 0
        allocation: dict[int, int] = {}
        for adj in self.center.kernel.orders.load_adjustments(ctx.conn, order_id):
            if adj.source == self.center.name and adj.code == "points":
                allocation = {line_id: -amount for line_id, amount in (adj.allocation or {}).items()}
        lines = [line for line in ctx.lines if line.id is not None]
        weights = [allocation.get(line.id or 0, 0) for line in lines]
        if not any(weights):
            weights = [max(0, line.total - line.shipping) for line in lines]
        per_line = allocate(spent, weights)
        target = 0
        for line, points in zip(lines, per_line, strict=True):
            goods = line.total - line.shipping
            if points and goods > 0:
                target += share(points, goods, min(refunded.get(line.id or 0, 0), goods))
        return target

    def _earn_data(self, conn: sa.Connection, order_id: int) -> dict[str, Any] | None:
        p = t.points.c
        data = conn.execute(
            sa.select(p.data).where(p.order_id == order_id, p.kind == "earn").order_by(p.id).limit(1)
        ).scalar()
        return data if isinstance(data, dict) else None

    def _growth_taken(self, conn: sa.Connection, customer: str, order_id: int) -> int:
        h = t.history.c
        taken = conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(h.growth), 0)).where(
                h.customer == customer, h.order_id == order_id, h.kind == "growth", h.growth < 0
            )
        ).scalar_one()
        return -int(taken)

    # -- after-sale ------------------------------------------------------------------------

    def after_sale(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        """极速退款: a top-level member's refund-only case below the level's amount goes at once."""
        if case.status != "requested" or case.type != "refund_only" or case.hold:
            return
        ladder = self.center.ladder
        if not any(level.fast_refund_below for _, level in ladder):
            return
        m = t.members.c
        code = ctx.conn.execute(sa.select(m.level).where(m.customer == case.customer)).scalar()
        level = ladder.get(code or ladder.base)
        if not level.fast_refund_below:
            return
        amount = case.refund_amount or self._case_value(ctx, case)
        if 0 < amount < level.fast_refund_below:
            case.fast_track = (
                f"{level.name} member: refund-only below "
                f"{format_amount(level.fast_refund_below, ctx.order.currency)} approved at once "
                f"({level.zh or level.name}极速退款)"
            )

    @staticmethod
    def _case_value(ctx: OrderContext, case: AfterSaleCase) -> int:
        lines = {line.id: line for line in ctx.lines}
        total = 0
        for item in case.lines:
            line = lines.get(item.line_id)
            if line is not None and 0 < item.quantity <= line.quantity:
                total += share(line.total - line.shipping, line.quantity, item.quantity)
        return total


def refunded_goods(conn: sa.Connection, order_id: int) -> dict[int, int]:
    """Per line of the order: goods refunded so far (refunds paid out, freight excluded)."""
    rl, r = kt.refund_lines.c, kt.refunds.c
    return {
        int(line_id): int(amount)
        for line_id, amount in conn.execute(
            sa.select(rl.line_id, sa.func.sum(rl.amount - rl.shipping))
            .join(kt.refunds, r.id == rl.refund_id)
            .where(r.order_id == order_id, r.status == "refunded")
            .group_by(rl.line_id)
        )
    }
