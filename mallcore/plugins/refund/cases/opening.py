"""Opening a case: who may, on what, and the first entries of its timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mallcore.kernel import Forbidden, InvalidInput, Line, NotFound, Order, OrderContext

from .. import sla
from .. import states as st
from ..schemas import OpenCase, RefundSettings
from ..states import CaseStatus as S
from .decisions import Decisions
from .eligibility import Eligibility
from .lifecycle import Lifecycle
from .records import Case, CaseRecords

_STAFF = frozenset({"merchant", "warehouse", "finance"})


@dataclass(frozen=True)
class Opening:
    lifecycle: Lifecycle
    eligibility: Eligibility
    decisions: Decisions
    records: CaseRecords
    settings: RefundSettings
    hook: Any  # the kernel's hook relay

    def open(self, ctx: OrderContext, req: OpenCase) -> Case:
        """Open a case on ``ctx.order`` for its customer (a refund before shipment is approved at once)."""
        principal, order = ctx.principal, ctx.order
        s = self.settings
        if not principal.is_admin and not (
            order.customer == principal.subject and "customer" in principal.roles
        ):
            # staff of the shop may see the order, but cases are the customer's to open
            if principal.can_see(order.shop, order.customer) and principal.roles & _STAFF:
                raise Forbidden("only the customer opens an after-sale case", code="role_required")
            raise NotFound(f"order {order.id} not found", code="order_not_found")
        if req.type not in s.types:
            raise InvalidInput(f"this shop does not offer {req.type} cases", code="case_type_unavailable")
        if order.parent_id is not None and order.paid == 0 and req.type in ("refund_only", "return_refund"):
            # A no-charge replacement: the money was paid, and is refunded, on the original order.
            raise InvalidInput(
                f"order {order.id} replaced goods at no charge, so nothing on it can be refunded; "
                f"to return these goods for your money, open a return on the original order "
                f"{order.parent_id} while its return window is open. Here you may ask for an "
                "exchange or a repair.",
                code="replacement_not_refundable",
                extra={"original_order_id": order.parent_id, "types": ["exchange", "repair"]},
            )
        reason = s.reason(req.reason)
        if reason is None:
            raise InvalidInput(
                f"unknown reason '{req.reason}'",
                code="reason_unknown",
                extra={"reasons": [r.code for r in s.reasons]},
            )
        shipped = self.eligibility.check_order(ctx, req.type)
        claimed = self.eligibility.claim(ctx, req)
        replacement = dict(req.replacement_skus)
        if replacement:
            if req.type != "exchange":
                raise InvalidInput("replacement_skus is for exchanges", code="replacement_not_exchange")
            self._check_replacements(ctx, replacement, {x.line_id for x in claimed.lines})
        now = self.lifecycle.now(ctx)
        case = Case(
            id=0,
            order_id=order.id or 0,
            shop=order.shop,
            customer=order.customer,
            type=req.type,
            status=S.REQUESTED.value,
            reason=reason.code,
            reason_text=req.reason_text,
            shipped=shipped,
            lines=claimed.lines,
            replacement_skus=replacement,
            data={"from_exchange": claimed.from_exchange} if claimed.from_exchange else {},
            created_at=now,
            updated_at=now,
        )
        case.due_at, case.timer = sla.timer_for(s, case, now)
        self.records.insert(ctx.conn, case)
        self._first_entries(ctx, case, req, claimed.replacements)
        ctx.emit("after_sale.requested", {"case_id": case.id, "type": case.type})
        self.lifecycle.tell(ctx, case, None)
        if case.type == "refund_only" and not shipped and s.auto_approve_unshipped:
            self.decisions.approve(ctx, case, actor="system", auto="unshipped")
        return case

    def _first_entries(self, ctx: OrderContext, case: Case, req: OpenCase, replacements: set[int]) -> None:
        note = self.lifecycle.note
        reason = self.settings.reason(case.reason)
        assert reason is not None
        type_en, type_zh = st.TYPE_LABELS[case.type]
        units = sum(x.quantity for x in case.lines)
        note(
            ctx,
            case,
            "requested",
            f"{type_en} request submitted ({units} item(s), {reason.en}); waiting for the merchant",
            f"{type_zh}申请已提交({units} 件,{reason.zh}),等待商家处理",
            data={"case_id": case.id, "type": case.type, "reason": reason.code, "to": case.status},
        )
        for replacement_id in sorted(replacements):
            note(
                ctx,
                case,
                "exchanged_goods",
                f"Returning the goods received in exchange (replacement order No. {replacement_id}); "
                "the refund is of what was paid for them on this order",
                f"退回换货所得商品(换新订单号 {replacement_id}),按本订单实付金额退款",
            )
        if req.reason_text:
            note(ctx, case, "customer_note", f"Customer: {req.reason_text}", f"买家留言:{req.reason_text}")

    def _check_replacements(self, ctx: OrderContext, replacement: dict[int, str], lines: set[int]) -> None:
        unknown = [line_id for line_id in replacement if line_id not in lines]
        if unknown:
            raise InvalidInput(
                f"replacement_skus names lines not in the case: {unknown}", code="replacement_line_unknown"
            )
        # Ask the pricing centers as a preview would: is it sold, and which product is it?
        probe = Order(
            shop=ctx.order.shop,
            customer=ctx.order.customer,
            status="awaiting_payment",
            currency=ctx.order.currency,
        )
        probe_lines = [Line(sku=sku, quantity=1, line_no=i) for i, sku in enumerate(replacement.values(), 1)]
        preview = OrderContext(ctx.kernel, "preview", probe, ctx.conn, ctx.principal, probe_lines)
        self.hook.order_pre_validate(ctx=preview)
        for (line_id, sku), probe_line in zip(replacement.items(), probe_lines, strict=True):
            original = ctx.line(line_id)
            want = original.attrs.get("product_id")
            got = probe_line.attrs.get("product_id")
            if sku != original.sku and (want is None or got != want):
                raise InvalidInput(
                    f"{sku} is not a variant of the product of line {line_id}",
                    code="replacement_not_same_product",
                    extra={"line_id": line_id, "sku": sku},
                )
