"""How a case ends for the customer: money back, a replacement order, or the repaired item.

Money moves only through the kernel's ledger (``kernel.refunds.request``),
which enforces "never more than paid" per line and per order with the order
row locked; an exchange's replacement is an order placed at no charge in the
same transaction (``kernel.orders.place_in``); a repair is shipped back with
its own waybill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mallcore.kernel import MallcoreError, OrderContext, Refund, RefundItem, format_amount
from mallcore.kernel.schemas import LineIn, PlaceOrder

from .. import states as st
from ..schemas import RefundSettings, ShipBack, ShippingMode
from ..states import CaseStatus as S
from .lifecycle import Lifecycle
from .records import Case, CaseRecords

if TYPE_CHECKING:
    from mallcore.kernel.orders import OrderService
    from mallcore.kernel.refunds import RefundService

# ctx.stash key: the case whose refund this stage is requesting (or withdrawing), so
# the ``order_refund`` it triggers does not move the case a second time.
REQUESTING = "refund.requesting"


@dataclass(frozen=True)
class Settlement:
    lifecycle: Lifecycle
    records: CaseRecords
    refunds: RefundService
    orders: OrderService
    settings: RefundSettings

    # -- money ---------------------------------------------------------------------

    def shipping_mode(self, case: Case) -> ShippingMode:
        s = self.settings
        if not case.shipped:
            return s.shipping_unshipped
        reason = s.reason(case.reason)
        if reason is not None and reason.merchant_fault:
            return s.shipping_merchant_fault
        return s.shipping

    def items(self, ctx: OrderContext, case: Case, units: dict[int, int]) -> list[RefundItem]:
        """Refund items for ``units`` per line, less the restocking fee the policy sets."""
        fees = self.settings.restocking_fee_percent
        reason = self.settings.reason(case.reason)
        if not fees or (reason is not None and reason.merchant_fault) or case.type != "return_refund":
            return [RefundItem(line_id, qty) for line_id, qty in units.items() if qty]
        quote = {
            q.line_id: q
            for q in self.refunds.quote(
                ctx, [RefundItem(line_id, qty) for line_id, qty in units.items() if qty], "none"
            )
        }
        deductions: dict[int, int] = {}
        for i in case.inspections:
            pct = fees.get(i.grade, 0)
            if not (i.passed and pct and i.line_id in quote):
                continue
            q = quote[i.line_id]
            value = q.amount * i.quantity // q.quantity
            deductions[i.line_id] = deductions.get(i.line_id, 0) + value * pct // 100
        return [RefundItem(line_id, qty, deductions.get(line_id, 0)) for line_id, qty in units.items() if qty]

    def refund(
        self, ctx: OrderContext, case: Case, items: list[RefundItem], *, actor: str, early: bool = False
    ) -> Refund:
        """Request the case's refund; an ``early`` one (before the goods are back) leaves the case where it is."""
        life = self.lifecycle
        if not early:
            # Check before money moves: with no review the refund is paid out
            # (a provider call) inside kernel.refunds.request.
            for target in (S.REFUND_PENDING_REVIEW, S.REFUNDED):
                st.check(case.type, case.status, target)
        reason = self.settings.reason(case.reason)
        # A refund only before shipment is a cancellation of those lines (issue 5): like the
        # kernel's own cancellations it is paid at once, never held for review, so WMS releases
        # the units at ``refunded`` before a dispatch can ship them. After shipment, finance reviews.
        cancellation = case.type == "refund_only" and not case.shipped
        ctx.stash[REQUESTING] = case.id
        try:
            refund = self.refunds.request(
                ctx,
                items,
                reason=f"after-sale case {case.id}: {reason.en if reason else case.reason}",
                source="refund",
                ref=case.ref,
                shipping=self.shipping_mode(case),
                review=not cancellation,
                data={"case_id": case.id, "approved_by": case.approved_by, "received_by": case.received_by},
            )
        finally:
            ctx.stash.pop(REQUESTING, None)
        case.refund_id, case.refund_status, case.refund_amount = refund.id, refund.status, refund.amount
        amount = format_amount(refund.amount, refund.currency)
        if early:
            life.save(ctx, case)
            life.note(
                ctx,
                case,
                "refund_early",
                f"Refund of {amount} submitted before the goods are back"
                + (", awaiting finance review" if refund.status == "pending_review" else ""),
                f"已先行退款 {amount}" + (",等待财务审核" if refund.status == "pending_review" else ""),
                actor=actor,
            )
            if refund.status == "refunded":
                life.tell(ctx, case, case.status, status=S.REFUNDED.value)
            return refund
        paid = refund.status == "refunded"
        life.move(
            ctx,
            case,
            S.REFUNDED if paid else S.REFUND_PENDING_REVIEW,
            f"Refund of {amount} completed to the original payment method"
            if paid
            else f"Refund of {amount} submitted, awaiting finance review",
            f"退款成功,{amount} 已原路退回" if paid else f"退款申请已提交({amount}),等待财务审核",
            actor=actor,
            data={"refund_id": refund.id, "amount": refund.amount},
        )
        return refund

    def refund_settled(self, ctx: OrderContext, refund: Refund) -> None:
        """``order_refund`` at ``refunded`` / ``rejected`` for a case's refund, decided elsewhere."""
        case_id = refund.data.get("case_id")
        if not isinstance(case_id, int) or ctx.stash.get(REQUESTING) == case_id:
            return  # our own request in this stage: the step goes on from there
        case = self.records.load(ctx.conn, case_id)
        if case is None or case.refund_id != refund.id:
            return
        life = self.lifecycle
        case.refund_status = refund.status
        amount = format_amount(refund.amount, refund.currency)
        if refund.status == "refunded":
            if case.status == S.REFUND_PENDING_REVIEW:
                life.move(
                    ctx,
                    case,
                    S.REFUNDED,
                    f"Finance approved; refund of {amount} completed to the original payment method",
                    f"财务审核通过,退款成功,{amount} 已原路退回",
                    data={"refund_id": refund.id, "amount": refund.amount},
                )
            else:  # refunded before the goods came back
                life.save(ctx, case)
                life.note(
                    ctx, case, "refund_paid", f"Refund of {amount} completed", f"退款成功,{amount} 已原路退回"
                )
                life.tell(ctx, case, case.status, status=S.REFUNDED.value)
            return
        note = refund.note or ""
        if case.status == S.REFUND_PENDING_REVIEW:
            back = S.REQUESTED if case.type == "refund_only" else S.INSPECTED
            # The merchant must act now: resubmit (approve) or reject. Silence no longer resubmits
            # the same refund every merchant_response_hours; the SLA rejects the request instead.
            case.data["finance_rejected"] = {"refund_id": refund.id, "note": note}
            hours = self.settings.merchant_response_hours
            life.move(
                ctx,
                case,
                back,
                f"Finance did not approve the refund ({note}). The merchant may resubmit it or decline "
                f"the request; without an answer within {hours} hours the request is rejected",
                f"财务审核未通过({note}),等待商家重新提交或拒绝;商家 {hours} 小时内未处理,申请将被拒绝",
                data={"refund_id": refund.id, "reason": note},
            )
        else:
            life.save(ctx, case)
            life.note(
                ctx,
                case,
                "refund_rejected",
                f"Finance did not approve the early refund ({note}); it will be reviewed after inspection",
                f"先行退款未通过财务审核({note}),将在验收后重新处理",
            )

    def withdraw_early_refund(
        self, ctx: OrderContext, case: Case, note: str, why: tuple[str, str], *, actor: str
    ) -> None:
        """Reject a refund requested before the goods came back, still awaiting review.

        Called in the stage where the case learns the goods will not (all) come back: closed
        for not shipping them, or failed inspection. Left pending, finance could still approve
        a refund for goods the shop never got.
        """
        assert case.refund_id is not None and case.refund_status == "pending_review"
        ctx.stash[REQUESTING] = case.id  # our own step: refund_settled leaves the case alone
        try:
            refund = self.refunds.reject(ctx, case.refund_id, actor, note)
        finally:
            ctx.stash.pop(REQUESTING, None)
        case.refund_status = refund.status
        self.lifecycle.save(ctx, case)
        en, zh = why
        self.lifecycle.note(
            ctx,
            case,
            "refund_withdrawn",
            f"The refund submitted before the goods came back is cancelled: {en}",
            f"先行退款已取消:{zh}",
            actor=actor,
            data={"refund_id": refund.id},
        )

    # -- an exchange's replacement -------------------------------------------------------

    def replace(self, ctx: OrderContext, case: Case, *, actor: str) -> MallcoreError | None:
        """Place the replacement order of an exchange; a failure leaves the case inspected."""
        passed = case.passed()
        skus = {x.line_id: x.sku for x in case.lines}
        lines = [
            LineIn(sku=case.replacement_skus.get(line_id, skus[line_id]), quantity=qty)
            for line_id, qty in passed.items()
        ]
        order = ctx.order
        req = PlaceOrder(
            shop=order.shop,
            lines=lines,
            address=order.address,
            note=f"换新 exchange for after-sale case {case.id} of order {order.id}",
        )
        try:
            with ctx.conn.begin_nested():
                view = self.orders.place_in(
                    ctx, req, customer=case.customer, no_charge=f"exchange for after-sale case {case.id}"
                )
        except MallcoreError as exc:
            ctx.log.warning("after_sale.replacement_failed", case_id=case.id, code=exc.code)
            return exc
        case.replacement_order_id = view.id
        self.lifecycle.move(
            ctx,
            case,
            S.REPLACEMENT_CREATED,
            f"Replacement order created: order No. {view.id}",
            f"换新订单已生成,换新订单号 {view.id}",
            actor=actor,
            data={"replacement_order_id": view.id},
        )
        return None

    # -- a repair goes back ---------------------------------------------------------------

    def repaired(self, ctx: OrderContext, case: Case, note: str, *, actor: str) -> None:
        self.lifecycle.move(
            ctx,
            case,
            S.REPAIRED,
            f"Repair completed{': ' + note if note else ''}; it will be shipped back to you",
            f"商品已维修完毕{':' + note if note else ''},即将寄回",
            actor=actor,
        )

    def ship_back(self, ctx: OrderContext, case: Case, body: ShipBack, *, actor: str) -> None:
        st.check(case.type, case.status, S.SHIPPED_BACK)
        case.data["ship_back"] = {"carrier": body.carrier, "tracking_no": body.tracking_no}
        self.lifecycle.move(
            ctx,
            case,
            S.SHIPPED_BACK,
            f"Repaired goods shipped back: {body.carrier} waybill {body.tracking_no}",
            f"维修商品已寄回,{body.carrier} 运单号 {body.tracking_no}",
            actor=actor,
            data={"carrier": body.carrier, "tracking_no": body.tracking_no},
        )
