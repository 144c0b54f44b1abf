"""SLA timers: when a party is late, the case takes its default outcome.

Every case that is not finished carries one timer (``due_at`` + ``timer``),
set by :func:`timer_for` each time the case changes state:

============================  ===========================  ==========================================
waiting for                   timer                        default outcome when it passes
============================  ===========================  ==========================================
merchant (``requested``)      ``merchant_response_hours``  approved (``approve``)
customer (``awaiting_return``) ``return_ship_days``        closed (``close``)
courier (``pickup_requested``) window end + grace          back to awaiting return (``pickup_expired``)
carrier (shipped, in transit)  ``transit_days``            flagged for staff, re-armed (``escalate``)
warehouse (parcel signed)     ``inspect_days``             received as passed (quarantine) and refunded (``receive``)
merchant (``inspected``, exchange or refund to redo)  ``merchant_response_hours``  approved: replacement, else refund
merchant, after finance rejected the refund  ``merchant_response_hours``  rejected, with finance's reason (``reject``)
staff (repair, finance review) ``staff_days``              flagged for staff, re-armed (``escalate``)
============================  ===========================  ==========================================

:func:`run` fires due timers. It is a job inside ``mallcore serve`` and the
command ``mallcore refund sla``; several runners may race. Each due case is
handled in its order's stage (the order row locked) and only if its timer is
still the one that was read (``due_at`` unchanged), so a case fires once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from mallcore.kernel import SYSTEM, Conflict, MallcoreError

from . import states as st
from . import tables as t
from .schemas import Decision, Receive
from .states import CaseStatus as S

if TYPE_CHECKING:
    from . import RefundCenter
    from .cases import Case

# A timer whose outcome failed is tried again this much later.
RETRY = timedelta(hours=1)
# ctx.stash key: the clock of a run, so every step of one run sees one time.
NOW = "refund.now"


def timer_for(settings: Any, case: Case, now: datetime) -> tuple[datetime | None, str | None]:
    """The timer a case gets on entering its current state."""
    status = case.status
    if status in st.TERMINAL or status in st.TRANSIENT:
        return None, None
    hours, days = timedelta(hours=1), timedelta(days=1)
    if status in (S.REQUESTED, S.INSPECTED) and case.data.get("finance_rejected"):
        # Back with the merchant after finance rejected the refund: resubmitting it again and
        # again by default would loop; silence ends the request.
        return now + settings.merchant_response_hours * hours, "reject"
    if status == S.REQUESTED:
        return now + settings.merchant_response_hours * hours, "approve"
    if status == S.AWAITING_RETURN:
        return now + settings.return_ship_days * days, "close"
    if status == S.PICKUP_REQUESTED:
        end = case.pickup.window_end if case.pickup is not None else now
        return max(end, now) + settings.pickup_grace_hours * hours, "pickup_expired"
    if status in (S.RETURN_SHIPPED, S.RETURN_IN_TRANSIT):
        arrived = case.data.get("arrived_at")
        if arrived:
            return datetime.fromisoformat(arrived) + settings.inspect_days * days, "receive"
        return now + settings.transit_days * days, "escalate"
    if status == S.INSPECTED and case.type != "repair":
        return now + settings.merchant_response_hours * hours, "approve"
    return now + settings.staff_days * days, "escalate"


def due(center: RefundCenter, now: datetime, limit: int = 500) -> list[Any]:
    c = t.cases.c
    with center.kernel.db.transaction(write=False) as conn:
        return list(
            conn.execute(
                sa.select(c.id, c.order_id, c.due_at, c.timer, c.status)
                .where(c.due_at <= now, c.timer.is_not(None))
                .order_by(c.due_at, c.id)
                .limit(limit)
            )
        )


def run(center: RefundCenter, now: datetime | None = None, limit: int = 500) -> int:
    """Fire every due timer once; returns how many cases took their default outcome."""
    kernel, cases = center.kernel, center.cases
    now = now or center.clock()
    fired = 0
    for row in due(center, now, limit):
        try:
            with kernel.orders.stage("after_sale_sla", row.order_id, SYSTEM) as ctx:
                ctx.stash[NOW] = now
                case = cases.records.load(ctx.conn, row.id)
                # Another runner got here first: the timer changed or went.
                if case is None or case.due_at != row.due_at or case.timer != row.timer:
                    continue
                fire(center, ctx, case)
            fired += 1
        except Exception as exc:
            # One case failing must not hold up the others; it is tried again later.
            if isinstance(exc, MallcoreError):
                center.log.warning("after_sale.sla_failed", case_id=row.id, timer=row.timer, code=exc.code)
            else:
                center.log.exception("after_sale.sla_error", case_id=row.id, timer=row.timer)
            c = t.cases.c
            with kernel.db.transaction() as conn:
                conn.execute(
                    t.cases.update().where(c.id == row.id, c.due_at == row.due_at).values(due_at=now + RETRY)
                )
    return fired


def fire(center: RefundCenter, ctx: Any, case: Case) -> None:
    """Give ``case`` the default outcome of its timer."""
    cases, s = center.cases, center.settings
    life, decide = cases.lifecycle, cases.decisions
    timer = case.timer
    if timer == "approve":
        if case.status == S.INSPECTED and case.type == "exchange":
            try:
                decide.approve(ctx, case, actor="system", auto="sla")
            except Conflict as exc:
                if exc.code != "replacement_failed":
                    raise
                life.note(
                    ctx,
                    case,
                    "exchange_refunded",
                    "No replacement could be made in time; the exchange is settled as a refund",
                    "换新商品暂时无法提供,已改为退款",
                )
                decide.approve(ctx, case, actor="system", decision=Decision(resolution="refund"), auto="sla")
        else:
            decide.approve(ctx, case, actor="system", auto="sla")
    elif timer == "close":
        days = s.return_ship_days
        life.move(
            ctx,
            case,
            S.CLOSED,
            f"The goods were not sent back within {days} days; the case is closed",
            f"买家超时({days} 天)未寄回商品,售后已关闭",
        )
        if case.refund_status == "pending_review":
            cases.settlement.withdraw_early_refund(
                ctx,
                case,
                f"after-sale case {case.id} closed: the goods were not sent back within {days} days",
                (f"the goods were not sent back within {days} days", f"商品未在 {days} 天内寄回"),
                actor="system",
            )
        elif case.refund_status in ("approved", "refunded"):
            life.note(
                ctx,
                case,
                "refund_without_goods",
                f"Refund {case.refund_id} was granted before the return and the goods never came back; "
                "recover it by hand",
                public=False,
            )
    elif timer == "reject":
        rejected = case.data.get("finance_rejected") or {}
        note = str(rejected.get("note") or "")
        hours = s.merchant_response_hours
        life.move(
            ctx,
            case,
            S.REJECTED,
            f"Finance did not approve the refund ({note}) and the merchant did not resubmit it within "
            f"{hours} hours; the request is rejected",
            f"财务审核未通过({note}),商家 {hours} 小时内未重新提交,售后申请已拒绝",
            data={"reason": note, "refund_id": rejected.get("refund_id")},
        )
        if case.type in st.GOODS_BACK:
            life.note(
                ctx,
                case,
                "rejected_goods_kept",
                "The returned goods were received and inspected, and no refund was paid; "
                "settle with the customer by hand",
                public=False,
            )
    elif timer == "pickup_expired":
        if case.pickup is not None:
            case.pickup.status = "failed"
        life.move(
            ctx,
            case,
            S.AWAITING_RETURN,
            "The courier did not pick up the goods in the booked window; book again or ship them yourself",
            "快递员未在预约时间内上门取件,请重新预约或自行寄回",
        )
    elif timer == "receive":
        cases.receipt.receive(ctx, case, Receive(passed=True), actor="system", auto=True)
    else:  # escalate: flag for staff and look again later
        overdue = (case.data.get("overdue") or 0) + 1
        case.data["overdue"] = overdue
        life.rearm(ctx, case)
        life.note(
            ctx,
            case,
            "overdue",
            f"SLA: case overdue while {case.status} (reminder {overdue})",
            f"售后超时提醒:当前状态 {case.status}(第 {overdue} 次)",
            public=False,
        )
