"""After-sale cases: opening them and every step after, each inside an order stage.

Every step runs inside ``kernel.orders.stage(...)`` (the order row locked), so
two requests on cases of one order never interleave. A step writes the case
row (a conditional UPDATE on the status it read), adds the case's timeline
entries (``ref="after_sale:<id>"``, merged into the order's timeline) and
then tells the other centers through ``order_after_sale``. Money only moves
through ``kernel.refunds.request``, which enforces "never more than paid".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import msgspec
import sqlalchemy as sa

from mallcore.kernel import (
    LIVE_REFUND_STATUSES,
    Conflict,
    Forbidden,
    InvalidInput,
    Line,
    MallcoreError,
    NotFound,
    Order,
    OrderContext,
    Principal,
    Refund,
    RefundItem,
    Rejected,
    format_amount,
    utcnow,
)
from mallcore.kernel import tables as kt
from mallcore.kernel.aftersale import (
    AfterSaleCase,
    CaseLine,
    Disposition,
    Inspection,
    ParcelEvent,
    Pickup,
    ReturnParcel,
)
from mallcore.kernel.schemas import LineIn, PlaceOrder, TimelineView

from . import sla
from . import states as st
from . import tables as t
from .schemas import (
    CaseLineView,
    CaseSummary,
    CaseView,
    Decision,
    OpenCase,
    PickupIn,
    Reason,
    Receive,
    ReturnShipment,
    ShipBack,
    ShippingMode,
)
from .states import CaseStatus as S

if TYPE_CHECKING:
    from . import RefundCenter

# ctx.stash keys
REQUESTING = "refund.requesting"  # the case whose refund this stage is requesting
NOW = "refund.now"  # the clock of an SLA run


class ExchangedUnits(msgspec.Struct, kw_only=True):
    """Units of an order line a finished exchange replaced: the replacement order's goods."""

    case_id: int  # the exchange
    order_id: int | None  # its replacement order
    sku: str  # what the customer holds now
    free: int  # not claimed by a return on this order nor held by a case on the replacement


class LineClaims(msgspec.Struct, kw_only=True):
    """What cases on an order hold of one of its lines (see :meth:`Cases.claims`)."""

    held: int = 0  # the line's own units claimed by cases
    exchanged: int = 0  # units finished exchanges replaced
    pools: list[ExchangedUnits] = msgspec.field(default_factory=list)


class Case(msgspec.Struct, kw_only=True):
    """A case as stored (one row of ``refund_cases`` plus its lines)."""

    id: int
    order_id: int
    shop: str
    customer: str
    type: str
    status: str
    reason: str
    reason_text: str
    shipped: bool
    lines: list[CaseLine]
    refund_id: int | None = None
    refund_status: str | None = None
    refund_amount: int = 0
    replacement_order_id: int | None = None
    approved_by: str | None = None
    received_by: str | None = None
    return_parcel: ReturnParcel | None = None
    pickup: Pickup | None = None
    inspections: list[Inspection] = msgspec.field(default_factory=list)
    replacement_skus: dict[int, str] = msgspec.field(default_factory=dict)
    data: dict[str, Any] = msgspec.field(default_factory=dict)
    due_at: datetime | None = None
    timer: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def ref(self) -> str:
        return f"after_sale:{self.id}"

    def passed(self) -> dict[int, int]:
        """Units per line that passed inspection."""
        out: dict[int, int] = {}
        for i in self.inspections:
            if i.passed:
                out[i.line_id] = out.get(i.line_id, 0) + i.quantity
        return out


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


