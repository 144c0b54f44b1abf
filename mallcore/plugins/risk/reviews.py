"""The review queue: held orders, after-sale cases and refunds, oldest first.

Risk staff (a shop's, or the platform's) work it:

- **release**: an order's hold is lifted (``kernel.orders.release_in``; a
  paid order is then dispatched by WMS); a case is handed back to the
  after-sale center (``after_sale_release`` with ``outcome="release"``) to go
  on as if never held; a refund is approved and paid out through the
  kernel's refund service, or, when another center (finance) reviews it too,
  left to that review.
- **reject**: the order is cancelled (``kernel.orders.cancel_in``: stock,
  coupons and points released, payment refunded) and the customer's credit
  lowered; a case is rejected by the after-sale center
  (``after_sale_release`` with ``outcome="reject"``) and a refund refused
  (``kernel.refunds.reject``), both lowering the customer's credit as
  abusive.

The decision runs in a stage on the order as the system (``SYSTEM``: the
kernel lets only the customer and the shop's merchants cancel an order, and
risk staff act for the platform, not as a merchant), once the review was
found visible to the staff member; every entry risk writes names that
member as its actor. Each step writes a staff-only note on the order's
timeline; the customer sees the order cancelled or going on, never why.
Deciding a review that is no longer open answers 409 ``review_closed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import SYSTEM, Conflict, NotFound, Principal, utcnow, visible_to
from mallcore.kernel.http import Reply

from . import tables as t
from .schemas import ReviewView

if TYPE_CHECKING:
    from mallcore.kernel import OrderContext

    from . import RiskCenter

STATUSES = ("open", "released", "rejected", "withdrawn", "all")


def _select() -> Any:
    r, d = t.reviews.c, t.decisions.c
    return sa.select(t.reviews, d.action, d.rules, d.lists, d.facts, d.signals).join(
        t.decisions, d.id == r.decision_id
    )


def review_view(row: Any) -> ReviewView:
    return ReviewView(
        id=row.id,
        kind=row.kind,
        order_id=row.order_id,
        case_id=row.case_id,
        refund_id=row.refund_id,
        stage=row.stage,
        action=row.action,
        status=row.status,
        score=row.score,
        shop=row.shop,
        customer=row.customer,
        decision_id=row.decision_id,
        rules=list(row.rules or []),
        lists=list(row.lists or []),
        facts=dict(row.facts or {}),
        signals=dict(row.signals or {}),
        co_reviewers=list(row.co_reviewers or []),
        created_at=row.created_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        note=row.note,
    )


class Reviews:
    def __init__(self, center: RiskCenter) -> None:
        self.center = center

    # -- reading ---------------------------------------------------------------------

    def queue(
        self,
        principal: Principal,
        *,
        status: str,
        kind: str | None,
        shop: str | None,
        order_id: int | None,
        after: int | None,
        limit: int,
    ) -> list[ReviewView]:
        """Oldest first; ``after`` (an id) pages on."""
        r = t.reviews.c
        stmt = _select().where(visible_to(principal, r.shop))
        if status != "all":
            stmt = stmt.where(r.status == status)
        if kind:
            stmt = stmt.where(r.kind == kind)
        if shop:
            stmt = stmt.where(r.shop == shop)
        if order_id is not None:
            stmt = stmt.where(r.order_id == order_id)
        if after:
            stmt = stmt.where(r.id > after)
        with self.center.kernel.db.transaction(write=False) as conn:
            return [review_view(row) for row in conn.execute(stmt.order_by(r.id).limit(limit))]

    def _row(self, conn: sa.Connection, principal: Principal, review_id: int) -> Any:
        r = t.reviews.c
        row = conn.execute(_select().where(r.id == review_id, visible_to(principal, r.shop))).first()
        if row is None:
            raise NotFound(f"review {review_id} not found", code="review_not_found")
        return row

    def get(self, principal: Principal, review_id: int) -> ReviewView:
        with self.center.kernel.db.transaction(write=False) as conn:
            return review_view(self._row(conn, principal, review_id))

    # -- deciding --------------------------------------------------------------------

    def decide(self, principal: Principal, review_id: int, verdict: str, note: str, reply: Reply) -> None:
        kernel = self.center.kernel
        with kernel.db.transaction(write=False) as conn:
            order_id = self._row(conn, principal, review_id).order_id
        # As the system (see the module docstring); the review is checked visible to
        # the staff member again under the order's lock.
        with kernel.orders.stage("risk_review", order_id, SYSTEM) as ctx:
            row = self._row(ctx.conn, principal, review_id)
            r = t.reviews.c
            closed = ctx.conn.execute(
                t.reviews.update()
                .where(r.id == review_id, r.status == "open")
                .values(status=verdict, decided_by=principal.subject, decided_at=utcnow(), note=note)
            ).rowcount
            if not closed:
                raise Conflict(
                    f"review {review_id} is {row.status}, not open",
                    code="review_closed",
                    extra={"status": row.status},
                )
            if verdict == "released":
                self._release(ctx, row, principal.subject, note)
            else:
                self._reject(ctx, row, principal.subject, note)
            reply(ctx.conn, review_view(self._row(ctx.conn, principal, review_id)))

    def _note(self, ctx: OrderContext, row: Any, actor: str, verdict: str, en: str, zh: str) -> None:
        ref = (
            f"after_sale:{row.case_id}"
            if row.kind == "case"
            else f"refund:{row.refund_id}"
            if row.kind == "refund"
            else None
        )
        ctx.timeline(
            f"risk.review_{verdict}",
            en,
            zh=zh,
            public=False,
            ref=ref,
            actor=actor,
            data={"review_id": row.id, "decision_id": row.decision_id},
        )

    @staticmethod
    def _what(row: Any) -> tuple[str, str]:
        """The review and what it held, for the timeline (English, Chinese)."""
        if row.kind == "case":
            return (
                f"Risk review {row.id} of after-sale case {row.case_id}",
                f"售后单 {row.case_id} 风控审核 {row.id}",
            )
        if row.kind == "refund":
            return (
                f"Risk review {row.id} of refund {row.refund_id}",
                f"退款 {row.refund_id} 风控审核 {row.id}",
            )
        return f"Risk review {row.id}", f"风控审核 {row.id}"

    def _release(self, ctx: OrderContext, row: Any, actor: str, note: str) -> None:
        kernel = self.center.kernel
        en, zh = self._what(row)
        self._note(ctx, row, actor, "released", f"{en} released: {note}", f"{zh} 已放行:{note}")
        if row.kind == "order":
            if ctx.order.hold:
                kernel.orders.release_in(ctx, f"risk review {row.id}: {note}")
        elif row.kind == "case":
            kernel.hook.after_sale_release(
                ctx=ctx, case_id=row.case_id, actor=actor, note=note, outcome="release"
            )
        else:
            refund = kernel.refunds.load(ctx.conn, row.refund_id, order_id=ctx.order.id)
            if refund.status == "pending_review" and not row.co_reviewers:
                kernel.refunds.approve(ctx, row.refund_id, actor)

    def _reject(self, ctx: OrderContext, row: Any, actor: str, note: str) -> None:
        kernel = self.center.kernel
        en, zh = self._what(row)
        self._note(ctx, row, actor, "rejected", f"{en} rejected: {note}", f"{zh} 未通过:{note}")
        # a held order is a rejected review; a held case or refund, abuse of refunds
        kind = "review_rejected" if row.kind == "order" else "abusive_refund"
        self.center.profiles.change(
            ctx.conn, row.customer, kind, actor=actor, now=utcnow(), order_id=row.order_id, note=note
        )
        if row.kind == "order":
            if ctx.order.status in ("awaiting_payment", "paid"):
                kernel.orders.cancel_in(ctx, "the order did not pass review")
        elif row.kind == "case":
            kernel.hook.after_sale_release(
                ctx=ctx, case_id=row.case_id, actor=actor, note=note, outcome="reject"
            )
        else:
            refund = kernel.refunds.load(ctx.conn, row.refund_id, order_id=ctx.order.id)
            if refund.status == "pending_review":
                kernel.refunds.reject(ctx, row.refund_id, actor, "the refund did not pass review")
