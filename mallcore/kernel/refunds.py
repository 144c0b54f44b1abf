"""Refunds: the money side of after-sale, and the limit that keeps it honest.

The refundable amount of ``k`` units of a line follows from the kernel's
allocation: a line's goods value (its ``total`` less its ``shipping``) is
shared over its units with :func:`~mallcore.kernel.money.share`, cumulatively,
so successive partial refunds can never add up to more than the line. Freight
is refunded only as the caller says (``none``, ``proportional`` to the units,
or all that ``remains``). Every live refund (requested, pending review,
approved, refunded) counts against the limit, and the check runs with the
order row locked, so concurrent cases cannot over-refund.

Steps::

    requested ──► pending_review ──► approved ──► refunded
        │              └──► rejected
        └──(no review)──────────────► approved ──► refunded

At each step ``order_refund(ctx, refund)`` is called (see hookspecs). When
every unit of every line has been refunded the order becomes ``closed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import msgspec
import sqlalchemy as sa

from . import states
from . import tables as t
from .context import OrderContext
from .errors import Conflict, InvalidInput, NotFound
from .money import format_amount, share
from .states import OrderStatus as S
from .types import Refund, RefundItem, RefundLine, utcnow

if TYPE_CHECKING:
    from .db import Database
    from .plugins import HookCalls

LIVE = ("requested", "pending_review", "approved", "refunded")
ShippingMode = Literal["none", "proportional", "remaining"]


class LineBalance(msgspec.Struct, kw_only=True):
    line_id: int
    quantity: int
    refunded_quantity: int
    goods: int
    shipping: int
    refunded_goods: int
    refunded_shipping: int

    @property
    def quantity_left(self) -> int:
        return self.quantity - self.refunded_quantity


class RefundService:
    def __init__(self, db: Database, calls: HookCalls) -> None:
        self.db = db
        self.calls = calls

    # -- what is left ------------------------------------------------------------

    def balances(self, ctx: OrderContext) -> dict[int, LineBalance]:
        """Per line: units and amounts already claimed by live refunds."""
        rl, r = t.refund_lines.c, t.refunds.c
        claimed = {
            row.line_id: row
            for row in ctx.conn.execute(
                sa.select(
                    rl.line_id,
                    sa.func.sum(rl.quantity).label("qty"),
                    sa.func.sum(rl.amount).label("amount"),
                    sa.func.sum(rl.shipping).label("shipping"),
                )
                .join(t.refunds, t.refunds.c.id == rl.refund_id)
                .where(r.order_id == ctx.order.id, r.status.in_(LIVE))
                .group_by(rl.line_id)
            )
        }
        out = {}
        for line in ctx.lines:
            assert line.id is not None
            c = claimed.get(line.id)
            out[line.id] = LineBalance(
                line_id=line.id,
                quantity=line.quantity,
                refunded_quantity=int(c.qty) if c else 0,
                goods=line.total - line.shipping,
                shipping=line.shipping,
                refunded_goods=int(c.amount - c.shipping) if c else 0,
                refunded_shipping=int(c.shipping) if c else 0,
            )
        return out

    def quote(
        self, ctx: OrderContext, items: Sequence[RefundItem], shipping: ShippingMode = "none"
    ) -> list[RefundLine]:
        """The refund lines ``items`` would make, checked against what is left."""
        if not items:
            raise InvalidInput("a refund needs at least one line", code="refund_empty")
        balances = self.balances(ctx)
        out = []
        seen = set()
        for item in items:
            if item.line_id in seen:
                raise InvalidInput(f"line {item.line_id} is listed twice", code="refund_line_repeated")
            seen.add(item.line_id)
            bal = balances.get(item.line_id)
            if bal is None:
                raise InvalidInput(f"order {ctx.order.id} has no line {item.line_id}", code="line_unknown")
            if item.quantity < 0 or (item.quantity == 0 and shipping == "none"):
                raise InvalidInput("refund quantities must be positive", code="quantity_invalid")
            if item.quantity > bal.quantity_left:
                raise Conflict(
                    f"line {item.line_id}: {item.quantity} units asked, {bal.quantity_left} left to refund",
                    code="refund_exceeds_quantity",
                    extra={"line_id": item.line_id, "refundable_quantity": bal.quantity_left},
                )
            done = bal.refunded_quantity
            goods = share(bal.goods, bal.quantity, done + item.quantity) - share(
                bal.goods, bal.quantity, done
            )
            if not 0 <= item.deduction <= goods:
                raise InvalidInput(
                    f"line {item.line_id}: deduction must be between 0 and {goods}", code="deduction_invalid"
                )
            if shipping == "proportional":
                ship = share(bal.shipping, bal.quantity, done + item.quantity) - share(
                    bal.shipping, bal.quantity, done
                )
                ship = min(ship, bal.shipping - bal.refunded_shipping)
            elif shipping == "remaining":
                ship = bal.shipping - bal.refunded_shipping
            else:
                ship = 0
            out.append(
                RefundLine(
                    line_id=item.line_id,
                    quantity=item.quantity,
                    amount=goods - item.deduction + ship,
                    shipping=ship,
                )
            )
        return out

    # -- steps -------------------------------------------------------------------

    def request(
        self,
        ctx: OrderContext,
        items: Sequence[RefundItem],
        *,
        reason: str,
        source: str,
        ref: str | None = None,
        shipping: ShippingMode = "none",
        review: bool = True,
        close_when_full: bool = True,
        data: dict[str, Any] | None = None,
    ) -> Refund:
        """Open a refund inside ``ctx`` (the order is locked by the stage).

        Review (``order_refund`` at ``requested``) may hold it; otherwise it
        is approved, paid out and booked in the same transaction.
        """
        order = ctx.order
        if order.status in (S.AWAITING_PAYMENT, S.CANCELLED) and review:
            raise Conflict(
                f"order {order.id} is {order.status}; nothing was paid", code="order_not_refundable"
            )
        lines = self.quote(ctx, items, shipping)
        amount = sum(line.amount for line in lines)
        claimed = ctx.conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(t.refunds.c.amount), 0)).where(
                t.refunds.c.order_id == order.id, t.refunds.c.status.in_(LIVE)
            )
        ).scalar_one()
        if claimed + amount > order.paid:
            raise Conflict(
                f"refunds would total {claimed + amount}, more than the {order.paid} paid",
                code="refund_exceeds_paid",
                extra={"refundable": max(0, order.paid - claimed)},
            )
        now = utcnow()
        refund = Refund(
            id=0,
            order_id=order.id or 0,
            shop=order.shop,
            status="requested",
            currency=order.currency,
            amount=amount,
            shipping=sum(line.shipping for line in lines),
            reason=reason,
            source=source,
            ref=ref,
            requested_by=ctx.principal.subject,
            lines=lines,
            reviewable=review,
            data=data or {},
            created_at=now,
            updated_at=now,
        )
        refund.id = ctx.conn.execute(
            t.refunds.insert()
            .values(
                order_id=refund.order_id,
                shop=refund.shop,
                status=refund.status,
                currency=refund.currency,
                amount=refund.amount,
                shipping=refund.shipping,
                reason=reason[:500],
                source=source,
                ref=ref,
                requested_by=refund.requested_by,
                reviewers=[],
                data=data or None,
                created_at=now,
                updated_at=now,
            )
            .returning(t.refunds.c.id)
        ).scalar_one()
        ctx.conn.execute(
            t.refund_lines.insert(),
            [
                {
                    "refund_id": refund.id,
                    "line_id": line.line_id,
                    "quantity": line.quantity,
                    "amount": line.amount,
                    "shipping": line.shipping,
                }
                for line in lines
            ],
        )
        ctx.timeline(
            "refund.requested",
            f"Refund of {_fmt(amount, refund.currency)} requested",
            zh=f"退款申请已提交,金额 {_fmt(amount, refund.currency)}",
            ref=f"refund:{refund.id}",
            data={"refund_id": refund.id, "amount": amount, "source": source},
        )
        ctx.emit("refund.requested", _payload(refund))
        self.calls.order_refund(ctx=ctx, refund=refund)
        if refund.review_by:
            self._set(ctx, refund, "pending_review")
            ctx.timeline(
                "refund.pending_review",
                "Refund submitted, awaiting finance review",
                zh="退款申请已提交,等待财务审核",
                ref=f"refund:{refund.id}",
                data={
                    "refund_id": refund.id,
                    "review_by": refund.review_by,
                    "review_reasons": refund.review_reasons,
                },
            )
            ctx.emit("refund.pending_review", _payload(refund))
        else:
            self._pay_out(ctx, refund, approver="system", close_when_full=close_when_full)
        return refund

    def refund_everything(self, ctx: OrderContext, *, reason: str) -> Refund | None:
        """Refund all that is left of a paid order at once (cancellation)."""
        balances = self.balances(ctx)
        items = [RefundItem(b.line_id, b.quantity_left) for b in balances.values() if b.quantity_left]
        if not items:
            return None
        return self.request(
            ctx,
            items,
            reason=reason,
            source="cancel",
            shipping="remaining",
            review=False,
            close_when_full=False,
        )

    def approve(self, ctx: OrderContext, refund_id: int, approver: str) -> Refund:
        refund = self.load(ctx.conn, refund_id, order_id=ctx.order.id)
        if refund.status != "pending_review":
            raise Conflict(
                f"refund {refund_id} is {refund.status}, not awaiting review", code="refund_not_pending"
            )
        self._pay_out(ctx, refund, approver=approver, close_when_full=True)
        return refund

    def reject(self, ctx: OrderContext, refund_id: int, actor: str, note: str) -> Refund:
        refund = self.load(ctx.conn, refund_id, order_id=ctx.order.id)
        if refund.status != "pending_review":
            raise Conflict(
                f"refund {refund_id} is {refund.status}, not awaiting review", code="refund_not_pending"
            )
        refund.note = note
        refund.reviewers.append(actor)
        self._set(ctx, refund, "rejected")
        ctx.timeline(
            "refund.rejected",
            f"Refund rejected: {note}",
            zh=f"退款被驳回:{note}",
            ref=f"refund:{refund.id}",
            data={"refund_id": refund.id},
            actor=actor,
        )
        ctx.emit("refund.rejected", _payload(refund))
        self.calls.order_refund(ctx=ctx, refund=refund)
        return refund

    def _pay_out(self, ctx: OrderContext, refund: Refund, *, approver: str, close_when_full: bool) -> None:
        if approver not in refund.reviewers and approver != "system":
            refund.reviewers.append(approver)
        self._set(ctx, refund, "approved")
        self.calls.order_refund(ctx=ctx, refund=refund)
        self._set(ctx, refund, "refunded")
        ctx.set(refunded=ctx.order.refunded + refund.amount)
        ctx.timeline(
            "refund.refunded",
            f"Refunded {_fmt(refund.amount, refund.currency)} to the original payment method",
            zh=f"退款成功,{_fmt(refund.amount, refund.currency)} 已原路退回",
            ref=f"refund:{refund.id}",
            data={"refund_id": refund.id, "amount": refund.amount, "provider_ref": refund.provider_ref},
        )
        ctx.emit("refund.refunded", _payload(refund))
        self.calls.order_refund(ctx=ctx, refund=refund)
        if close_when_full and states.can(ctx.order.status, S.CLOSED) and self._fully_refunded(ctx):
            ctx.transition(S.CLOSED)

    def _fully_refunded(self, ctx: OrderContext) -> bool:
        rl, r = t.refund_lines.c, t.refunds.c
        done = dict(
            ctx.conn.execute(
                sa.select(rl.line_id, sa.func.sum(rl.quantity))
                .join(t.refunds, r.id == rl.refund_id)
                .where(r.order_id == ctx.order.id, r.status == "refunded")
                .group_by(rl.line_id)
            ).all()
        )
        return all(done.get(line.id, 0) >= line.quantity for line in ctx.lines)

    def _set(self, ctx: OrderContext, refund: Refund, status: str) -> None:
        refund.status = status
        refund.updated_at = utcnow()
        ctx.conn.execute(
            t.refunds.update()
            .where(t.refunds.c.id == refund.id)
            .values(
                status=status,
                updated_at=refund.updated_at,
                reviewers=refund.reviewers,
                provider_ref=refund.provider_ref,
                note=refund.note,
                review_reasons=refund.review_reasons or None,
            )
        )

    # -- reading -----------------------------------------------------------------

    def load(self, conn: sa.Connection, refund_id: int, *, order_id: int | None = None) -> Refund:
        row = conn.execute(sa.select(t.refunds).where(t.refunds.c.id == refund_id)).first()
        if row is None or (order_id is not None and row.order_id != order_id):
            raise NotFound(f"refund {refund_id} not found", code="refund_not_found")
        lines = [
            RefundLine(line_id=r.line_id, quantity=r.quantity, amount=r.amount, shipping=r.shipping)
            for r in conn.execute(
                sa.select(t.refund_lines)
                .where(t.refund_lines.c.refund_id == refund_id)
                .order_by(t.refund_lines.c.id)
            )
        ]
        return Refund(
            id=row.id,
            order_id=row.order_id,
            shop=row.shop,
            status=row.status,
            currency=row.currency,
            amount=row.amount,
            shipping=row.shipping,
            reason=row.reason,
            source=row.source,
            ref=row.ref,
            requested_by=row.requested_by,
            lines=lines,
            reviewers=list(row.reviewers or []),
            provider_ref=row.provider_ref,
            note=row.note,
            review_reasons=row.review_reasons or {},
            data=row.data or {},
            created_at=row.created_at,
            updated_at=row.updated_at,
        )

    def order_of(self, refund_id: int) -> int:
        with self.db.transaction(write=False) as conn:
            order_id = conn.execute(
                sa.select(t.refunds.c.order_id).where(t.refunds.c.id == refund_id)
            ).scalar()
        if order_id is None:
            raise NotFound(f"refund {refund_id} not found", code="refund_not_found")
        return int(order_id)


def _fmt(amount: int, currency: str) -> str:
    return format_amount(amount, currency)


def _payload(refund: Refund) -> dict[str, Any]:
    return {
        "refund_id": refund.id,
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency,
        "source": refund.source,
        "ref": refund.ref,
    }
