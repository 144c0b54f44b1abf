"""What risk does at each stage it watches; the hooks in ``__init__`` call these.

- **place** (``order_reserve``, first of the centers): count the order,
  evaluate; ``block`` refuses with 403 ``risk_blocked`` before any center
  reserved anything (the placement rolls back whole); ``review`` places the
  order held (``ctx.put_on_hold("risk_review")``: payable, not dispatchable)
  and queues it for risk staff.
- **pay** (``order_pay``, before the payment center charges): only when a
  rule of the ``pay`` stage exists or the lists have entries; ``block``
  refuses the payment, ``review`` holds the order.
- **after_sale** (``order_after_sale`` at ``requested``): ``block`` refuses
  the request (403 ``risk_blocked``), ``review`` sets ``case.hold`` so the
  after-sale center takes no automatic decision (no approval by SLA) until
  risk staff release it.
- **refund** (``order_refund``, a wrapper around the other centers): at
  ``requested`` a ``review`` calls ``refund.require_review("risk", why)``;
  while that review is open the refund cannot be approved (409
  ``refund_on_hold``), by finance or anyone.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import Conflict, Forbidden, OrderContext, Payment, Refund, utcnow
from mallcore.kernel.aftersale import AfterSaleCase

from . import tables as t
from .engine import Evaluation

if TYPE_CHECKING:
    from . import RiskCenter

HOLD = "risk_review"


def refused() -> Forbidden:
    # The customer learns nothing of rules, lists or scores.
    return Forbidden("this request cannot be accepted; please contact customer service", code="risk_blocked")


class Stages:
    def __init__(self, center: RiskCenter) -> None:
        self.center = center

    def _queue(
        self, ctx: OrderContext, ev: Evaluation, decision_id: int, kind: str, now: datetime, **ids: Any
    ) -> int:
        return int(
            ctx.conn.execute(
                t.reviews.insert()
                .values(
                    decision_id=decision_id,
                    kind=kind,
                    stage=ev.stage,
                    order_id=ctx.order.id,
                    case_id=ids.get("case_id"),
                    refund_id=ids.get("refund_id"),
                    shop=ev.shop,
                    customer=ev.customer,
                    status="open",
                    score=ev.score,
                    created_at=now,
                )
                .returning(t.reviews.c.id)
            ).scalar_one()
        )

    def _refuse(self, ev: Evaluation, now: datetime, **ids: Any) -> Forbidden:
        # the stage rolls back: the writer records the refusal once it has let go
        self.center.decisions.defer(ev.row(now, order_id=ids.get("order_id"), **_ids(ids)))
        self.center.log.info(
            "risk.blocked", stage=ev.stage, customer=ev.customer, shop=ev.shop, why=ev.why(), score=ev.score
        )
        return refused()

    # -- placement -----------------------------------------------------------------------

    def place(self, ctx: OrderContext) -> None:
        now = utcnow()
        decisions = self.center.decisions
        ev = self.center.engine.evaluate(ctx, "place", now, observe=True)
        if ev.action == "block":
            raise self._refuse(ev, now)
        if ev.action == "allow" and decisions.deferred:
            decisions.defer(ev.row(now, order_id=ctx.order.id))
            return
        decision = decisions.record(ctx.conn, ev.row(now, order_id=ctx.order.id))
        if ev.action == "review":
            ctx.put_on_hold(
                HOLD, f"risk decision {decision}: {ev.why()}", zh=f"风控审核(决策 {decision}):{ev.why()}"
            )
            self._queue(ctx, ev, decision, "order", now)

    # -- payment -------------------------------------------------------------------------

    def pay(self, ctx: OrderContext, payment: Payment) -> None:
        center = self.center
        if payment.status != "unhandled":  # a provider's webhook confirming, not the customer
            return
        if not center.book(ctx.conn).by_stage["pay"] and center.list_index(ctx.conn).empty:
            return
        now = utcnow()
        ev = center.engine.evaluate(ctx, "pay", now)
        if ev.action == "block":
            raise self._refuse(ev, now, order_id=ctx.order.id)
        if ev.action == "allow" and center.decisions.deferred:
            center.decisions.defer(ev.row(now, order_id=ctx.order.id))
            return
        decision = center.decisions.record(ctx.conn, ev.row(now, order_id=ctx.order.id))
        if ev.action == "review" and not ctx.order.hold:
            ctx.put_on_hold(
                HOLD, f"risk decision {decision}: {ev.why()}", zh=f"风控审核(决策 {decision}):{ev.why()}"
            )
            self._queue(ctx, ev, decision, "order", now)

    # -- after-sale requests -------------------------------------------------------------

    def after_sale(self, ctx: OrderContext, case: AfterSaleCase) -> None:
        if case.status != "requested":
            return
        now = utcnow()
        facts = {
            "id": case.id,
            "type": case.type,
            "reason": case.reason,
            "units": sum(line.quantity for line in case.lines),
        }
        ev = self.center.engine.evaluate(ctx, "after_sale", now, case=facts)
        ids = {"order_id": ctx.order.id, "case_id": case.id}
        if ev.action == "block":
            raise self._refuse(ev, now, **ids)
        decision = self.center.decisions.record(ctx.conn, ev.row(now, **ids))
        if ev.action == "review":
            case.hold = HOLD
            self._queue(ctx, ev, decision, "case", now, case_id=case.id)
            ctx.timeline(
                "risk.case_held",
                f"After-sale case {case.id} held for risk review (decision {decision}): {ev.why()}",
                zh=f"售后单 {case.id} 转风控审核(决策 {decision}):{ev.why()}",
                public=False,
                ref=f"after_sale:{case.id}",
                data={"decision_id": decision, "case_id": case.id},
            )

    # -- refunds (a wrapper: before and after every other center) ---------------------------

    def refund(self, ctx: OrderContext, refund: Refund) -> Generator[None, Any, Any]:
        queued: int | None = None
        if refund.status == "requested" and refund.reviewable:
            queued = self._refund_requested(ctx, refund)
        elif refund.status == "approved":
            self._check_not_held(ctx, refund)
        result = yield
        if queued is not None:
            others = [c for c in refund.review_by if c != "risk"]
            if others:
                ctx.conn.execute(
                    t.reviews.update().where(t.reviews.c.id == queued).values(co_reviewers=others)
                )
        if refund.status in ("refunded", "rejected"):
            r = t.reviews.c
            ctx.conn.execute(
                t.reviews.update()
                .where(r.refund_id == refund.id, r.status == "open")
                .values(status="withdrawn", decided_at=utcnow(), note=f"refund {refund.status} elsewhere")
            )
        return result

    def _refund_requested(self, ctx: OrderContext, refund: Refund) -> int | None:
        now = utcnow()
        facts = {"id": refund.id, "amount": refund.amount, "source": refund.source, "reason": refund.reason}
        ev = self.center.engine.evaluate(ctx, "refund", now, refund=facts)
        decision = self.center.decisions.record(
            ctx.conn, ev.row(now, order_id=ctx.order.id, refund_id=refund.id)
        )
        if ev.action != "review":
            return None
        refund.require_review("risk", ev.why())
        ctx.timeline(
            "risk.refund_held",
            f"Refund {refund.id} held for risk review (decision {decision}): {ev.why()}",
            zh=f"退款 {refund.id} 转风控审核(决策 {decision}):{ev.why()}",
            public=False,
            ref=f"refund:{refund.id}",
            data={"decision_id": decision, "refund_id": refund.id},
        )
        return self._queue(ctx, ev, decision, "refund", now, refund_id=refund.id)

    def _check_not_held(self, ctx: OrderContext, refund: Refund) -> None:
        r = t.reviews.c
        open_review = ctx.conn.execute(
            sa.select(r.id).where(r.refund_id == refund.id, r.status == "open").limit(1)
        ).scalar()
        if open_review is not None:
            raise Conflict(
                f"refund {refund.id} is under risk review; it cannot be paid out until released",
                code="refund_on_hold",
                extra={"refund_id": refund.id},
            )

    # -- outcomes that feed the credit score ------------------------------------------------

    def complete(self, ctx: OrderContext) -> None:
        self.center.profiles.change(
            ctx.conn,
            ctx.order.customer,
            "order_completed",
            actor="system",
            now=utcnow(),
            order_id=ctx.order.id,
        )


def _ids(ids: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ids.items() if k in ("case_id", "refund_id")}
