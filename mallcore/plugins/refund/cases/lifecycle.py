"""The one way a case changes state: its row, its timeline, ``order_after_sale``.

Every step runs inside ``kernel.orders.stage(...)`` (the order row locked), so
two requests on cases of one order never interleave. A step checks its move
against the state machine (:mod:`..states`), writes the case row (conditional
on the status it read), adds the case's timeline entries (``ref="after_sale:<id>"``,
merged into the order's timeline) and then tells the other centers through
``order_after_sale``, keeping what they filled in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from mallcore.kernel import OrderContext
from mallcore.kernel.aftersale import AfterSaleCase, CaseLine, ReturnAddress

from .. import states as st
from ..schemas import RefundSettings
from ..sla import NOW, timer_for
from ..states import CaseStatus as S
from .records import Case, CaseRecords


@dataclass(frozen=True)
class Lifecycle:
    """Moves cases along the state machine and writes what happened."""

    records: CaseRecords
    settings: RefundSettings
    clock: Callable[[], datetime]
    hook: Any  # the kernel's hook relay

    def now(self, ctx: OrderContext | None = None) -> datetime:
        if ctx is not None and NOW in ctx.stash:
            return ctx.stash[NOW]
        return self.clock()

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
        if case.hold is not None and previous == S.REQUESTED:
            # Decided by hand (merchant, customer) or closed with its order while held:
            # the hold was against automatic decisions only, so it ends here.
            self.note(
                ctx,
                case,
                "hold_ended",
                f"The request was decided while on hold ({case.hold}); the hold ends",
                f"售后申请在冻结期间已被处理({case.hold}),冻结解除",
                public=False,
                actor=actor,
            )
            case.hold = None
        case.status = target.value
        now = self.now(ctx)
        case.updated_at = now
        case.due_at, case.timer = timer_for(self.settings, case, now)
        self.records.write(ctx.conn, case, previous)
        if en is None:
            en, zh = st.LABELS[target]
        step = ctx.timeline(
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
            # (what reacting centers write about this step is its echo: the page shows it once)
            with ctx.because(step):
                self.tell(ctx, case, previous)

    def save(self, ctx: OrderContext, case: Case) -> None:
        """Write fields of a case that did not change state."""
        self.records.write(ctx.conn, case, case.status)

    def rearm(self, ctx: OrderContext, case: Case) -> None:
        """Set the case's SLA timer afresh for its current state, and save it."""
        case.due_at, case.timer = timer_for(self.settings, case, self.now(ctx))
        self.save(ctx, case)

    def tell(
        self, ctx: OrderContext, case: Case, previous: str | None, status: str | None = None
    ) -> AfterSaleCase:
        """Call ``order_after_sale`` and keep what reacting centers filled in; returns what
        they were told, with their answers (``hold``, ``fast_track`` at ``requested``)."""
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
            return_address=self._return_address(case),
            pickup=case.pickup,
            refund_id=case.refund_id,
            refund_amount=case.refund_amount,
            replacement_order_id=case.replacement_order_id,
            shipped=case.shipped,
            data=dict(case.data),
        )
        before = msgspec.json.encode([contract.pickup, contract.return_parcel, contract.data])
        asked = msgspec.json.encode(contract.return_address)
        self.hook.order_after_sale(ctx=ctx, case=contract)
        changed = msgspec.json.encode([contract.pickup, contract.return_parcel, contract.data]) != before
        if changed:
            case.pickup, case.return_parcel, case.data = (
                contract.pickup,
                contract.return_parcel,
                contract.data,
            )
        if contract.return_address is not None and msgspec.json.encode(contract.return_address) != asked:
            case.data["return_address"] = msgspec.to_builtins(contract.return_address)
            changed = True
        if changed:
            self.save(ctx, case)
        return contract

    def _return_address(self, case: Case) -> ReturnAddress | None:
        """Where the goods go back: as a reacting center (WMS) gave it, else asked for at
        ``awaiting_return`` (naming the configured return warehouse, if any)."""
        known = case.data.get("return_address")
        if isinstance(known, dict):
            return msgspec.convert(known, ReturnAddress)
        if case.status == S.AWAITING_RETURN:
            return ReturnAddress(warehouse=self.settings.return_warehouse)
        return None

    def note(
        self, ctx: OrderContext, case: Case, kind: str, en: str, zh: str | None = None, **kw: Any
    ) -> None:
        """A timeline entry on the case that is not a change of state."""
        ctx.timeline(f"after_sale.{kind}", en, zh=zh, ref=case.ref, **kw)