class Cases:
    def __init__(self, center: RefundCenter) -> None:
        self.center = center
        self.kernel = center.kernel
        c = t.cases.c
        self._select_case = sa.select(t.cases).where(c.id == sa.bindparam("case_id"))
        self._select_lines = (
            sa.select(t.case_lines)
            .where(t.case_lines.c.case_id == sa.bindparam("case_id"))
            .order_by(t.case_lines.c.id)
        )

    @property
    def settings(self) -> Any:
        return self.center.settings

    def now(self, ctx: OrderContext | None = None) -> datetime:
        if ctx is not None and NOW in ctx.stash:
            return ctx.stash[NOW]
        return self.center.clock()

    def reason(self, code: str) -> Reason | None:
        for r in self.settings.reasons:
            if r.code == code:
                return r
        return None

    # -- loading ----------------------------------------------------------------

    def load(self, conn: sa.Connection, case_id: int) -> Case | None:
        row = conn.execute(self._select_case, {"case_id": case_id}).first()
        if row is None:
            return None
        lines = [
            CaseLine(line_id=r.line_id, sku=r.sku, quantity=r.quantity, received=r.received)
            for r in conn.execute(self._select_lines, {"case_id": case_id})
        ]
        return _case_from_row(row, lines)

    def load_for_order(self, conn: sa.Connection, order_id: int) -> list[Case]:
        rows = conn.execute(sa.select(t.cases).where(t.cases.c.order_id == order_id).order_by(t.cases.c.id))
        by_case: dict[int, list[CaseLine]] = {}
        for r in conn.execute(
            sa.select(t.case_lines).where(t.case_lines.c.order_id == order_id).order_by(t.case_lines.c.id)
        ):
            by_case.setdefault(r.case_id, []).append(
                CaseLine(line_id=r.line_id, sku=r.sku, quantity=r.quantity, received=r.received)
            )
        return [_case_from_row(row, by_case.get(row.id, [])) for row in rows]

    def locate(self, principal: Principal, case_id: int) -> int:
        """The order of a case the principal may see (404 otherwise)."""
        c = t.cases.c
        with self.kernel.db.transaction(write=False) as conn:
            row = conn.execute(sa.select(c.order_id, c.shop, c.customer).where(c.id == case_id)).first()
        if row is None or not principal.can_see(row.shop, row.customer):
            raise NotFound(f"after-sale case {case_id} not found", code="case_not_found")
        return int(row.order_id)

    def claims(self, conn: sa.Connection, order_id: int) -> dict[int, LineClaims]:
        """Per order line: the units cases hold, and the units finished exchanges replaced.

        A finished return or exchange holds only the units that came back (units the customer
        never sent may be claimed again). The units an exchange replaced are the replacement
        order's goods now: only a return for money may claim them here (the money is on this
        order), and not while a case on the replacement order holds them.
        """
        cases = [c for c in self.load_for_order(conn, order_id) if c.status not in st.RELEASED]
        out: dict[int, LineClaims] = {}
        pools: dict[tuple[int, int], ExchangedUnits] = {}
        for c in cases:
            if c.type == "exchange" and c.status == S.REPLACEMENT_CREATED:
                passed = c.passed()
                for x in c.lines:
                    claim = out.setdefault(x.line_id, LineClaims())
                    replaced = passed.get(x.line_id, 0)
                    # failed units went back to the customer: still held, as before
                    claim.held += x.received - replaced
                    claim.exchanged += replaced
                    if replaced:
                        pool = ExchangedUnits(
                            case_id=c.id,
                            order_id=c.replacement_order_id,
                            sku=c.replacement_skus.get(x.line_id, x.sku),
                            free=replaced,
                        )
                        pools[(x.line_id, c.id)] = pool
                        claim.pools.append(pool)
        for c in cases:
            if c.type == "exchange" and c.status == S.REPLACEMENT_CREATED:
                continue
            came_back = c.status in (S.REFUNDED, S.REPLACEMENT_CREATED) and c.type in st.GOODS_BACK
            source = c.data.get("from_exchange") or {}
            for x in c.lines:
                units = x.received if came_back else x.quantity
                exchange = source.get(str(x.line_id))
                source_pool = pools.get((x.line_id, exchange)) if isinstance(exchange, int) else None
                if source_pool is not None:
                    source_pool.free -= units
                else:
                    out.setdefault(x.line_id, LineClaims()).held += units
        # Goods of a replacement order held by a case there are not returnable here.
        by_order: dict[int, list[ExchangedUnits]] = {}
        for pool in pools.values():
            if pool.order_id is not None:
                by_order.setdefault(pool.order_id, []).append(pool)
        for replacement_id, its_pools in by_order.items():
            held = self._held_by_sku(conn, replacement_id)
            for pool in its_pools:
                take = min(held.get(pool.sku, 0), max(pool.free, 0))
                pool.free -= take
                held[pool.sku] = held.get(pool.sku, 0) - take
        return out

    def _held_by_sku(self, conn: sa.Connection, order_id: int) -> dict[str, int]:
        """Units per SKU that cases on ``order_id`` hold (as :meth:`claims` counts them)."""
        out: dict[str, int] = {}
        for c in self.load_for_order(conn, order_id):
            if c.status in st.RELEASED:
                continue
            came_back = c.status in (S.REFUNDED, S.REPLACEMENT_CREATED) and c.type in st.GOODS_BACK
            for x in c.lines:
                out[x.sku] = out.get(x.sku, 0) + (x.received if came_back else x.quantity)
        return out

    def claimed_from_replacement(self, conn: sa.Connection, order: Order) -> dict[str, int]:
        """On a replacement order: units per SKU a return on the original order claims."""
        if order.parent_id is None:
            return {}
        parent = self.load_for_order(conn, order.parent_id)
        exchanges = {c.id for c in parent if c.type == "exchange" and c.replacement_order_id == order.id}
        out: dict[str, int] = {}
        for c in parent:
            if c.status in st.RELEASED or not exchanges:
                continue
            came_back = c.status in (S.REFUNDED, S.REPLACEMENT_CREATED) and c.type in st.GOODS_BACK
            source = c.data.get("from_exchange") or {}
            for x in c.lines:
                if source.get(str(x.line_id)) in exchanges:
                    out[x.sku] = out.get(x.sku, 0) + (x.received if came_back else x.quantity)
        return out

    def delivered_at(self, conn: sa.Connection, order: Order) -> datetime:
        tl = kt.order_timeline.c
        at = conn.execute(
            sa.select(sa.func.min(tl.at)).where(tl.order_id == order.id, tl.kind == "order.delivered")
        ).scalar()
        if at is None:
            return order.updated_at or self.now()
        return at if at.tzinfo is not None else at.replace(tzinfo=UTC)

    # -- the one way a case changes state --------------------------------------

    def move(
        self,
        ctx: OrderContext,
        case: Case,
        target: S,
        en: str | None = None,
        zh: str | None = None,
        *,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        hook: bool = True,
    ) -> None:
        """Take one edge of the state machine: row, timeline, ``order_after_sale``."""
        st.check(case.type, case.status, target)
        previous = case.status
        case.status = target.value
        now = self.now(ctx)
        case.updated_at = now
        case.due_at, case.timer = sla.timer_for(self.settings, case, now)
        self._write(ctx, case, previous)
        if en is None:
            en, zh = st.LABELS[target]
        ctx.timeline(
            f"after_sale.{target.value}",
            en,
            zh=zh,
            ref=case.ref,
            actor=actor,
            data={
                "case_id": case.id,
                "from": previous,
                "to": target.value,
                # why the case will move next if nobody acts: the SLA timer
                "timer": case.timer,
                "due_at": case.due_at.isoformat() if case.due_at else None,
                **(data or {}),
            },
        )
        ctx.log.info("after_sale.step", case_id=case.id, previous=previous, status=target.value)
        if hook:
            self.tell(ctx, case, previous)

    def _write(self, ctx: OrderContext, case: Case, previous: str) -> None:
        c = t.cases.c
        done = ctx.conn.execute(
            t.cases.update().where(c.id == case.id, c.status == previous).values(**_mutable(case))
        ).rowcount
        if done != 1:
            raise Conflict(f"after-sale case {case.id} changed meanwhile; retry", code="invalid_transition")

    def save(self, ctx: OrderContext, case: Case) -> None:
        """Write fields of a case that did not change state."""
        self._write(ctx, case, case.status)

    def tell(self, ctx: OrderContext, case: Case, previous: str | None, status: str | None = None) -> None:
        """Call ``order_after_sale`` and keep what reacting centers filled in."""
        contract = AfterSaleCase(
            id=case.id,
            order_id=case.order_id,
            type=case.type,  # type: ignore[arg-type]
            status=status or case.status,
            previous=previous,
            customer=case.customer,
            shop=case.shop,
            lines=[
                CaseLine(line_id=x.line_id, sku=x.sku, quantity=x.quantity, received=x.received)
                for x in case.lines
            ],
            reason=case.reason,
            inspections=list(case.inspections),
            return_parcel=case.return_parcel,
            pickup=case.pickup,
            refund_id=case.refund_id,
            refund_amount=case.refund_amount,
            replacement_order_id=case.replacement_order_id,
            shipped=case.shipped,
            data=dict(case.data),
        )
        before = msgspec.json.encode([contract.pickup, contract.return_parcel, contract.data])
        self.kernel.hook.order_after_sale(ctx=ctx, case=contract)
        if msgspec.json.encode([contract.pickup, contract.return_parcel, contract.data]) != before:
            case.pickup, case.return_parcel, case.data = (
                contract.pickup,
                contract.return_parcel,
                contract.data,
            )
            self.save(ctx, case)

    def note(
        self, ctx: OrderContext, case: Case, kind: str, en: str, zh: str | None = None, **kw: Any
    ) -> None:
        """A timeline entry on the case that is not a change of state."""
        ctx.timeline(f"after_sale.{kind}", en, zh=zh, ref=case.ref, **kw)

    # -- opening ------------------------------------------------------------------

    def open(self, ctx: OrderContext, req: OpenCase) -> Case:
        principal, order = ctx.principal, ctx.order
        s = self.settings
        if not principal.is_admin and not (
            order.customer == principal.subject and "customer" in principal.roles
        ):
            # staff of the shop may see the order, but cases are the customer's to open
            if principal.can_see(order.shop, order.customer) and principal.roles & {
                "merchant",
                "warehouse",
                "finance",
            }:
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
        reason = self.reason(req.reason)
        if reason is None:
            raise InvalidInput(
                f"unknown reason '{req.reason}'",
                code="reason_unknown",
                extra={"reasons": [r.code for r in s.reasons]},
            )
        if order.status in ("awaiting_payment", "cancelled", "closed"):
            raise Conflict(
                f"an order that is {order.status} has nothing to return or refund",
                code="order_not_eligible",
                extra={"status": order.status},
            )
        shipped = order.status != "paid"
        delivered = order.status in ("delivered", "completed")
        if req.type != "refund_only" and not delivered:
            raise Conflict(
                f"the order is {order.status}; {req.type} needs the goods delivered",
                code="order_not_delivered",
                extra={"status": order.status},
            )
        now = self.now(ctx)
        if delivered:
            days = s.repair_window_days if req.type == "repair" else s.return_window_days
            since = self.delivered_at(ctx.conn, order)
            if now > since + timedelta(days=days):
                raise Rejected(
                    f"the {days}-day window after delivery has passed",
                    code="after_sale_window_expired",
                    extra={"delivered_at": since.isoformat(), "window_days": days},
                )
        claims = self.claims(ctx.conn, order.id or 0)
        # On a replacement order: goods a return on the original order already claims.
        elsewhere = self.claimed_from_replacement(ctx.conn, order)
        # Units refunded already (e.g. before a return that brought back only some of them)
        # are not the customer's to claim again, whichever case they were refunded by.
        refundable = {b.line_id: b.quantity_left for b in self.kernel.refunds.balances(ctx).values()}
        seen: set[int] = set()
        lines: list[CaseLine] = []
        from_exchange: dict[str, int] = {}
        replacements: set[int] = set()
        for item in req.lines:
            if item.line_id in seen:
                raise InvalidInput(f"line {item.line_id} is listed twice", code="line_repeated")
            seen.add(item.line_id)
            line = ctx.line(item.line_id)
            claim = claims.get(item.line_id, LineClaims())
            cap = refundable.get(item.line_id, line.quantity)
            taken = min(elsewhere.get(line.sku, 0), line.quantity)
            elsewhere[line.sku] = elsewhere.get(line.sku, 0) - taken
            available = min(line.quantity - claim.held - claim.exchanged - taken, cap)
            sku = line.sku
            if item.quantity > available and req.type == "return_refund" and available <= 0:
                # The line's own units are all claimed: the goods received in exchange for
                # them may come back for the money paid on this line. One case, one kind.
                pool = next((p for p in claim.pools if min(p.free, cap) >= item.quantity), None)
                if pool is not None:
                    available, sku = item.quantity, pool.sku
                    from_exchange[str(item.line_id)] = pool.case_id
                    if pool.order_id is not None:
                        replacements.add(pool.order_id)
                else:
                    available = max([min(p.free, cap) for p in claim.pools] or [available])
            if item.quantity > available:
                raise Conflict(
                    f"line {item.line_id}: {item.quantity} units asked, {max(available, 0)} left for after-sale",
                    code="quantity_exceeds_available",
                    extra={"line_id": item.line_id, "available": max(available, 0)},
                )
            lines.append(CaseLine(line_id=item.line_id, sku=sku, quantity=item.quantity))
        replacement = dict(req.replacement_skus)
        if replacement:
            if req.type != "exchange":
                raise InvalidInput("replacement_skus is for exchanges", code="replacement_not_exchange")
            self._check_replacements(ctx, replacement, seen)
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
            lines=lines,
            replacement_skus=replacement,
            # lines whose goods are what an exchange sent (line id -> that exchange's case)
            data={"from_exchange": from_exchange} if from_exchange else {},
            created_at=now,
            updated_at=now,
        )
        case.due_at, case.timer = sla.timer_for(s, case, now)
        row = _mutable(case)
        row.update(
            order_id=case.order_id,
            shop=case.shop,
            customer=case.customer,
            type=case.type,
            reason=case.reason,
            reason_text=case.reason_text,
            replacement_skus={str(k): v for k, v in replacement.items()} or None,
            created_at=now,
        )
        case.id = ctx.conn.execute(t.cases.insert().values(**row).returning(t.cases.c.id)).scalar_one()
        ctx.conn.execute(
            t.case_lines.insert(),
            [
                {
                    "case_id": case.id,
                    "order_id": case.order_id,
                    "line_id": x.line_id,
                    "sku": x.sku,
                    "quantity": x.quantity,
                    "received": 0,
                }
                for x in lines
            ],
        )
        type_en, type_zh = st.TYPE_LABELS[case.type]
        units = sum(x.quantity for x in lines)
        self.note(
            ctx,
            case,
            "requested",
            f"{type_en} request submitted ({units} item(s), {reason.en}); waiting for the merchant",
            f"{type_zh}申请已提交({units} 件,{reason.zh}),等待商家处理",
            data={"case_id": case.id, "type": case.type, "reason": reason.code, "to": case.status},
        )
        for replacement_id in sorted(replacements):
            self.note(
                ctx,
                case,
                "exchanged_goods",
                f"Returning the goods received in exchange (replacement order No. {replacement_id}); "
                "the refund is of what was paid for them on this order",
                f"退回换货所得商品(换新订单号 {replacement_id}),按本订单实付金额退款",
            )
        if req.reason_text:
            self.note(
                ctx, case, "customer_note", f"Customer: {req.reason_text}", f"买家留言:{req.reason_text}"
            )
        ctx.emit("after_sale.requested", {"case_id": case.id, "type": case.type})
        self.tell(ctx, case, None)
        if case.type == "refund_only" and not shipped and s.auto_approve_unshipped:
            self.approve(ctx, case, actor="system", auto="unshipped")
        return case

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
        preview = self.kernel.orders.context("preview", probe, ctx.conn, ctx.principal, probe_lines)
        self.kernel.hook.order_pre_validate(ctx=preview)
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

    # -- merchant ---------------------------------------------------------------

    def approve(
        self,
        ctx: OrderContext,
        case: Case,
        *,
        actor: str,
        decision: Decision | None = None,
        auto: str | None = None,
    ) -> None:
        decision = decision or Decision()
        # Approving again after finance rejected the refund resubmits it.
        case.data.pop("finance_rejected", None)
        if case.status == S.INSPECTED:
            # after finance rejected the refund, or a replacement could not be made
            case.approved_by = actor
            if case.type == "exchange" and decision.resolution != "refund":
                st.check(case.type, case.status, S.REPLACEMENT_CREATED)
                failure = self.replace(ctx, case, actor=actor)
                if failure is not None:
                    raise Conflict(
                        f"the replacement order could not be placed: {failure.detail}",
                        code="replacement_failed",
                        extra={"reason": failure.code},
                    )
                return
            self.refund(ctx, case, self._items(ctx, case, case.passed()), actor=actor)
            return
        st.check(case.type, case.status, S.APPROVED)
        case.approved_by = actor
        if auto == "sla":
            hours = self.settings.merchant_response_hours
            en = f"The merchant did not respond within {hours} hours; approved automatically"
            zh = f"商家超时({hours} 小时)未处理,系统已自动同意"
        elif auto == "unshipped":
            en, zh = "Approved at once: the order had not shipped yet", "订单尚未发货,系统已自动同意"
        else:
            en, zh = "The merchant approved your request", "商家已同意您的申请"
        self.move(ctx, case, S.APPROVED, en, zh, actor=actor)
        if decision.note:
            self.note(
                ctx,
                case,
                "merchant_note",
                f"Merchant: {decision.note}",
                f"商家留言:{decision.note}",
                actor=actor,
            )
        if case.type == "refund_only":
            case.shipped = ctx.order.status != "paid"
            self.refund(ctx, case, [RefundItem(x.line_id, x.quantity) for x in case.lines], actor=actor)
            return
        days = self.settings.return_ship_days
        self.move(
            ctx,
            case,
            S.AWAITING_RETURN,
            f"Please send the goods back within {days} days, or book a pickup",
            f"请在 {days} 天内寄回商品,或预约上门取件",
            actor=actor,
        )
        if case.type == "return_refund" and self.settings.refund_before_return:
            self.refund(
                ctx, case, [RefundItem(x.line_id, x.quantity) for x in case.lines], actor=actor, early=True
            )

    def reject(self, ctx: OrderContext, case: Case, reason: str, *, actor: str) -> None:
        self.move(
            ctx,
            case,
            S.REJECTED,
            f"The merchant rejected the request: {reason}",
            f"商家已拒绝申请:{reason}",
            actor=actor,
            data={"reason": reason},
        )

    # -- customer -----------------------------------------------------------------

    def withdraw(self, ctx: OrderContext, case: Case, reason: str) -> None:
        st.check(case.type, case.status, S.CANCELLED)
        if case.refund_status in LIVE_REFUND_STATUSES:
            raise Conflict("a refund is already under way for this case", code="case_has_refund")
        suffix_en, suffix_zh = (f": {reason}", f":{reason}") if reason else ("", "")
        self.move(
            ctx, case, S.CANCELLED, f"You withdrew the request{suffix_en}", f"买家已撤销申请{suffix_zh}"
        )

    def expected_warehouse(self, ctx: OrderContext, case: Case) -> str | None:
        if self.settings.return_warehouse:
            return self.settings.return_warehouse
        view = self.kernel.order_views.render(ctx.order, ctx.lines, [], conn=ctx.conn)
        wanted = {x.line_id for x in case.lines}
        for shipment in view.shipments:
            if shipment.warehouse and any(int(x.get("line_id", 0)) in wanted for x in shipment.lines):
                return shipment.warehouse
        return next((s.warehouse for s in view.shipments if s.warehouse), None)

    def file_return(self, ctx: OrderContext, case: Case, body: ReturnShipment) -> None:
        st.check(case.type, case.status, S.RETURN_SHIPPED)
        case.return_parcel = ReturnParcel(
            carrier=body.carrier,
            tracking_no=body.tracking_no,
            phone=body.phone,
            warehouse=self.expected_warehouse(ctx, case),
        )
        if case.pickup is not None and case.pickup.status not in ("failed", "picked_up"):
            case.pickup.status = "cancelled"
        self.move(
            ctx,
            case,
            S.RETURN_SHIPPED,
            f"You shipped the goods back: {body.carrier} waybill {body.tracking_no}",
            f"买家已寄出,{body.carrier} 运单号 {body.tracking_no}",
            data={"carrier": body.carrier, "tracking_no": body.tracking_no},
        )

    def book_pickup(self, ctx: OrderContext, case: Case, body: PickupIn) -> None:
        st.check(case.type, case.status, S.PICKUP_REQUESTED)
        now = self.now(ctx)
        start, end = body.window_start, body.window_end
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInput("pickup window times need a time zone", code="pickup_window_invalid")
        if end <= start or end <= now:
            raise InvalidInput(
                "the pickup window must end after it starts, in the future", code="pickup_window_invalid"
            )
        ahead = self.settings.pickup_max_days_ahead
        if end > now + timedelta(days=ahead):
            # A courier is booked for the coming days; a window years away would park the
            # case with no timer that could ever close it.
            raise InvalidInput(
                f"the pickup window must end within {ahead} days", code="pickup_window_invalid"
            )
        given = body.address if body.address is not None else ctx.order.address
        address = None if given is None else msgspec.to_builtins(given)
        if not address:
            raise InvalidInput("give a pickup address; the order has none", code="pickup_address_required")
        attempts = (case.pickup.attempts if case.pickup else 0) + 1
        case.pickup = Pickup(
            window_start=start, window_end=end, address=address, carrier=body.carrier, attempts=attempts
        )
        self.move(
            ctx,
            case,
            S.PICKUP_REQUESTED,
            f"Pickup requested between {_when(start)} and {_when(end)}",
            f"已申请上门取件,时间 {_when(start)} 至 {_when(end)}",
            data={"attempt": attempts},
        )
        # The center that booked it (TMS) wrote the booking on the case timeline.
        p = case.pickup
        if p is not None and p.status == "booked" and p.tracking_no:
            case.return_parcel = ReturnParcel(
                carrier=p.carrier,
                tracking_no=p.tracking_no,
                phone=str(address.get("phone", "")),
                warehouse=self.expected_warehouse(ctx, case),
            )
            self.save(ctx, case)

    # -- carrier events (from TMS) ---------------------------------------------------

    def parcel_event(self, ctx: OrderContext, event: ParcelEvent) -> None:
        case = self.load(ctx.conn, event.case_id)
        if case is None or case.order_id != ctx.order.id:
            ctx.log.warning("after_sale.parcel_unknown_case", case_id=event.case_id)
            return
        status = event.status
        if status == "booked":
            if case.pickup is not None:
                case.pickup.status = "booked"
                case.pickup.tracking_no = event.tracking_no or case.pickup.tracking_no
                self.save(ctx, case)
            return
        if status == "pickup_failed":
            if case.pickup is not None:
                case.pickup.status = "failed"
            if case.status == S.PICKUP_REQUESTED:
                self.move(
                    ctx,
                    case,
                    S.AWAITING_RETURN,
                    f"The pickup did not happen{': ' + event.description if event.description else ''}; "
                    "book another pickup or ship the goods yourself",
                    "上门取件未成功,请重新预约取件或自行寄回",
                    data={"tracking_no": event.tracking_no},
                )
            elif case.pickup is not None:
                self.save(ctx, case)
            return
        if status == "stale":
            case.data["stale"] = True
            self.save(ctx, case)
            self.note(
                ctx,
                case,
                "parcel_stale",
                f"Return waybill {event.tracking_no} has shown no movement for a long time; we are checking with the carrier",
                f"退货运单 {event.tracking_no} 长时间无物流更新,客服正在与快递核实",
            )
            return
        if status == "exception":
            self.note(
                ctx,
                case,
                "parcel_exception",
                f"The carrier reported a problem with the return parcel: {event.description or 'exception'}",
                f"退货包裹异常:{event.description or '快递异常'}",
            )
            return
        if status not in ("picked_up", "in_transit", "out_for_delivery", "delivered"):
            ctx.log.info("after_sale.parcel_status_ignored", case_id=case.id, status=status)
            return
        if case.return_parcel is None:
            case.return_parcel = ReturnParcel(carrier=event.carrier, tracking_no=event.tracking_no)
        case.return_parcel.status = (
            "delivered" if status == "delivered" else ("picked_up" if status == "picked_up" else "in_transit")
        )
        if case.pickup is not None and case.pickup.status not in ("picked_up", "cancelled"):
            case.pickup.status = "picked_up"
        if case.status in (S.RETURN_SHIPPED, S.PICKUP_REQUESTED):
            self.move(
                ctx,
                case,
                S.RETURN_IN_TRANSIT,
                "The return parcel is on its way to the warehouse",
                "退货包裹已揽收,正在运往仓库",
                data={"tracking_no": event.tracking_no, "carrier_status": status},
            )
        elif case.status != S.RETURN_IN_TRANSIT:
            ctx.log.info(
                "after_sale.parcel_event_late", case_id=case.id, status=status, case_status=case.status
            )
            return
        if status == "delivered" and "arrived_at" not in case.data:
            case.data["arrived_at"] = event.occurred_at.isoformat()
            if event.wrong_warehouse:
                case.data["wrong_warehouse"] = event.warehouse
            now = self.now(ctx)
            case.due_at, case.timer = sla.timer_for(self.settings, case, now)
            self.save(ctx, case)
            self.note(
                ctx,
                case,
                "parcel_arrived",
                "The return parcel was signed for at the warehouse; awaiting inspection",
                "退货包裹已签收,等待仓库验收",
            )
            if event.wrong_warehouse:
                expected = case.return_parcel.warehouse or "?"
                self.note(
                    ctx,
                    case,
                    "parcel_wrong_warehouse",
                    f"Return parcel landed at warehouse {event.warehouse or '?'}, expected {expected}",
                    f"退货包裹送达仓库 {event.warehouse or '?'},应为 {expected}",
                    public=False,
                )
        else:
            self.save(ctx, case)

    # -- warehouse --------------------------------------------------------------------

    def receive(
        self, ctx: OrderContext, case: Case, body: Receive, *, actor: str, auto: bool = False
    ) -> None:
        st.check(case.type, case.status, S.RECEIVED)
        by_line = {x.line_id: x for x in case.lines}
        inspections: list[Inspection] = []
        # A repair's item is the customer's: it goes back to them, never into stock.
        keep: Disposition = "send_back" if case.type == "repair" else "restock"
        if body.inspections is None:
            for x in case.lines:
                inspections.append(
                    Inspection(
                        line_id=x.line_id,
                        sku=x.sku,
                        quantity=x.quantity,
                        passed=body.passed,
                        disposition=("quarantine" if auto and keep == "restock" else keep)
                        if body.passed
                        else "send_back",
                        note=body.note,
                    )
                )
        else:
            counted: dict[int, int] = {}
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
                disposition = i.disposition or (keep if i.passed else "send_back")
                inspections.append(
                    Inspection(
                        line_id=i.line_id,
                        sku=line.sku,
                        quantity=i.quantity,
                        grade=i.grade,
                        disposition=disposition,
                        passed=i.passed,
                        note=i.note,
                    )
                )
        received: dict[int, int] = {}
        for done in inspections:
            received[done.line_id] = received.get(done.line_id, 0) + done.quantity
        for x in case.lines:
            x.received = received.get(x.line_id, 0)
        cl = t.case_lines.c
        ctx.conn.execute(
            t.case_lines.update()
            .where(cl.case_id == sa.bindparam("b_case"), cl.line_id == sa.bindparam("b_line"))
            .values(received=sa.bindparam("b_received")),
            [{"b_case": case.id, "b_line": x.line_id, "b_received": x.received} for x in case.lines],
        )
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
        self.move(
            ctx,
            case,
            S.RECEIVED,
            en,
            zh,
            actor=actor,
            data={"units": units, "warehouse": case.data.get("received_warehouse")},
        )
        case.inspections = inspections
        self.move(
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
        self.note(ctx, case, "inspection", f"Inspection by {actor}: {detail}", public=False, actor=actor)
        if body.note and not auto:
            self.note(
                ctx,
                case,
                "inspection_note",
                f"Inspection note: {body.note}",
                f"检测说明:{body.note}",
                actor=actor,
            )
        passed = case.passed()
        if not passed:
            self.move(
                ctx,
                case,
                S.REJECTED,
                f"The goods did not pass inspection{': ' + body.note if body.note else ''}; they will be sent back to you",
                f"商品检测未通过{':' + body.note if body.note else ''},商品将寄回给您",
                actor=actor,
            )
            if case.refund_status == "pending_review":
                self.withdraw_early_refund(
                    ctx,
                    case,
                    f"after-sale case {case.id}: the returned goods did not pass inspection",
                    ("the returned goods did not pass inspection", "退回的商品检测未通过"),
                    actor=actor,
                )
            elif case.refund_status in ("approved", "refunded"):
                self.note(
                    ctx,
                    case,
                    "refund_before_return_failed",
                    f"Refund {case.refund_id} went out before the goods failed inspection; follow up by hand",
                    public=False,
                )
            return
        if case.type == "return_refund":
            claimed = {x.line_id: x.quantity for x in case.lines}
            if case.refund_status == "pending_review" and passed != claimed:
                # The early refund covers units that did not come back or did not pass: it must
                # not stay approvable; the units that passed are refunded afresh.
                got, asked = sum(passed.values()), sum(claimed.values())
                self.withdraw_early_refund(
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
                self.move(ctx, case, S.REFUNDED, "Refund completed", "退款已完成", actor=actor)
            elif case.refund_status == "pending_review":
                self.move(ctx, case, S.REFUND_PENDING_REVIEW, actor=actor)
            else:
                self.refund(ctx, case, self._items(ctx, case, passed), actor=actor)
        elif case.type == "exchange":
            failure = self.replace(ctx, case, actor=actor)
            if failure is not None:
                self.note(
                    ctx,
                    case,
                    "replacement_failed",
                    f"The replacement could not be placed ({failure.detail}); the merchant will follow up",
                    "换新订单暂时无法生成(可能缺货),商家将尽快处理",
                    actor=actor,
                )
        else:
            self.note(
                ctx,
                case,
                "repair_queued",
                "Your item is queued for repair",
                "商品已进入维修流程",
                actor=actor,
            )

    def _items(self, ctx: OrderContext, case: Case, units: dict[int, int]) -> list[RefundItem]:
        """Refund items for ``units`` per line, less the restocking fee the policy sets."""
        fees = self.settings.restocking_fee_percent
        reason = self.reason(case.reason)
        if not fees or (reason is not None and reason.merchant_fault) or case.type != "return_refund":
            return [RefundItem(line_id, qty) for line_id, qty in units.items() if qty]
        quote = {
            q.line_id: q
            for q in self.kernel.refunds.quote(
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

    def repaired(self, ctx: OrderContext, case: Case, note: str, *, actor: str) -> None:
        self.move(
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
        self.move(
            ctx,
            case,
            S.SHIPPED_BACK,
            f"Repaired goods shipped back: {body.carrier} waybill {body.tracking_no}",
            f"维修商品已寄回,{body.carrier} 运单号 {body.tracking_no}",
            actor=actor,
            data={"carrier": body.carrier, "tracking_no": body.tracking_no},
        )

    # -- money and replacements ------------------------------------------------------

    def shipping_mode(self, case: Case) -> ShippingMode:
        s = self.settings
        if not case.shipped:
            return s.shipping_unshipped
        reason = self.reason(case.reason)
        if reason is not None and reason.merchant_fault:
            return s.shipping_merchant_fault
        return s.shipping

    def refund(
        self, ctx: OrderContext, case: Case, items: list[RefundItem], *, actor: str, early: bool = False
    ) -> Refund:
        if not early:
            # Check before money moves: with no review the refund is paid out
            # (a provider call) inside kernel.refunds.request.
            for target in (S.REFUND_PENDING_REVIEW, S.REFUNDED):
                st.check(case.type, case.status, target)
        reason = self.reason(case.reason)
        # A refund only before shipment is a cancellation of those lines (issue 5): like the
        # kernel's own cancellations it is paid at once, never held for review, so WMS releases
        # the units at ``refunded`` before a dispatch can ship them. After shipment, finance reviews.
        cancellation = case.type == "refund_only" and not case.shipped
        ctx.stash[REQUESTING] = case.id
        try:
            refund = self.kernel.refunds.request(
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
            self.save(ctx, case)
            self.note(
                ctx,
                case,
                "refund_early",
                f"Refund of {amount} submitted before the goods are back"
                + (", awaiting finance review" if refund.status == "pending_review" else ""),
                f"已先行退款 {amount}" + (",等待财务审核" if refund.status == "pending_review" else ""),
                actor=actor,
            )
            if refund.status == "refunded":
                self.tell(ctx, case, case.status, status=S.REFUNDED.value)
            return refund
        if refund.status == "refunded":
            self.move(
                ctx,
                case,
                S.REFUNDED,
                f"Refund of {amount} completed to the original payment method",
                f"退款成功,{amount} 已原路退回",
                actor=actor,
                data={"refund_id": refund.id, "amount": refund.amount},
            )
        else:
            self.move(
                ctx,
                case,
                S.REFUND_PENDING_REVIEW,
                f"Refund of {amount} submitted, awaiting finance review",
                f"退款申请已提交({amount}),等待财务审核",
                actor=actor,
                data={"refund_id": refund.id, "amount": refund.amount},
            )
        return refund

    def refund_settled(self, ctx: OrderContext, refund: Refund) -> None:
        """``order_refund`` at ``refunded`` / ``rejected`` for a case's refund, decided elsewhere."""
        case_id = refund.data.get("case_id")
        if not isinstance(case_id, int) or ctx.stash.get(REQUESTING) == case_id:
            return  # our own request in this stage: the step goes on from there
        case = self.load(ctx.conn, case_id)
        if case is None or case.refund_id != refund.id:
            return
        case.refund_status = refund.status
        amount = format_amount(refund.amount, refund.currency)
        if refund.status == "refunded":
            if case.status == S.REFUND_PENDING_REVIEW:
                self.move(
                    ctx,
                    case,
                    S.REFUNDED,
                    f"Finance approved; refund of {amount} completed to the original payment method",
                    f"财务审核通过,退款成功,{amount} 已原路退回",
                    data={"refund_id": refund.id, "amount": refund.amount},
                )
            else:  # refunded before the goods came back
                self.save(ctx, case)
                self.note(
                    ctx, case, "refund_paid", f"Refund of {amount} completed", f"退款成功,{amount} 已原路退回"
                )
                self.tell(ctx, case, case.status, status=S.REFUNDED.value)
            return
        note = refund.note or ""
        if case.status == S.REFUND_PENDING_REVIEW:
            back = S.REQUESTED if case.type == "refund_only" else S.INSPECTED
            # The merchant must act now: resubmit (approve) or reject. Silence no longer resubmits
            # the same refund every merchant_response_hours; the SLA rejects the request instead.
            case.data["finance_rejected"] = {"refund_id": refund.id, "note": note}
            hours = self.settings.merchant_response_hours
            self.move(
                ctx,
                case,
                back,
                f"Finance did not approve the refund ({note}). The merchant may resubmit it or decline "
                f"the request; without an answer within {hours} hours the request is rejected",
                f"财务审核未通过({note}),等待商家重新提交或拒绝;商家 {hours} 小时内未处理,申请将被拒绝",
                data={"refund_id": refund.id, "reason": note},
            )
        else:
            self.save(ctx, case)
            self.note(
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
            refund = self.kernel.refunds.reject(ctx, case.refund_id, actor, note)
        finally:
            ctx.stash.pop(REQUESTING, None)
        case.refund_status = refund.status
        self.save(ctx, case)
        en, zh = why
        self.note(
            ctx,
            case,
            "refund_withdrawn",
            f"The refund submitted before the goods came back is cancelled: {en}",
            f"先行退款已取消:{zh}",
            actor=actor,
            data={"refund_id": refund.id},
        )

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
                view = self.kernel.orders.place_in(
                    ctx, req, customer=case.customer, no_charge=f"exchange for after-sale case {case.id}"
                )
        except MallcoreError as exc:
            ctx.log.warning("after_sale.replacement_failed", case_id=case.id, code=exc.code)
            return exc
        case.replacement_order_id = view.id
        self.move(
            ctx,
            case,
            S.REPLACEMENT_CREATED,
            f"Replacement order created: order No. {view.id}",
            f"换新订单已生成,换新订单号 {view.id}",
            actor=actor,
            data={"replacement_order_id": view.id},
        )
        return None

    # -- the order is cancelled ------------------------------------------------------

    def order_cancelled(self, ctx: OrderContext, reason: str) -> None:
        for case in self.load_for_order(ctx.conn, ctx.order.id or 0):
            # A refund finance rejected holds nothing: that case is closed with the order too.
            if st.can(case.type, case.status, S.CANCELLED) and case.refund_status not in LIVE_REFUND_STATUSES:
                self.move(
                    ctx,
                    case,
                    S.CANCELLED,
                    "The order was cancelled; this request is closed",
                    "订单已取消,本次售后申请已关闭",
                )

    # -- reading ----------------------------------------------------------------------

    def view(
        self,
        conn: sa.Connection,
        case: Case,
        principal: Principal,
        lang: str,
        *,
        order: Order | None = None,
        pending: OrderContext | None = None,
    ) -> CaseView:
        kernel = self.kernel
        order = order or kernel.orders.load(conn, case.order_id)
        assert order is not None
        staff = principal.is_admin or principal.can_act_for_shop(
            case.shop, "merchant", "warehouse", "finance"
        )
        # (cast: OrderService.list shadows the builtin in its annotations)
        timeline: list[TimelineView] = cast(
            Any,
            kernel.order_views.timeline_entries(
                conn, case.order_id, lang=lang, public_only=not staff, ref=case.ref
            ),
        )
        if pending is not None:
            timeline.extend(_pending(pending, case.ref, lang, staff))
        return CaseView(
            id=case.id,
            order_id=case.order_id,
            type=case.type,
            status=case.status,
            status_text=st.label(case.status, lang),
            shop=case.shop,
            customer=case.customer,
            reason=case.reason,
            reason_text=case.reason_text,
            lines=[
                CaseLineView(
                    line_id=x.line_id,
                    sku=x.sku,
                    quantity=x.quantity,
                    received=x.received,
                    replacement_sku=case.replacement_skus.get(x.line_id),
                )
                for x in case.lines
            ],
            shipped=case.shipped,
            refund_amount=case.refund_amount,
            refund_id=case.refund_id,
            refund_status=case.refund_status,
            refundable_amount=self.refundable(conn, order, case, principal),
            currency=order.currency,
            replacement_order_id=case.replacement_order_id,
            return_parcel=case.return_parcel,
            pickup=case.pickup,
            inspections=[_inspection(i, staff) for i in case.inspections],
            due_at=case.due_at,
            timer=case.timer,
            created_at=case.created_at or utcnow(),
            updated_at=case.updated_at or utcnow(),
            timeline=timeline,
        )

    def refundable(self, conn: sa.Connection, order: Order, case: Case, principal: Principal) -> int:
        """What the case's units would refund now, by the kernel's allocation (0 if nothing)."""
        if case.type == "repair" or case.status in st.TERMINAL or case.refund_status in LIVE_REFUND_STATUSES:
            return 0
        units = case.passed() if case.inspections else {x.line_id: x.quantity for x in case.lines}
        ctx = self.kernel.orders.context("after_sale_view", order, conn, principal)
        try:
            items = self._items(ctx, case, units)
            if not items:
                return 0
            return sum(q.amount for q in self.kernel.refunds.quote(ctx, items, self.shipping_mode(case)))
        except MallcoreError:
            return 0

    def summaries(
        self,
        principal: Principal,
        *,
        status: str | None,
        order_id: int | None,
        before: int | None,
        limit: int,
    ) -> list[CaseSummary]:
        c = t.cases.c
        stmt = sa.select(t.cases)
        if not principal.is_admin:
            if principal.has("merchant", "warehouse", "finance"):
                if principal.shop is not None:
                    stmt = stmt.where(c.shop == principal.shop)
            else:
                stmt = stmt.where(c.customer == principal.subject)
        if status:
            stmt = stmt.where(c.status == status)
        if order_id is not None:
            stmt = stmt.where(c.order_id == order_id)
        if before:
            stmt = stmt.where(c.id < before)
        stmt = stmt.order_by(c.id.desc()).limit(limit)
        with self.kernel.db.transaction(write=False) as conn:
            return [
                CaseSummary(
                    id=r.id,
                    order_id=r.order_id,
                    type=r.type,
                    status=r.status,
                    shop=r.shop,
                    customer=r.customer,
                    refund_amount=r.refund_amount,
                    replacement_order_id=r.replacement_order_id,
                    due_at=r.due_at,
                    created_at=r.created_at,
                )
                for r in conn.execute(stmt)
            ]

    # -- running a step from a request -------------------------------------------------

    def step(
        self,
        principal: Principal,
        case_id: int,
        action: Callable[[OrderContext, Case], None],
        *,
        lang: str,
        claim: Any = None,
    ) -> bytes:
        order_id = self.locate(principal, case_id)
        with self.kernel.orders.stage("after_sale", order_id, principal) as ctx:
            case = self.load(ctx.conn, case_id)
            if case is None:
                raise NotFound(f"after-sale case {case_id} not found", code="case_not_found")
            action(ctx, case)
            body = msgspec.json.encode(
                self.view(ctx.conn, case, principal, lang, order=ctx.order, pending=ctx)
            )
            self.kernel.orders.finish_reply(ctx, claim, 200, body)
        return body

    def open_from_request(
        self, principal: Principal, req: OpenCase, *, lang: str, claim: Any = None
    ) -> bytes:
        with self.kernel.orders.stage("after_sale", req.order_id, principal) as ctx:
            case = self.open(ctx, req)
            body = msgspec.json.encode(
                self.view(ctx.conn, case, principal, lang, order=ctx.order, pending=ctx)
            )
            self.kernel.orders.finish_reply(ctx, claim, 201, body)
        return body

    def get(self, principal: Principal, case_id: int, lang: str) -> CaseView:
        self.locate(principal, case_id)
        with self.kernel.db.transaction(write=False) as conn:
            case = self.load(conn, case_id)
            if case is None:
                raise NotFound(f"after-sale case {case_id} not found", code="case_not_found")
            return self.view(conn, case, principal, lang)


def _pending(ctx: OrderContext, ref: str, lang: str, staff: bool) -> Iterable[TimelineView]:
    """Timeline entries this stage has written but not yet flushed (the reply is built in the stage)."""
    for e in ctx.pending_timeline:
        if e.ref != ref or not (e.public or staff):
            continue
        yield TimelineView(
            at=e.at,
            kind=e.kind,
            actor=e.actor,
            message=(e.messages or {}).get(lang) or e.message,
            public=e.public,
            ref=e.ref,
            data=e.data,
        )


def _inspection(inspection: Inspection, staff: bool) -> dict[str, Any]:
    """Staff see the whole verdict; the customer the outcome (the grades and notes are internal,
    as the timeline entry that lists them is)."""
    if staff:
        return cast(dict[str, Any], msgspec.to_builtins(inspection))
    return {
        "line_id": inspection.line_id,
        "sku": inspection.sku,
        "quantity": inspection.quantity,
        "passed": inspection.passed,
    }


def _case_from_row(row: Any, lines: list[CaseLine]) -> Case:
    return Case(
        id=row.id,
        order_id=row.order_id,
        shop=row.shop,
        customer=row.customer,
        type=row.type,
        status=row.status,
        reason=row.reason,
        reason_text=row.reason_text or "",
        shipped=row.shipped,
        lines=lines,
        refund_id=row.refund_id,
        refund_status=row.refund_status,
        refund_amount=row.refund_amount,
        replacement_order_id=row.replacement_order_id,
        approved_by=row.approved_by,
        received_by=row.received_by,
        return_parcel=None if row.return_parcel is None else msgspec.convert(row.return_parcel, ReturnParcel),
        pickup=None if row.pickup is None else msgspec.convert(row.pickup, Pickup),
        inspections=msgspec.convert(row.inspections or [], list[Inspection]),
        replacement_skus={int(k): v for k, v in (row.replacement_skus or {}).items()},
        data=row.data or {},
        due_at=row.due_at,
        timer=row.timer,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _mutable(case: Case) -> dict[str, Any]:
    return {
        "status": case.status,
        "shipped": case.shipped,
        "refund_id": case.refund_id,
        "refund_status": case.refund_status,
        "refund_amount": case.refund_amount,
        "replacement_order_id": case.replacement_order_id,
        "approved_by": case.approved_by,
        "received_by": case.received_by,
        "return_parcel": None if case.return_parcel is None else msgspec.to_builtins(case.return_parcel),
        "pickup": None if case.pickup is None else msgspec.to_builtins(case.pickup),
        "inspections": [msgspec.to_builtins(i) for i in case.inspections] or None,
        "data": case.data or None,
        "due_at": case.due_at,
        "timer": case.timer,
        "updated_at": case.updated_at,
    }
