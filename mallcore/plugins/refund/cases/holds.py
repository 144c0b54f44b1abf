"""Holds and fast tracks: what reacting centers decide about a new request.

At ``requested`` a reacting center may set ``case.hold`` (risk: held for
review) or ``case.fast_track`` (membership: 极速退款) in ``order_after_sale``.

- A **held** case takes no automatic decision: not the merchant-silence
  timer (the SLA run skips held cases), not the approval of a refund before
  shipment, not a fast track. It waits until the center that held it calls
  ``after_sale_release``: ``release`` lets it go on as if it had never been
  held (an approval it was kept from is taken at once; a deadline that passed
  meanwhile is acted on by the next SLA run), ``reject`` rejects the request.
  The merchant and the customer may still decide by hand (approve, reject,
  withdraw); that ends the hold, with a note for staff.
- A **fast-tracked** refund-only case is approved at once by the system
  ("Express refund approved" / 极速退款). A hold wins over a fast track.

Staff see ``hold`` on the case and a staff-only timeline entry; the customer
sees a case waiting for the merchant (without the deadline a held case will
not keep) and never the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from mallcore.kernel import InvalidInput, OrderContext
from mallcore.kernel.aftersale import AfterSaleCase

from ..schemas import RefundSettings
from ..states import CaseStatus as S
from .decisions import Decisions
from .lifecycle import Lifecycle
from .records import Case, CaseRecords, case_not_found

OUTCOMES = ("release", "reject")
# case.data key: a fast track that arrived with a hold, taken up if the hold is released
FAST_TRACK = "fast_track"


@dataclass(frozen=True)
class Holds:
    lifecycle: Lifecycle
    decisions: Decisions
    records: CaseRecords
    settings: RefundSettings

    def requested(self, ctx: OrderContext, case: Case, told: AfterSaleCase) -> None:
        """After ``order_after_sale`` at ``requested``: keep the hold, or decide at once."""
        if told.hold:
            case.hold = told.hold[:200]
            if told.fast_track:
                case.data[FAST_TRACK] = told.fast_track[:200]
            self.lifecycle.save(ctx, case)
            self.lifecycle.note(
                ctx,
                case,
                "held",
                f"On hold ({case.hold}): no automatic decision until the hold ends",
                f"售后单已冻结({case.hold}):解除前不自动处理",
                public=False,
                data={"hold": case.hold, "fast_track": told.fast_track},
            )
            return
        self.decide_at_once(ctx, case, told.fast_track)

    def decide_at_once(self, ctx: OrderContext, case: Case, fast_track: str | None) -> None:
        """The approvals a new refund-only request gets without waiting for the merchant."""
        if case.status != S.REQUESTED or case.type != "refund_only":
            return
        if not case.shipped and self.settings.auto_approve_unshipped:
            self.decisions.approve(ctx, case, actor="system", auto="unshipped")
        elif fast_track:
            self.lifecycle.note(
                ctx, case, "fast_track", f"Fast track: {fast_track}", f"极速退款:{fast_track}", public=False
            )
            self.decisions.approve(ctx, case, actor="system", auto="fast_track")

    def end(self, ctx: OrderContext, case_id: int, actor: str, note: str, outcome: str) -> None:
        """``after_sale_release``: the holding center releases the case or rejects it."""
        if outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {OUTCOMES}", code="invalid_outcome")
        case = self.records.load(ctx.conn, case_id)
        if case is None or case.order_id != ctx.order.id:
            raise case_not_found(case_id)
        life = self.lifecycle
        if case.hold is None:
            life.note(
                ctx,
                case,
                f"hold_{outcome}_late",
                f"{outcome.capitalize()} after review came when the case was no longer on hold "
                f"(it is {case.status}); nothing changed: {note}",
                f"审核结果({'放行' if outcome == 'release' else '拒绝'})送达时售后单已不在冻结中"
                f"(当前 {case.status}),未做变更:{note}",
                public=False,
                actor=actor,
            )
            return
        held, case.hold = case.hold, None
        fast_track = case.data.pop(FAST_TRACK, None)
        if outcome == "reject":
            life.move(
                ctx,
                case,
                S.REJECTED,
                "Your request did not pass review and was not approved",
                "您的售后申请未通过审核",
                actor=actor,
                data={"reason": "review"},
            )
            life.note(
                ctx,
                case,
                "hold_rejected",
                f"Rejected after review ({held}): {note}",
                f"审核未通过({held}):{note}",
                public=False,
                actor=actor,
            )
            return
        life.save(ctx, case)
        life.note(
            ctx,
            case,
            "hold_released",
            f"Hold lifted ({held}): {note}",
            f"已解除冻结({held}):{note}",
            public=False,
            actor=actor,
        )
        self.decide_at_once(ctx, case, fast_track)
