"""Who decides a request's fate: the merchant approves or rejects it, the customer
withdraws it, and a cancelled order closes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mallcore.kernel import LIVE_REFUND_STATUSES, Conflict, OrderContext, RefundItem

from .. import states as st
from ..schemas import Decision, RefundSettings
from ..states import CaseStatus as S
from .lifecycle import Lifecycle
from .records import Case, CaseRecords
from .settlement import Settlement


@dataclass(frozen=True)
class Decisions:
    lifecycle: Lifecycle
    settlement: Settlement
    records: CaseRecords
    settings: RefundSettings
    # where the goods are expected back (``Returns.expected_warehouse``): kept on the case
    # from approval, so the return parcel can be shown as expected before any waybill
    expected_warehouse: Callable[[OrderContext, Case], str | None] | None = None

    def approve(
        self,
        ctx: OrderContext,
        case: Case,
        *,
        actor: str,
        decision: Decision | None = None,
        auto: str | None = None,
    ) -> None:
        """Approve a request; once inspected, (re)do its refund or replacement.

        ``auto`` says why no merchant did it: ``"sla"`` (the merchant was silent),
        ``"unshipped"`` (a refund before shipment) or ``"fast_track"`` (a reacting center
        fast-tracked it: 极速退款).
        """
        decision = decision or Decision()
        # Approving again after finance rejected the refund resubmits it.
        case.data.pop("finance_rejected", None)
        if case.status == S.INSPECTED:
            self._settle_inspected(ctx, case, actor, decision)
            return
        st.check(case.type, case.status, S.APPROVED)
        life, money = self.lifecycle, self.settlement
        case.approved_by = actor
        if auto == "sla":
            hours = self.settings.merchant_response_hours
            en = f"The merchant did not respond within {hours} hours; approved automatically"
            zh = f"商家超时({hours} 小时)未处理,系统已自动同意"
        elif auto == "unshipped":
            en, zh = "Approved at once: the order had not shipped yet", "订单尚未发货,系统已自动同意"
        elif auto == "fast_track":
            en, zh = "Express refund approved", "极速退款:系统已自动同意"
        else:
            en, zh = "The merchant approved your request", "商家已同意您的申请"
        life.move(ctx, case, S.APPROVED, en, zh, actor=actor)
        if decision.note:
            life.note(
                ctx,
                case,
                "merchant_note",
                f"Merchant: {decision.note}",
                f"商家留言:{decision.note}",
                actor=actor,
            )
        everything = [RefundItem(x.line_id, x.quantity) for x in case.lines]
        if case.type == "refund_only":
            case.shipped = ctx.order.status != "paid"
            money.refund(ctx, case, everything, actor=actor)
            return
        days = self.settings.return_ship_days
        life.move(
            ctx,
            case,
            S.AWAITING_RETURN,
            f"Please send the goods back within {days} days, or book a pickup",
            f"请在 {days} 天内寄回商品,或预约上门取件",
            actor=actor,
        )
        if self.expected_warehouse is not None:
            case.data["return_warehouse"] = self.expected_warehouse(ctx, case)
            life.save(ctx, case)
        if case.type == "return_refund" and self.settings.refund_before_return:
            money.refund(ctx, case, everything, actor=actor, early=True)

    def _settle_inspected(self, ctx: OrderContext, case: Case, actor: str, decision: Decision) -> None:
        """Approve again after inspection: after finance rejected the refund, or a
        replacement could not be made."""
        money = self.settlement
        case.approved_by = actor
        if case.type == "exchange" and decision.resolution != "refund":
            st.check(case.type, case.status, S.REPLACEMENT_CREATED)
            failure = money.replace(ctx, case, actor=actor)
            if failure is not None:
                raise Conflict(
                    f"the replacement order could not be placed: {failure.detail}",
                    code="replacement_failed",
                    extra={"reason": failure.code},
                )
            return
        money.refund(ctx, case, money.items(ctx, case, case.passed()), actor=actor)

    def reject(self, ctx: OrderContext, case: Case, reason: str, *, actor: str) -> None:
        self.lifecycle.move(
            ctx,
            case,
            S.REJECTED,
            f"The merchant rejected the request: {reason}",
            f"商家已拒绝申请:{reason}",
            actor=actor,
            data={"reason": reason},
        )

    def withdraw(self, ctx: OrderContext, case: Case, reason: str) -> None:
        """The customer withdraws the request (before the goods are on their way)."""
        st.check(case.type, case.status, S.CANCELLED)
        if case.refund_status in LIVE_REFUND_STATUSES:
            raise Conflict("a refund is already under way for this case", code="case_has_refund")
        suffix_en, suffix_zh = (f": {reason}", f":{reason}") if reason else ("", "")
        self.lifecycle.move(
            ctx, case, S.CANCELLED, f"You withdrew the request{suffix_en}", f"买家已撤销申请{suffix_zh}"
        )

    def order_cancelled(self, ctx: OrderContext) -> None:
        """``order_cancel``: the order's open requests are closed with it."""
        for case in self.records.load_for_order(ctx.conn, ctx.order.id or 0):
            # A refund finance rejected holds nothing: that case is closed with the order too.
            if st.can(case.type, case.status, S.CANCELLED) and case.refund_status not in LIVE_REFUND_STATUSES:
                self.lifecycle.move(
                    ctx,
                    case,
                    S.CANCELLED,
                    "The order was cancelled; this request is closed",
                    "订单已取消,本次售后申请已关闭",
                )
