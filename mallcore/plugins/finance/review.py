"""财务审核 refund review: the queue, maker-checker, and two approvals above a threshold.

At ``order_refund`` / ``requested`` the center decides by policy whether
finance reviews the refund; if so it calls ``refund.require_review`` and
keeps a review row. A finance user then approves or rejects it through
``POST /finance/refunds/{id}/approve`` / ``reject``, each run inside
``kernel.orders.stage("refund_review", order_id, principal)``.

Rules (each refusal names its code):

- the reviewer is never the one who requested the refund, approved the
  after-sale case or received the goods (``refund.requested_by``,
  ``refund.data["approved_by"]``, ``refund.data["received_by"]``): 403
  ``maker_checker``;
- above ``second_approval_above`` two different finance users must approve:
  the first approval is recorded and the review waits as
  ``awaiting_second_approval``; the same person again gets 409
  ``second_approval_required``; the second approval pays the refund out;
- a finance user tied to a shop sees and acts on that shop's refunds only
  (others answer 404); platform finance users (no shop) act on all. The
  routes' guard admits finance users and admins only (403 ``role_required``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OrderContext,
    Principal,
    Refund,
    format_amount,
    visible_to,
)
from mallcore.kernel.http import Reply

from . import tables as t
from .schemas import ApprovalView, ReviewView

if TYPE_CHECKING:
    from . import FinanceCenter

OPEN = ("pending", "awaiting_second_approval")
# What GET /finance/refunds?status= takes: "open" and the kernel's "pending_review" mean both OPEN.
STATUSES = ("open", "pending_review", *OPEN, "approved", "rejected", "all")


class Reviews:
    def __init__(self, center: FinanceCenter) -> None:
        self.center = center

    # -- policy (called in order_refund at ``requested``) ---------------------------------

    def needs_review(self, refund: Refund) -> str | None:
        """Why finance reviews this refund, or ``None`` when it goes straight through."""
        s = self.center.settings
        if not (s.review_refunds and refund.reviewable):
            return None
        if s.review_sources and refund.source not in s.review_sources:
            return None
        if refund.amount < s.review_from_amount:
            return None
        if refund.amount > s.second_approval_above:
            return f"refund above {s.second_approval_above}: two finance approvals"
        return "every after-sale refund is reviewed by finance"

    def open(self, ctx: OrderContext, refund: Refund) -> None:
        why = self.needs_review(refund)
        if why is None:
            return
        refund.require_review("finance", why)
        data = refund.data or {}
        ctx.conn.execute(
            t.reviews.insert().values(
                refund_id=refund.id,
                order_id=refund.order_id,
                shop=refund.shop,
                currency=refund.currency,
                amount=refund.amount,
                reason=refund.reason[:500],
                source=refund.source,
                ref=refund.ref,
                status="pending",
                required_approvals=2 if refund.amount > self.center.settings.second_approval_above else 1,
                requested_by=refund.requested_by,
                case_approved_by=_subject(data.get("approved_by")),
                received_by=_subject(data.get("received_by")),
                why=why[:300],
                created_at=self.center.now(),
            )
        )

    def settle(self, ctx: OrderContext, refund: Refund) -> None:
        """At ``refunded`` / ``rejected``: close the review row if there is one.

        A refund can be rejected outside finance (the refund center rejects an early refund
        whose goods never came back): the queue then shows who did it and why.
        """
        values: dict[str, Any] = {
            "status": "approved" if refund.status == "refunded" else refund.status,
            "decided_at": self.center.now(),
        }
        if refund.status == "rejected":
            values["decided_by"] = _subject(refund.reviewers[-1] if refund.reviewers else None)
            values["note"] = (refund.note or "")[:500] or None
        ctx.conn.execute(
            t.reviews.update()
            .where(t.reviews.c.refund_id == refund.id, t.reviews.c.status.in_(OPEN))
            .values(**values)
        )

    # -- reading ----------------------------------------------------------------------------

    def _view(self, conn: sa.Connection, rows: Sequence[Any], principal: Principal) -> list[ReviewView]:
        if not rows:
            return []
        a = t.review_approvals.c
        approvals: dict[int, list[ApprovalView]] = {}
        for r in conn.execute(
            sa.select(t.review_approvals)
            .where(a.refund_id.in_([row.refund_id for row in rows]))
            .order_by(a.id)
        ):
            approvals.setdefault(r.refund_id, []).append(
                ApprovalView(subject=r.subject, at=r.at, note=r.note)
            )
        out = []
        for row in rows:
            given = approvals.get(row.refund_id, [])
            out.append(
                ReviewView(
                    refund_id=row.refund_id,
                    order_id=row.order_id,
                    shop=row.shop,
                    currency=row.currency,
                    amount=row.amount,
                    reason=row.reason,
                    source=row.source,
                    ref=row.ref,
                    status=row.status,
                    required_approvals=row.required_approvals,
                    approvals=given,
                    requested_by=row.requested_by,
                    case_approved_by=row.case_approved_by,
                    received_by=row.received_by,
                    why=row.why,
                    decided_by=row.decided_by,
                    decided_at=row.decided_at,
                    note=row.note,
                    created_at=row.created_at,
                    you_may_decide=row.status in OPEN and _refusal(row, given, principal) is None,
                )
            )
        return out

    def find(
        self,
        principal: Principal,
        *,
        status: str | None,
        shop: str | None,
        order_id: int | None,
        limit: int,
        after: int | None = None,
    ) -> list[ReviewView]:
        """Reviews the principal may see, oldest refund first (``after``: a refund id, for the next page)."""
        r = t.reviews.c
        stmt = sa.select(t.reviews).where(visible_to(principal, r.shop))
        if status is not None and status not in STATUSES:
            raise InvalidInput(
                f"status must be one of {', '.join(STATUSES)}",
                code="status_unknown",
                extra={"status": status},
            )
        if status in (None, "open", "pending_review"):
            stmt = stmt.where(r.status.in_(OPEN))
        elif status != "all":
            stmt = stmt.where(r.status == status)
        if shop:
            stmt = stmt.where(r.shop == shop)
        if order_id is not None:
            stmt = stmt.where(r.order_id == order_id)
        if after is not None:
            stmt = stmt.where(r.refund_id > after)
        stmt = stmt.order_by(r.refund_id).limit(limit)
        with self.center.kernel.db.transaction(write=False) as conn:
            return self._view(conn, conn.execute(stmt).all(), principal)

    def get(self, principal: Principal, refund_id: int) -> ReviewView:
        with self.center.kernel.db.transaction(write=False) as conn:
            row = self._visible(conn, principal, refund_id)
            return self._view(conn, [row], principal)[0]

    def _visible(self, conn: sa.Connection, principal: Principal, refund_id: int) -> Any:
        row = conn.execute(sa.select(t.reviews).where(t.reviews.c.refund_id == refund_id)).first()
        if row is None or not principal.can_act_for_shop(row.shop, "finance"):
            raise NotFound(f"no refund {refund_id} under finance review", code="review_not_found")
        return row

    # -- deciding -----------------------------------------------------------------------------

    def _reply(
        self, ctx: OrderContext, principal: Principal, refund_id: int, reply: Reply | None
    ) -> ReviewView:
        """The review as it now stands, answered (and stored for its Idempotency-Key) in the stage."""
        row = ctx.conn.execute(sa.select(t.reviews).where(t.reviews.c.refund_id == refund_id)).one()
        view = self._view(ctx.conn, [row], principal)[0]
        if reply is not None:
            reply(ctx.conn, view, 200)
        return view

    def approve(
        self, principal: Principal, refund_id: int, note: str | None, reply: Reply | None = None
    ) -> ReviewView:
        kernel = self.center.kernel
        with kernel.db.transaction(write=False) as conn:
            order_id = self._visible(conn, principal, refund_id).order_id
        with kernel.orders.stage("refund_review", order_id, principal) as ctx:
            row, given = self._decidable(ctx, principal, refund_id)
            now = self.center.now()
            ctx.conn.execute(
                t.review_approvals.insert().values(
                    refund_id=refund_id, subject=principal.subject, note=note, at=now
                )
            )
            if len(given) + 1 < row.required_approvals:
                ctx.conn.execute(
                    t.reviews.update()
                    .where(t.reviews.c.refund_id == refund_id)
                    .values(status="awaiting_second_approval")
                )
                ctx.timeline(
                    "finance.refund_first_approval",
                    f"Refund {refund_id}: first finance approval by {principal.subject}; "
                    "a second finance approval is required",
                    zh=f"退款 {refund_id}:财务一审通过({principal.subject}),等待二次审核",
                    public=False,
                    ref=f"refund:{refund_id}",
                    data={"refund_id": refund_id, "approvals": len(given) + 1},
                )
            else:
                approval = ctx.timeline(
                    "finance.refund_approved",
                    f"Finance approved the refund ({format_amount(row.amount, row.currency)})",
                    zh=f"财务审核通过,退款 {format_amount(row.amount, row.currency)}",
                    ref=f"refund:{refund_id}",
                    data={"refund_id": refund_id, "approvals": len(given) + 1},
                )
                # (the refund this approval pays out is one event with it: shown once)
                with ctx.because(approval):
                    kernel.refunds.approve(ctx, refund_id, principal.subject)
                ctx.conn.execute(
                    t.reviews.update()
                    .where(t.reviews.c.refund_id == refund_id)
                    .values(status="approved", decided_by=principal.subject, decided_at=now, note=note)
                )
            view = self._reply(ctx, principal, refund_id, reply)
        return view

    def reject(
        self, principal: Principal, refund_id: int, reason: str, reply: Reply | None = None
    ) -> ReviewView:
        kernel = self.center.kernel
        with kernel.db.transaction(write=False) as conn:
            order_id = self._visible(conn, principal, refund_id).order_id
        with kernel.orders.stage("refund_review", order_id, principal) as ctx:
            self._decidable(ctx, principal, refund_id, rejecting=True)
            kernel.refunds.reject(ctx, refund_id, principal.subject, reason)
            ctx.conn.execute(
                t.reviews.update()
                .where(t.reviews.c.refund_id == refund_id)
                .values(
                    status="rejected",
                    decided_by=principal.subject,
                    decided_at=self.center.now(),
                    note=reason[:500],
                )
            )
            view = self._reply(ctx, principal, refund_id, reply)
        return view

    def _decidable(
        self, ctx: OrderContext, principal: Principal, refund_id: int, *, rejecting: bool = False
    ) -> tuple[Any, list[str]]:
        """The review row, locked with its order, if ``principal`` may decide it now."""
        row = self._visible(ctx.conn, principal, refund_id)
        if row.status not in OPEN:
            raise Conflict(
                f"refund {refund_id} is {row.status}, not awaiting review",
                code="refund_not_pending",
                extra={"status": row.status},
            )
        given = list(
            ctx.conn.execute(
                sa.select(t.review_approvals.c.subject).where(t.review_approvals.c.refund_id == refund_id)
            ).scalars()
        )
        refusal = _refusal(row, [ApprovalView(subject=s, at=None) for s in given], principal)
        if refusal is not None and not (rejecting and refusal[0] == "second_approval_required"):
            code, detail = refusal
            error = Forbidden if code == "maker_checker" else Conflict
            raise error(
                detail,
                code=code,
                extra={
                    "status": row.status,
                    "approvals": given,
                    "required_approvals": row.required_approvals,
                },
            )
        return row, given


def why_not(view: ReviewView, principal: Principal) -> str | None:
    """Why ``principal`` may not approve an open review (maker-checker, a second approver), or ``None``."""
    if view.status not in OPEN:
        return None
    refusal = _refusal(view, view.approvals, principal)
    return None if refusal is None else refusal[1]


def _refusal(row: Any, given: list[ApprovalView], principal: Principal) -> tuple[str, str] | None:
    who = principal.subject
    makers = {
        "requested the refund": row.requested_by,
        "approved the after-sale case": row.case_approved_by,
        "received the returned goods": row.received_by,
    }
    for what, subject in makers.items():
        if subject and subject == who:
            return "maker_checker", f"{who} {what}; a different finance user must review it"
    if any(a.subject == who for a in given):
        return (
            "second_approval_required",
            f"{who} already approved refund {row.refund_id}; a second, different finance user must approve",
        )
    return None


def _subject(value: Any) -> str | None:
    return None if value in (None, "") else str(value)[:128]
