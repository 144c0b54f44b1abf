"""The goods are back: the warehouse receives and inspects them, and the case goes on
to what the inspection allows (a refund, a replacement, a repair, or back to the customer)."""

from __future__ import annotations

from dataclasses import dataclass

from mallcore.kernel import InvalidInput, OrderContext
from mallcore.kernel.aftersale import Disposition, Inspection

from .. import states as st
from ..schemas import Receive, RefundSettings
from ..states import CaseStatus as S
from .lifecycle import Lifecycle
from .records import Case, CaseRecords
from .settlement import Settlement


@dataclass(frozen=True)
class Receipt:
    lifecycle: Lifecycle
    settlement: Settlement
    records: CaseRecords
    settings: RefundSettings

    def receive(
        self, ctx: OrderContext, case: Case, body: Receive, *, actor: str, auto: bool = False
    ) -> None:
        """Receive and inspect the goods (``auto``: the SLA accepts a parcel nobody inspected)."""
        st.check(case.type, case.status, S.RECEIVED)
        life = self.lifecycle
        inspections = _inspections(case, body, auto)
        received: dict[int, int] = {}
        for done in inspections:
            received[done.line_id] = received.get(done.line_id, 0) + done.quantity
        for x in case.lines:
            x.received = received.get(x.line_id, 0)
        self.records.write_received(ctx.conn, case)
        case.received_by = None if auto else actor
        if body.warehouse is not None:
            # The warehouse user's word beats the carrier's: WMS restocks there.
            case.data["received_warehouse"] = body.warehouse
        units = sum(received.values())
        if auto:
            days = self.settings.inspect_days
            en = f"Not inspected within {days} days of arrival: accepted as received"
            zh = f"仓库签收后 {days} 天未验收,系统按已收货处理"
        else:
            en, zh = f"The after-sale desk received {units} item(s)", f"售后已收到商品 {units} 件"
        life.move(
            ctx,
            case,
            S.RECEIVED,
            en,
            zh,
            actor=actor,
            data={"units": units, "warehouse": case.data.get("received_warehouse")},
        )
        case.inspections = inspections
        life.move(
            ctx,
            case,
            S.INSPECTED,
            "Goods received and inspected, awaiting processing",
            "商品已经收到且登记检测完毕,等待处理",
            actor=actor,
            data={"passed": sum(i.quantity for i in inspections if i.passed), "units": units},
        )
        detail = "; ".join(
            f"line {i.line_id} x{i.quantity}: grade {i.grade}, {i.disposition}, {'passed' if i.passed else 'failed'}"
            + (f" ({i.note})" if i.note else "")
            for i in inspections
        )
        life.note(ctx, case, "inspection", f"Inspection by {actor}: {detail}", public=False, actor=actor)
        if body.note and not auto:
            life.note(
                ctx,
                case,
                "inspection_note",
                f"Inspection note: {body.note}",
                f"检测说明:{body.note}",
                actor=actor,
            )
        if not case.passed():
            self._failed(ctx, case, body.note, actor)
        elif case.type == "return_refund":
            self._refund_return(ctx, case, actor)
        elif case.type == "exchange":
            failure = self.settlement.replace(ctx, case, actor=actor)
            if failure is not None:
                life.note(
                    ctx,
                    case,
                    "replacement_failed",
                    f"The replacement could not be placed ({failure.detail}); the merchant will follow up",
                    "换新订单暂时无法生成(可能缺货),商家将尽快处理",
                    actor=actor,
                )
        else:
            life.note(
                ctx,
                case,
                "repair_queued",
                "Your item is queued for repair",
                "商品已进入维修流程",
                actor=actor,
            )

    def _failed(self, ctx: OrderContext, case: Case, note: str, actor: str) -> None:
        """Nothing passed: the request is rejected and the goods go back to the customer."""
        self.lifecycle.move(
            ctx,
            case,
            S.REJECTED,
            f"The goods did not pass inspection{': ' + note if note else ''}; they will be sent back to you",
            f"商品检测未通过{':' + note if note else ''},商品将寄回给您",
            actor=actor,
        )
        if case.refund_status == "pending_review":
            self.settlement.withdraw_early_refund(
                ctx,
                case,
                f"after-sale case {case.id}: the returned goods did not pass inspection",
                ("the returned goods did not pass inspection", "退回的商品检测未通过"),
                actor=actor,
            )
        elif case.refund_status in ("approved", "refunded"):
            self.lifecycle.note(
                ctx,
                case,
                "refund_before_return_failed",
                f"Refund {case.refund_id} went out before the goods failed inspection; follow up by hand",
                public=False,
            )

    def _refund_return(self, ctx: OrderContext, case: Case, actor: str) -> None:
        """A return passed (some of) its inspection: refund what passed, or finish the early refund."""
        money = self.settlement
        passed = case.passed()
        claimed = {x.line_id: x.quantity for x in case.lines}
        if case.refund_status == "pending_review" and passed != claimed:
            # The early refund covers units that did not come back or did not pass: it must
            # not stay approvable; the units that passed are refunded afresh.
            got, asked = sum(passed.values()), sum(claimed.values())
            money.withdraw_early_refund(
                ctx,
                case,
                f"after-sale case {case.id}: only {got} of {asked} units came back and passed inspection",
                (
                    f"only {got} of {asked} item(s) came back and passed inspection",
                    f"仅 {got}/{asked} 件商品退回并检测通过",
                ),
                actor=actor,
            )
        if case.refund_status == "refunded":
            self.lifecycle.move(ctx, case, S.REFUNDED, "Refund completed", "退款已完成", actor=actor)
        elif case.refund_status == "pending_review":
            self.lifecycle.move(ctx, case, S.REFUND_PENDING_REVIEW, actor=actor)
        else:
            money.refund(ctx, case, money.items(ctx, case, passed), actor=actor)


def _inspections(case: Case, body: Receive, auto: bool) -> list[Inspection]:
    """The warehouse's verdicts: as listed per unit, else every unit of the case as ``body.passed`` says."""
    # A repair's item is the customer's: it goes back to them, never into stock.
    keep: Disposition = "send_back" if case.type == "repair" else "restock"
    if body.inspections is None:
        if not body.passed:
            disposition: Disposition = "send_back"
        elif auto and keep == "restock":
            disposition = "quarantine"  # nobody looked at it
        else:
            disposition = keep
        return [
            Inspection(
                line_id=x.line_id,
                sku=x.sku,
                quantity=x.quantity,
                passed=body.passed,
                disposition=disposition,
                note=body.note,
            )
            for x in case.lines
        ]
    by_line = {x.line_id: x for x in case.lines}
    counted: dict[int, int] = {}
    out: list[Inspection] = []
    for i in body.inspections:
        line = by_line.get(i.line_id)
        if line is None:
            raise InvalidInput(f"line {i.line_id} is not part of this case", code="line_not_in_case")
        counted[i.line_id] = counted.get(i.line_id, 0) + i.quantity
        if counted[i.line_id] > line.quantity:
            raise InvalidInput(
                f"line {i.line_id}: {counted[i.line_id]} units inspected, the case has {line.quantity}",
                code="inspection_exceeds_case",
            )
        out.append(
            Inspection(
                line_id=i.line_id,
                sku=line.sku,
                quantity=i.quantity,
                grade=i.grade,
                disposition=i.disposition or (keep if i.passed else "send_back"),
                passed=i.passed,
                note=i.note,
            )
        )
    return out
